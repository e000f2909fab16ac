"""Benchmark the metrics: FID-Inception feature throughput and the time of an FID with a tiny generator.

    python benchmarks/bench_metrics.py                    # defaults: batch 50, FID over 10k measured on 1k
    python benchmarks/bench_metrics.py --fid-measure 10000  # the full 10k (slow on a CPU)

Random Inception weights (speed does not depend on the values) and a tiny random generator at 32x32, so
no download is needed. When --fid-measure is smaller than --fid-num, the per-image time of the measured
run is extrapolated to --fid-num images and the printout says so.
"""
import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def bench_inception(batch, batches, size):
    from stylegan_tf.metrics import inception
    net = inception.FIDInception(inception.build_fid_inception(), mode="tf1", weights_id="random")
    rs = np.random.RandomState(0)
    images = rs.randint(0, 256, size=(batch, size, size, 3)).astype(np.uint8)
    t = time.perf_counter()
    net.features(images, batch_size=batch)  # trace + first run
    warm = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(batches):
        net.features(images, batch_size=batch)
    dt = time.perf_counter() - t
    rate = batch * batches / dt
    print(f"inception features: {rate:.1f} img/s  (batch {batch}, {size}x{size} -> 299x299, "
          f"{batches} batches, first call with tracing {warm:.1f} s)")
    return net, rate


def bench_fid(net, num, measure, batch):
    from stylegan_tf.data import create_demo
    from stylegan_tf.metrics import frechet_inception_distance as fid
    from stylegan_tf.metrics import metric_base
    from stylegan_tf.networks import Generator

    G = Generator(resolution=32, fmap_base=64, fmap_max=32, latent_size=32, dlatent_size=32, mapping_fmaps=32)
    G.run(np.zeros((1, 32), np.float32), None, noise_mode="random")  # trace outside the timing
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "faces")
        create_demo(data, count=min(measure, 2000), resolution=32, progress=False)
        t = time.perf_counter()
        ctx = metric_base.MetricContext(G, data, batch_size=batch, progress=False, num_images=measure,
                                        inception=net, use_cache=False)
        reals = ctx.real_features(measure)
        t_reals = time.perf_counter() - t
        t = time.perf_counter()
        fakes = ctx.fake_features(measure)
        t_fakes = time.perf_counter() - t
        t = time.perf_counter()
        value = fid.frechet_distance_from_features(fakes, *fid.feature_statistics(reals))
        t_math = time.perf_counter() - t
    # The D x D statistics and square root do not depend on N once N > 2048: time them at full size.
    feats = np.random.RandomState(1).randn(2100, 2048).astype(np.float32)
    t = time.perf_counter()
    fid.fid_from_features(feats, feats[::-1] + 0.1)
    t_math_full = time.perf_counter() - t
    per_image = (t_reals + t_fakes) / (2 * measure)
    total = per_image * 2 * num + t_math_full
    how = "measured" if measure == num else f"extrapolated from {measure} reals + {measure} fakes"
    print(f"fid over {measure}+{measure} images: reals {t_reals:.1f} s, fakes {t_fakes:.1f} s, "
          f"statistics {t_math:.1f} s (FID {value:.3f} with random weights)")
    print(f"FID statistics + trace sqrt at 2048-d: {t_math_full:.1f} s")
    print(f"fid{num // 1000}k with a tiny 32x32 generator: {total:.0f} s ({how}; "
          f"{per_image * 1e3:.1f} ms per image)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--batches", type=int, default=3, help="timed batches for the feature throughput")
    p.add_argument("--size", type=int, default=64, help="input image size (resized to 299)")
    p.add_argument("--fid-num", type=int, default=10000)
    p.add_argument("--fid-measure", type=int, default=1000)
    args = p.parse_args()
    import tensorflow as tf
    print(f"TensorFlow {tf.__version__}, devices: {[d.device_type for d in tf.config.list_physical_devices()]}, "
          f"{os.cpu_count()} CPU cores")
    net, _ = bench_inception(args.batch, args.batches, args.size)
    bench_fid(net, args.fid_num, min(args.fid_measure, args.fid_num), args.batch)


if __name__ == "__main__":
    main()
