#!/usr/bin/env python
"""Training on a few hundred images: the demo faces cut to --images training images (32x32), the same seed and
kimg for each augmentation setting (`none`, `ada`, `fixed` p, `diffaugment`), run side by side.

    python benchmarks/small_data.py --images 300 --kimg 400 --jobs 4 --workdir small_data

Per setting it prints the SWD (x1e3, demo_check's sliced Wasserstein distance, 32x32 and 16x16 levels) of the final
Gs against held-out reals the network never saw (other faces of the same generator, seed 1) and against its own
training reals, with the reals-vs-reals floor of each; r_t and p over time (from the run's stats.jsonl); s/kimg;
and it copies each run's last fakes grid to WORKDIR/fakes-SETTING.png. A network that memorises its training set
scores better against it than against the held-out faces; augmentation should narrow that gap.
"""
import argparse
import glob
import json
import os
import shutil
import signal
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo_check  # noqa: E402  (beside this script)
import demo_sweep  # noqa: E402

SETTINGS = ("none", "ada", "fixed", "diffaugment")


def setting_flags(name, args):
    """train.py's flags for an augmentation setting."""
    return {"none": [], "ada": ["--augment", "ada", "--ada-kimg", f"{args.ada_kimg:g}"],
            "fixed": ["--augment", "fixed", "--aug-p", f"{args.fixed_p:g}"],
            "diffaugment": ["--augment", "diffaugment"]}[name]


def demo_flags():
    """The demo's training options as flags (with --data given, train.py does not apply them itself)."""
    from stylegan_tf.training.options import DEMO_OPTIONS, flag_name
    flags = []
    for key, value in DEMO_OPTIONS.items():
        if key == "total_kimg":
            continue
        flags += [flag_name(key)] if value is True else [flag_name(key), str(value)]
    return flags


def make_datasets(workdir, images, num):
    """(training set of `images` demo faces, held-out set of 2 * num other faces), both 32x32, made once."""
    from stylegan_tf.data import create_demo
    paths = []
    for name, count, seed in (("train", images, 0), ("heldout", 2 * num, 1)):
        path = os.path.join(workdir, f"{name}-{count}")
        if not os.path.isdir(path):
            create_demo(path, count=count, resolution=demo_check.RES, seed=seed, progress=False)
        paths.append(path)
    return paths


def curves(run_dir):
    """[(kimg, p, r_t)] per tick, and the median s/kimg after the first tick (tracing)."""
    path = os.path.join(run_dir, "stats.jsonl")
    rows = [json.loads(line) for line in open(path)] if os.path.isfile(path) else []
    over_time = [(r["kimg"], r.get("aug_p"), r.get("ada_rt")) for r in rows]
    speed = [r["sec_per_kimg"] for r in rows[1:]] or [r["sec_per_kimg"] for r in rows]
    return over_time, (statistics.median(speed) if speed else float("nan"))


def score(run, scorers, args):
    snap = demo_sweep.last_snapshot(run)
    if snap is None:
        run["error"] = "no snapshot"
        return
    run_dir = os.path.dirname(snap)
    run.update(snapshot=snap, kimg=demo_check.kimg_of(snap))
    run["over_time"], run["sec_per_kimg"] = curves(run_dir)
    for key, (scorer, n) in scorers.items():
        run[key] = scorer(demo_check.fakes(snap, n, args.swd_seed))["avg"]
    grids = sorted(glob.glob(os.path.join(run_dir, "fakes*.png")))
    if grids:
        shutil.copyfile(grids[-1], os.path.join(args.workdir, f"fakes-{run['name']}.png"))


def report(runs, floors, images):
    lines = [f"SWD x1e3 (avg of 32x32 and 16x16); floors: held-out vs held-out {floors['heldout']:.2f}, "
             f"held-out vs the {images} training reals {floors['train']:.2f}",
             f"{'setting':<12} {'kimg':>5} {'vs held-out':>11} {'vs train':>9} {'gap':>6} {'s/kimg':>7}  p, r_t over "
             "time (kimg: p/r_t)"]
    for run in runs:
        if "error" in run:
            lines.append(f"{run['name']:<12} {run['error']}")
            continue
        trail = ", ".join(f"{k:g}: " + ("-" if p is None else f"{p:.3f}/{r:+.2f}") for k, p, r in run["over_time"])
        lines.append(f"{run['name']:<12} {run['kimg']:>5} {run['heldout']:>11.2f} {run['train']:>9.2f} "
                     f"{run['heldout'] - run['train']:>6.2f} {run['sec_per_kimg']:>7.1f}  {trail}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=300, help="training images (default 300)")
    p.add_argument("--kimg", type=float, default=400.0, help="training length of every setting (default 400)")
    p.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated: " + ", ".join(SETTINGS))
    p.add_argument("--fixed-p", type=float, default=0.3, help="p of the 'fixed' setting (default 0.3)")
    p.add_argument("--ada-kimg", type=float, default=100.0, help="ADA's speed for the 'ada' setting (default 100: "
                   "ADA's 500 barely moves p in a short run)")
    p.add_argument("--seed", type=int, default=1000, help="train.py --seed of every setting")
    p.add_argument("--jobs", type=int, default=4, help="runs at once")
    p.add_argument("--num", type=int, default=1024, help="fakes and held-out reals per SWD set (default 1024)")
    p.add_argument("--swd-seed", type=int, default=123, help="z, descriptor and direction seed")
    p.add_argument("--workdir", default="small_data", help="where datasets, runs and grids go")
    args = p.parse_args(argv)
    names = [s.strip() for s in args.settings.split(",") if s.strip()]
    bad = [s for s in names if s not in SETTINGS]
    if bad or not names:
        p.error(f"--settings {args.settings!r}: choose from {', '.join(SETTINGS)}")
    if args.images < 2 or args.images % 2 or args.num < 1 or args.jobs < 1 or not args.kimg > 0:
        p.error("--images must be even and >= 2; --num, --jobs and --kimg positive")
    args.workdir = os.path.abspath(args.workdir)
    os.makedirs(args.workdir, exist_ok=True)
    train_dir, heldout_dir = make_datasets(args.workdir, args.images, args.num)

    common = ["--data", train_dir, *demo_flags(), "--total-kimg", f"{args.kimg:g}"]
    pending = [dict(name=n, seed=args.seed, flags=common + setting_flags(n, args)) for n in names]
    # The scorers come first: a failure there must not leave training processes behind.
    heldout = demo_check.read_reals(heldout_dir, args.num)      # 2 * num images: A, then B
    train = demo_check.read_reals(train_dir, args.images // 2)  # all `images` of the training set
    scorers = {"heldout": (demo_check.Scorer(heldout[:args.num], args.swd_seed), args.num),
               "train": (demo_check.Scorer(train, args.swd_seed), args.images)}
    floors = {"heldout": scorers["heldout"][0](heldout[args.num:])["avg"],
              "train": scorers["train"][0](heldout[:args.images])["avg"]}
    running, done = [], []
    signal.signal(signal.SIGTERM, demo_sweep._interrupt)
    try:
        while pending and len(running) < args.jobs:
            demo_sweep.start_next(pending, running, args.workdir, args.workdir)
        while running:
            for run in list(running):
                if run["proc"].poll() is not None:
                    running.remove(run)
                    run["returncode"] = run.pop("proc").returncode
                    score(run, scorers, args)
                    done.append(run)
                    print(report([run], floors, args.images).splitlines()[-1], flush=True)
                    if pending:
                        demo_sweep.start_next(pending, running, args.workdir, args.workdir)
            time.sleep(2)
    except KeyboardInterrupt:
        print(f"small_data: interrupted; {len(done)} finished run(s)", file=sys.stderr)
        return 130
    finally:
        demo_sweep.stop(running)  # on any exit: no training process outlives the script
    print("\n" + report(sorted(done, key=lambda r: names.index(r["name"])), floors, args.images), flush=True)
    with open(os.path.join(args.workdir, "small_data.json"), "w") as f:
        json.dump(dict(floors=floors, runs=done, args=vars(args)), f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
