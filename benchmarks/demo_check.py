#!/usr/bin/env python
"""The demo as a new user meets it: time `python train.py` end to end from an empty cache, then score its
final Gs with SWD against the demo reals, next to the reals-vs-reals floor and a blur calibration.

    python benchmarks/demo_check.py                              # fresh cache, the demo, score, PASS/FAIL
    python benchmarks/demo_check.py --update-readme-image        # ... and copy its last fakes grid for the README
    python benchmarks/demo_check.py --cache ~/.cache/stylegan_tf -- --total-kimg 64 --gamma 10   # a candidate
    python benchmarks/demo_check.py --score results/00000-*/network-snapshot-*.keras            # score only

Targets: the whole run (building the 10,000-face dataset + training) takes <= 10 minutes,
and the final snapshot's Gs scores SWD <= 20 (the level of the reals blurred by a 2x2 box: 20.7).

SWD settings: stylegan_tf.metrics.sliced_wasserstein (ProGAN's multi-scale SWD, x 1e3, averaged over the
32x32 and 16x16 Laplacian levels); reals A = the first N records of the dataset's 32x32 level (file order),
reals B = the next N; fakes from z = RandomState(seed).randn(N, latent_size), truncation off, random noise,
quantised as NVIDIA's metrics do; descriptor positions and projection directions seeded by `seed`.
N = 4096, seed = 123. The floor is B vs A (two disjoint halves of the reals); the calibrations degrade B: a
2x2 box average with nearest upsampling (each 2x2 block replaced by its mean: the target's level, 20.7), and a
2x2 box filter with stride 1 (27.5).
Wall time on a shared machine is noisy: the load average is printed with it.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

# train.py runs with the user's environment, not this script's quieter TensorFlow logging.
USER_ENV = dict(os.environ)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

RES = 32
BUDGET_S = 600.0
SWD_TARGET = 20.0
README_IMAGE = os.path.join(ROOT, "docs", "images", "demo-fakes.png")


def load_avg():
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def run_demo(workdir, cache, train_args):
    """`python train.py [train_args]` in `workdir` with STYLEGAN_TF_CACHE=cache; returns (wall s, build s, run dir).

    The build time is from the "Creating the demo dataset" line to the next line train.py prints after the
    dataset's progress bar."""
    env = dict(USER_ENV, STYLEGAN_TF_CACHE=cache)
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), *train_args]
    print("$ STYLEGAN_TF_CACHE=%s %s   (in %s)" % (cache, " ".join(cmd[1:]), workdir), flush=True)
    t0 = time.time()
    build_start = build_s = None
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        now = time.time()
        if build_start is not None and build_s is None and line.strip() and "demo faces" not in line:
            build_s = now - build_start
        if line.startswith("Creating the demo dataset"):
            build_start = now
        # Keras' progress bar redraws with carriage returns and the tick line follows it: show the tick line.
        text = line.rstrip().split("\r")[-1]
        text = text[text.find("tick "):] if "tick " in text else text
        print("  [%6.1fs] %s" % (now - t0, text), flush=True)
    if proc.wait() != 0:
        sys.exit(f"demo_check: train.py exited with status {proc.returncode}")
    wall = time.time() - t0
    runs = sorted(glob.glob(os.path.join(workdir, "results", "[0-9]*")))
    if not runs:
        sys.exit(f"demo_check: train.py finished but left no run directory under {workdir}/results")
    return wall, build_s, runs[-1]


def demo_data_dir():
    """The demo dataset folder under the cache root (imported late: train.py must start in a clean process)."""
    from stylegan_tf.training.prepare import demo_dataset_dir
    return demo_dataset_dir()


def read_reals(data_dir, n):
    """The first 2n images of the dataset's 32x32 level, uint8 NHWC in file order (A = [:n], B = [n:])."""
    from stylegan_tf.data.numpy_reader import parse_example, read_records
    name = os.path.basename(os.path.normpath(data_dir))
    path = os.path.join(data_dir, "%s-r%02d.tfrecords" % (name, int(np.log2(RES))))
    if not os.path.isfile(path):
        sys.exit(f"demo_check: {path} not found (is {data_dir} a demo dataset folder?)")
    images = np.stack([parse_example(r) for r in read_records(path, limit=2 * n)]).transpose(0, 2, 3, 1)
    if len(images) < 2 * n:
        sys.exit(f"demo_check: {path} holds {len(images)} images, {2 * n} needed for --num {n}")
    return images


def fakes(snapshot, n, seed):
    """uint8 NHWC fakes of the snapshot's Gs at RES: truncation off, random noise; larger nets box-downscaled."""
    import stylegan_tf
    from stylegan_tf.metrics.inception import quantize_images
    Gs = stylegan_tf.load_network(snapshot).Gs
    if Gs.resolution < RES:
        sys.exit(f"demo_check: {snapshot} generates {Gs.resolution}x{Gs.resolution}; SWD here is at {RES}x{RES}")
    z = np.random.RandomState(seed).randn(n, Gs.latent_size).astype(np.float32)
    x = np.asarray(Gs.run(z, truncation_psi=1.0, noise_mode="random", batch_size=128), np.float32)
    while x.shape[1] > RES:   # as the dataset's own lower levels are made
        x = x.reshape(n, x.shape[1] // 2, 2, x.shape[2] // 2, 2, x.shape[3]).mean(axis=(2, 4))
    return quantize_images(x)


def box2x2(images):
    """2x2 box filter, stride 1 (edge pixels repeated), in the [-1, 1] float domain; uint8 in and out."""
    from stylegan_tf.metrics.inception import quantize_images
    x = np.pad(images.astype(np.float32) / 127.5 - 1.0, ((0, 0), (0, 1), (0, 1), (0, 0)), mode="edge")
    return quantize_images((x[:, :-1, :-1] + x[:, 1:, :-1] + x[:, :-1, 1:] + x[:, 1:, 1:]) / 4)


def box_down_up(images):
    """2x2 box average to half size, then nearest upsampling back; uint8 in and out."""
    from stylegan_tf.metrics.inception import quantize_images
    n, h, w, c = images.shape
    x = (images.astype(np.float32) / 127.5 - 1.0).reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
    return quantize_images(x.repeat(2, axis=1).repeat(2, axis=2))


class Scorer:
    """SWD of uint8 image sets against reals A, as `sliced_wasserstein.swd_from_descriptors` computes it (same
    directions, same numbers), with the reals' descriptors and sorted projections computed once for all sets.

    Args:
        reals_a: uint8 NHWC reals at RES.
        seed: descriptor positions and projection directions.
        on_device: project and sort with jax.numpy (a GPU sorts the 4 x 2 x 512 columns of 524,288 values in
            well under a second, numpy takes ~100 s); float32 throughout, so the same numbers to rounding.
    """

    def __init__(self, reals_a, seed, on_device=False):
        from stylegan_tf.metrics import sliced_wasserstein as sw
        self.sw, self.n, self.seed = sw, len(reals_a), seed
        self.xp = np
        if on_device:
            import jax.numpy as jnp
            self.xp = jnp
        ref = sw.DescriptorSet(self.n, RES, 3, seed=seed)
        ref.add(reals_a)
        self.resolutions = ref.resolutions
        # swd_from_descriptors draws every level's directions from one RandomState(seed), level by level.
        rng = np.random.RandomState(seed)
        self.levels = []
        for desc in ref.finalize():
            desc = self.xp.asarray(desc)
            repeats = []
            for _ in range(sw.DIR_REPEATS):
                dirs = rng.randn(desc.shape[1], sw.DIRS_PER_REPEAT)
                dirs = (dirs / np.sqrt(np.square(dirs).sum(axis=0, keepdims=True))).astype(np.float32)
                dirs = self.xp.asarray(dirs)
                repeats.append((dirs, self._sorted(desc, dirs)))
            self.levels.append(repeats)

    def _sorted(self, desc, dirs):
        """Each direction's projections of the descriptors, sorted (one row per direction, as the metric)."""
        if self.xp is np:
            return np.sort((desc @ dirs).T, axis=1)
        return self.xp.sort(self.xp.matmul(desc, dirs, precision="highest").T, axis=1)

    def __call__(self, images):
        s = self.sw.DescriptorSet(self.n, RES, 3, seed=self.seed)
        s.add(images)
        dist = []
        for f, level in zip(s.finalize(), self.levels):
            f = self.xp.asarray(f)
            # float32 means, as the metric takes them (np.asarray only brings a device scalar back).
            dist.append(1e3 * float(np.mean([np.asarray(self.xp.abs(self._sorted(f, dirs) - real).mean())
                                             for dirs, real in level])))
        return {**dict(zip(self.resolutions, dist)), "avg": float(np.mean(dist))}


def fmt(d):
    return "SWD %6.2f  (32: %.2f, 16: %.2f)" % (d["avg"], d[32], d[16])


def kimg_of(path):
    m = re.search(r"(\d+)\.keras$", path)
    return int(m.group(1)) if m else -1


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Arguments after -- go to train.py (to try a candidate configuration).")
    p.add_argument("--cache", help="use this cache folder (its demo dataset if built) instead of a fresh one")
    p.add_argument("--workdir", help="run train.py here, and keep its results/ (default: in the temporary "
                   "folder)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder with the fresh cache (and the "
                   "run, without --workdir); its path is printed")
    p.add_argument("--score", nargs="+", metavar="SNAPSHOT", help="only score these .keras snapshots (or "
                   "official .pkl); no training")
    p.add_argument("--data", help="demo dataset folder for --score (default: the cache's demo-faces-64)")
    p.add_argument("--num", type=int, default=4096, help="images per SWD set (default 4096)")
    p.add_argument("--seed", type=int, default=123, help="z, descriptor and direction seed (default 123)")
    p.add_argument("--no-calib", action="store_true", help="skip the floor and calibration rows")
    p.add_argument("--update-readme-image", action="store_true",
                   help=f"copy the run's last fakes grid to {os.path.relpath(README_IMAGE, ROOT)}")
    args, train_args = p.parse_known_args(argv)
    if train_args and train_args[0] == "--":
        train_args = train_args[1:]
    if args.score and (train_args or args.update_readme_image):
        p.error("--score takes no train.py arguments and no --update-readme-image")
    missing = [f for f in args.score or [] if not os.path.isfile(f)]
    if missing:
        p.error(f"--score {missing[0]}: no such file; give .keras snapshots or official .pkl files")

    print("load average at start: %.2f %.2f %.2f; %d CPUs" % (*load_avg(), os.cpu_count()), flush=True)
    # The fresh cache (and the run, without --workdir) live here; removed however the check ends, unless --keep.
    tmp = None if args.score else tempfile.mkdtemp(prefix="demo_check-")
    try:
        return check(args, train_args, tmp)
    finally:
        if tmp and args.keep:
            print("kept:", tmp)
        elif tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def check(args, train_args, tmp):
    """Run (unless --score) and score; prints the table and the PASS/FAIL lines."""
    wall = build_s = run_dir = None
    if args.score:
        snapshots = args.score
        data_dir = args.data or demo_data_dir()
    else:
        workdir = args.workdir or tmp
        os.makedirs(workdir, exist_ok=True)
        cache = os.path.abspath(os.path.expanduser(args.cache)) if args.cache else os.path.join(tmp, "cache")
        wall, build_s, run_dir = run_demo(workdir, cache, train_args)
        print("load average after the run: %.2f %.2f %.2f" % load_avg(), flush=True)
        snapshots = sorted(glob.glob(os.path.join(run_dir, "network-snapshot-*.keras")), key=kimg_of)[-1:]
        if not snapshots:
            sys.exit(f"demo_check: no network-snapshot-*.keras in {run_dir}")
        os.environ["STYLEGAN_TF_CACHE"] = cache
        data_dir = args.data or demo_data_dir()

    t = time.time()
    reals = read_reals(data_dir, args.num)
    a, b = reals[:args.num], reals[args.num:]
    score = Scorer(a, args.seed)
    print("reals A/B: %d + %d images of %s's %dx%d level (%.0fs)" % (args.num, args.num, data_dir, RES, RES,
                                                                   time.time() - t), flush=True)
    rows = {}
    if not args.no_calib:
        for name, imgs in (("floor: reals B vs A", b), ("calib: reals B, 2x2 box down + nearest up", box_down_up(b)),
                           ("calib: reals B, 2x2 box filter (stride 1)", box2x2(b))):
            rows[name] = score(imgs)
            print("%-45s %s" % (name, fmt(rows[name])), flush=True)
    for snap in snapshots:
        t = time.time()
        rows[snap] = score(fakes(snap, args.num, args.seed))
        print("%-45s %s  (%.0fs)" % (os.path.relpath(snap), fmt(rows[snap]), time.time() - t), flush=True)

    if args.score:
        return 0
    final = rows[snapshots[-1]]["avg"]
    grids = sorted(glob.glob(os.path.join(run_dir, "fakes*.png")))
    print()
    print("demo run:        %s (last grid %s)" % (run_dir, os.path.basename(grids[-1]) if grids else "none"))
    if build_s is not None:
        print("dataset build:   %.1f s" % build_s)
    else:
        print("dataset build:   none (the cache already held the demo dataset)")
    print("%s %.1f s = %.1f min   target <= %.0f min: %s"
          % ("end to end:     " if build_s is not None else "train.py only:  ", wall, wall / 60, BUDGET_S / 60,
             "PASS" if wall <= BUDGET_S else "FAIL"))
    print("final Gs:        SWD %.2f   target <= %.0f: %s" % (final, SWD_TARGET, "PASS" if final <= SWD_TARGET
                                                                else "FAIL"))
    if not args.no_calib:
        print("floor (B vs A):  %.2f   2x2 box down+up (the target's level): %.2f   2x2 box filter: %.2f"
              % tuple(rows[k]["avg"] for k in list(rows)[:3]))
    if args.update_readme_image and grids:
        shutil.copyfile(grids[-1], README_IMAGE)
        print("copied %s -> %s" % (grids[-1], os.path.relpath(README_IMAGE, ROOT)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
