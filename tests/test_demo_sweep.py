"""benchmarks/demo_sweep.py: candidates x seeds as real train.py runs, each scored, failures reported per run."""
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_sweep_trains_scores_and_reports_a_failed_candidate(tmp_path, monkeypatch):
    from stylegan_tf.data import create_demo
    from stylegan_tf.training.prepare import demo_dataset_dir

    cache = tmp_path / "cache"
    monkeypatch.setenv("STYLEGAN_TF_CACHE", str(cache))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    data = demo_dataset_dir()
    create_demo(data, count=64, resolution=32, seed=0, progress=False, workers=1)
    short = "--total-kimg 0.032 --tick-kimg 0.016 --fmap-base 64 --fmap-max 16"
    out = tmp_path / "sweep.json"
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "benchmarks", "demo_sweep.py"), "--cache", str(cache),
         "--seeds", "7", "--candidate", f"tiny={short}", "--candidate", f"bad={short} --gamma -1",
         "--jobs", "2", "--num", "32", "--workdir", str(tmp_path / "runs"), "--json", str(out)],
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = {r["name"]: r for r in json.load(open(out))}
    assert set(runs) == {"tiny", "bad"} and all(r["seed"] == 7 for r in runs.values())
    tiny = runs["tiny"]
    assert tiny["returncode"] == 0 and tiny["snapshot"].endswith(".keras")
    assert "--seed 7" in tiny["cmd"] and "--fmap-max 16" in tiny["cmd"]
    assert set(tiny["score"]) == {"32", "16", "avg"} and tiny["score"]["avg"] > 0
    assert runs["bad"]["returncode"] == 2 and "gamma" in runs["bad"]["error"] and "score" not in runs["bad"]
    assert "no snapshot (exit 2)" in proc.stdout


def _processes_mentioning(text):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except OSError:   # the process ended between the listing and the read
            continue
    return found


def test_sigterm_stops_the_runs(tmp_path, monkeypatch):
    """`kill` on a sweep (a sweep started with `&` ignores Ctrl-C) stops its train.py runs: exit 130, one line."""
    import signal
    import time

    from stylegan_tf.data import create_demo
    from stylegan_tf.training.prepare import demo_dataset_dir

    cache = tmp_path / "cache"
    monkeypatch.setenv("STYLEGAN_TF_CACHE", str(cache))
    create_demo(demo_dataset_dir(), count=64, resolution=32, seed=0, progress=False, workers=1)
    workdir = tmp_path / "runs"
    run_dir = str(workdir / "long-s7")   # only the run's own command line names it (--outdir)
    sweep = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "benchmarks", "demo_sweep.py"), "--cache", str(cache), "--seeds", "7",
         "--candidate", "long=--total-kimg 1000 --fmap-base 64 --fmap-max 16", "--num", "32",
         "--workdir", str(workdir), "--json", str(tmp_path / "sweep.json")],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not _processes_mentioning(run_dir) and time.time() < deadline:
        time.sleep(0.5)
    assert _processes_mentioning(run_dir), "train.py never started"
    sweep.send_signal(signal.SIGTERM)
    # The run stops after its current group of minibatches, with a snapshot: on a loaded 2-core machine its first
    # group (the step's tracing included) took over 120 s once, so the bound on a hang is 300 s.
    try:
        out, err = sweep.communicate(timeout=300)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.communicate()
    assert sweep.returncode == 130, out + err
    assert err.strip().splitlines()[-1] == "demo_sweep: interrupted; 0 finished run(s) kept"
    assert not _processes_mentioning(run_dir)
    assert not (tmp_path / "sweep.json").exists()
