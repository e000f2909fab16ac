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
