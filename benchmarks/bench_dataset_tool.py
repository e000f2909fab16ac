"""Throughput of dataset_tool: create_from_images on generated JPEGs, and create_demo.

  python benchmarks/bench_dataset_tool.py [--count 2000] [--resolution 128] [--workers N] [--demo-count 10000]

Prints images/s for one process and for N worker processes. The JPEGs (mixed sizes, 512-1024 px a
side, smooth content like photos) are generated once in a temporary folder, outside the timings.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_jpegs(folder, count, seed=0):
    rng = np.random.RandomState(seed)
    for i in range(count):
        w, h = rng.randint(512, 1025, size=2)
        small = rng.randint(0, 256, [6, 8, 3]).astype(np.uint8)
        im = Image.fromarray(small).resize((int(w), int(h)), Image.Resampling.BICUBIC)
        im.save(os.path.join(folder, f"img{i:05d}.jpg"), quality=90)


def _cpu(workers, cpu_seconds, count):
    # On a shared machine wall time depends on the load; the CPU cost per image does not. It is only
    # measurable in-process (workers=1): pool workers are not children of this process under forkserver.
    return f" ({1000 * cpu_seconds / max(count, 1):.2f} ms CPU/image)" if workers == 1 else ""


def main():
    from stylegan_tf.data import create_demo, create_from_images
    from stylegan_tf.data.workers import default_workers

    p = argparse.ArgumentParser()
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--workers", type=int, default=default_workers())
    p.add_argument("--demo-count", type=int, default=10000, help="0 skips the demo benchmark")
    p.add_argument("--demo-resolution", type=int, default=64)
    args = p.parse_args()

    import tensorflow  # noqa: F401 - imported up front so that it is not timed
    tmp = tempfile.mkdtemp(prefix="bench_dataset_tool.")
    try:
        src = os.path.join(tmp, "jpegs")
        os.makedirs(src)
        t = time.time()
        make_jpegs(src, args.count)
        size = sum(os.path.getsize(os.path.join(src, f)) for f in os.listdir(src))
        print(f"generated {args.count} JPEGs (512-1024 px, {size / 2**20:.0f} MB) in {time.time() - t:.1f}s")
        for workers in sorted({1, args.workers}):
            out = os.path.join(tmp, f"ds{workers}")
            t, c = time.time(), time.process_time()
            s = create_from_images(out, src, resolution=args.resolution, workers=workers, progress=False)
            dt, dc = time.time() - t, time.process_time() - c
            print(f"create_from_images -> {args.resolution}^2, workers={workers}: {s.kept} images in {dt:.1f}s "
                  f"= {s.kept / dt:.1f} images/s" + _cpu(workers, dc, s.kept))
        if args.demo_count:
            for workers in sorted({1, args.workers}):
                out = os.path.join(tmp, f"demo{workers}")
                t, c = time.time(), time.process_time()
                create_demo(out, count=args.demo_count, resolution=args.demo_resolution, workers=workers,
                            progress=False)
                dt, dc = time.time() - t, time.process_time() - c
                print(f"create_demo {args.demo_count} x {args.demo_resolution}^2, workers={workers}: {dt:.1f}s "
                      f"= {args.demo_count / dt:.0f} images/s" + _cpu(workers, dc, args.demo_count))
        print(f"(machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
