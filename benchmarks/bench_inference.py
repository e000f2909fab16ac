"""Gs inference speed: images/second of Generator.run at several resolutions (default channel counts).

    python benchmarks/bench_inference.py                       # 64, 256, 1024; batch 8; 3 timed batches
    python benchmarks/bench_inference.py --resolutions 64 --batches 5 --noise random

Weights are random (speed does not depend on them). The first batch of each resolution traces and is not
timed. Prints one line per resolution.
"""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def bench(resolution, batch_size, batches, noise_mode, truncation_psi):
    import tensorflow as tf
    from stylegan_tf.networks import Generator
    t0 = time.perf_counter()
    Gs = Generator(resolution=resolution)
    build_s = time.perf_counter() - t0
    rng = np.random.RandomState(0)
    z = rng.randn(batch_size, Gs.latent_size).astype(np.float32)
    t0 = time.perf_counter()
    Gs.run(z, truncation_psi=truncation_psi, noise_mode=noise_mode, batch_size=batch_size)
    first_s = time.perf_counter() - t0
    times = []
    for _ in range(batches):
        z = rng.randn(batch_size, Gs.latent_size).astype(np.float32)
        t0 = time.perf_counter()
        Gs.run(z, truncation_psi=truncation_psi, noise_mode=noise_mode, batch_size=batch_size)
        times.append(time.perf_counter() - t0)
    per_batch = float(np.median(times))
    params = sum(int(np.prod(v.shape)) for v in Gs.trainable_weights)
    device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    print(f"{resolution:5d}^2  {device}  batch {batch_size}  {batch_size / per_batch:8.2f} img/s  "
          f"({per_batch * 1000:.0f} ms/batch median of {batches}; build {build_s:.1f} s, first batch incl. "
          f"trace {first_s:.1f} s; {params:,} trainable params)", flush=True)
    return batch_size / per_batch


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resolutions", type=int, nargs="+", default=[64, 256, 1024])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--batches", type=int, default=3, help="timed batches per resolution (after one warm-up)")
    p.add_argument("--noise", default="const", choices=["const", "random", "none"])
    p.add_argument("--truncation-psi", type=float, default=0.7)
    a = p.parse_args()
    if a.batches < 1 or a.batch_size < 1:
        p.error("--batches and --batch-size must be >= 1")
    for r in a.resolutions:
        bench(r, a.batch_size, a.batches, a.noise, a.truncation_psi)


if __name__ == "__main__":
    main()
