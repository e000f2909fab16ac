#!/usr/bin/env python
"""Many demo runs side by side: candidate configurations x seeds, each `python train.py` (the demo, plus the
candidate's flags) in its own process, then every run's last snapshot scored with demo_check's SWD.

    python benchmarks/demo_sweep.py --cache ~/.cache/stylegan_tf --seeds 1000,1001 \\
        --candidate demo= --candidate gamma100="--gamma 100" --jobs 4

Runs share the machine, so compare them by kimg (each row says how far it got), not by time; a run still going
at --deadline-s is stopped and scored at its last snapshot. With `KERAS_BACKEND=jax` on a GPU machine (no
TensorFlow there: the demo dataset must already be in --cache) the runs train and the scoring projects and sorts
on the GPU: four runs at once on one H100 trained at 1.3-1.4 s/kimg each (sixteen at once: 4.6-5.1), eight
times the throughput of four runs on a 2-core CPU (docs/performance.md, "The demo").
The SWD settings are demo_check's (N 4096, seed 123, the 32x32 and 16x16 levels).
"""
import argparse
import glob
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo_check  # noqa: E402  (beside this script)

# Only what bounds the disk and makes the last snapshot recent; the training math is the demo's.
RUN_FLAGS = ["--snap-ticks", "1", "--keep-snapshots", "2", "--no-progress"]


def parse_candidate(text):
    name, _, flags = text.partition("=")
    if not name or "/" in name:
        raise argparse.ArgumentTypeError(f"--candidate {text!r}: give NAME=FLAGS, e.g. gamma100='--gamma 100'")
    return name, shlex.split(flags)


def start(run, cache, workdir):
    out = os.path.join(workdir, "%s-s%d" % (run["name"], run["seed"]))
    os.makedirs(out, exist_ok=True)
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--seed", str(run["seed"]), "--outdir", out,
           *RUN_FLAGS, *run["flags"]]
    log = open(out + ".log", "w")
    env = dict(os.environ, STYLEGAN_TF_CACHE=cache)
    run.update(dir=out, cmd=" ".join(cmd[1:]), t0=time.time(),
               proc=subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir))
    log.close()


def last_snapshot(run):
    """The newest snapshot of this run: only the newest run directory counts (a rerun into the same --workdir
    makes a new NNNNN-* folder beside the old one)."""
    dirs = sorted(glob.glob(os.path.join(run["dir"], "[0-9]" * 5 + "-*")))
    snaps = sorted(glob.glob(os.path.join(dirs[-1], "network-snapshot-*.keras")), key=demo_check.kimg_of) if dirs else []
    return snaps[-1] if snaps else None


def finish(run, scorer, args):
    """Score the run's last snapshot into run['score']; a run without one gets an 'error' (its log's last line)."""
    run["seconds"] = round(time.time() - run["t0"], 1)
    run["returncode"] = run.pop("proc").returncode
    snap = last_snapshot(run)
    if snap is None:
        with open(run["dir"] + ".log") as f:
            lines = [line.strip() for line in f if line.strip()]
        run["error"] = lines[-1] if lines else "no output"
    else:
        run.update(snapshot=snap, kimg=demo_check.kimg_of(snap),
                   score=scorer(demo_check.fakes(snap, args.num, args.swd_seed)))
    print(report_line(run), flush=True)


def report_line(run):
    head = "%-14s seed %-5d" % (run["name"], run["seed"])
    if "score" not in run:
        return head + " no snapshot (exit %s): %s" % (run["returncode"], run["error"])
    s = run["score"]
    return head + " kimg %4d  %s  (%.0f s)" % (run["kimg"], demo_check.fmt(s), run["seconds"])


def summary(runs, candidates):
    seeds = sorted({r["seed"] for r in runs})
    lines = ["", "%-14s %s   mean" % ("candidate", "  ".join("%-6s" % s for s in seeds))]
    for name, _ in candidates:
        by_seed = {r["seed"]: r for r in runs if r["name"] == name and "score" in r}
        cells = ["%6.2f" % by_seed[s]["score"]["avg"] if s in by_seed else "  --  " for s in seeds]
        mean = np.mean([r["score"]["avg"] for r in by_seed.values()]) if by_seed else float("nan")
        lines.append("%-14s %s   %.2f" % (name, "  ".join(cells), mean))
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", required=True, help="cache folder holding the demo dataset (STYLEGAN_TF_CACHE)")
    p.add_argument("--candidate", type=parse_candidate, action="append", required=True, metavar="NAME=FLAGS",
                   help="a configuration: train.py flags on top of the demo's ('demo=' for the demo itself)")
    p.add_argument("--seeds", default="1000,1001,1002,1003", help="comma-separated --seed values")
    p.add_argument("--jobs", type=int, default=4, help="runs at once")
    p.add_argument("--deadline-s", type=float, default=None, help="stop runs still going after this many seconds")
    p.add_argument("--workdir", default="demo_sweep", help="where the runs go")
    p.add_argument("--json", help="also write every run's result here")
    p.add_argument("--num", type=int, default=4096, help="images per SWD set")
    p.add_argument("--swd-seed", type=int, default=123, help="z, descriptor and direction seed")
    args = p.parse_args(argv)
    names = [name for name, _ in args.candidate]
    if len(set(names)) < len(names):
        p.error(f"--candidate: the names must differ (got {', '.join(names)})")
    if args.jobs < 1:
        p.error(f"--jobs {args.jobs}: give 1 or more")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        p.error(f"--seeds {args.seeds!r}: give comma-separated integers, e.g. 1000,1001")
    cache = os.path.abspath(os.path.expanduser(args.cache))
    os.environ["STYLEGAN_TF_CACHE"] = cache
    data_dir = demo_check.demo_data_dir()
    if not glob.glob(os.path.join(data_dir, "*-r05.tfrecords")):
        p.error(f"--cache {args.cache}: no demo dataset in {data_dir}; build it once with "
                f"`STYLEGAN_TF_CACHE={args.cache} python train.py --total-kimg 0.1`")
    if args.json and os.path.exists(args.json):
        p.error(f"--json {args.json}: exists (an earlier sweep's results?); give a new path or remove it")
    workdir = os.path.abspath(args.workdir)
    os.makedirs(workdir, exist_ok=True)

    pending = [dict(name=name, seed=seed, flags=flags) for seed in seeds for name, flags in args.candidate]
    running, done = [], []
    # `kill` (and a sweep started with `&`, where the shell makes it ignore Ctrl-C) stops the runs as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        sweep(args, pending, running, done, cache, data_dir, workdir)
    except KeyboardInterrupt:
        stop(running)
        print(f"demo_sweep: interrupted; {len(done)} finished run(s) kept"
              + (f" in {args.json}" if args.json and done else ""), file=sys.stderr)
        return 130
    print(summary(done, args.candidate), flush=True)
    return 0


def sweep(args, pending, running, done, cache, data_dir, workdir):
    """Start, stop at the deadline and score the runs; `done` collects the scored ones."""
    t0 = time.time()
    while pending and len(running) < args.jobs:
        start_next(pending, running, cache, workdir)
    on_device = os.environ.get("KERAS_BACKEND") == "jax" and _has_gpu()
    reals = demo_check.read_reals(data_dir, args.num)[:args.num]
    scorer = demo_check.Scorer(reals, args.swd_seed, on_device=on_device)
    print("reals scored (%s); %d runs, %d at once" % ("GPU" if on_device else "numpy", len(pending) + len(running),
                                                      args.jobs), flush=True)
    while running:
        if args.deadline_s is not None and time.time() - t0 > args.deadline_s:
            pending.clear()
            stop(running)   # all of them before any scoring: scoring one takes a minute
        for run in list(running):
            if run["proc"].poll() is not None:
                running.remove(run)
                finish(run, scorer, args)
                done.append(run)
                save(done, args.json)   # after every run: a sweep stopped later keeps what it measured
                if pending:
                    start_next(pending, running, cache, workdir)
        time.sleep(2)


def save(done, path):
    if path:
        with open(path + ".tmp", "w") as f:
            json.dump(done, f, indent=1)
        os.replace(path + ".tmp", path)


def start_next(pending, running, cache, workdir):
    run = pending.pop(0)
    start(run, cache, workdir)
    running.append(run)


def stop(running):
    for run in running:
        if run["proc"].poll() is None:
            run["proc"].terminate()
            run["stopped_at_deadline"] = True
    for run in running:
        run["proc"].wait()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _has_gpu():
    import jax
    return any(d.platform == "gpu" for d in jax.devices())


if __name__ == "__main__":
    sys.exit(main())
