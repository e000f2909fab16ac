#!/usr/bin/env python
"""The input pipeline's cost per training batch: ours (data/batches.py, tf.data and numpy, with and without the
decoded-level cache) against the window-shuffle tf.data reader (the official reader's design).

    python benchmarks/bench_input.py                                   # the demo dataset, 32x32, batch 16
    python benchmarks/bench_input.py --data datasets/mine --res 256 --batch 32

For each pipeline it pulls `--batches` batches as fast as it can (after `--warmup` batches, which include filling
the cache) and prints wall ms/batch and process CPU ms/batch (the CPU it takes from training, which shares the
machine), medians over `--repeats` alternated rounds, and the ratio reference / ours. The time to the first batch
(the cache fill) is printed apart. Run it on an idle machine; on a shared one CPU ms is the better figure.
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cpu_seconds():
    return time.process_time()   # every thread of the process (tf.data's too), finer than os.times


def window_shuffle_reference(info, res, batch_size, seed, shuffle_mb=1024):
    """tf.data's TFRecordDataset -> shuffle(window) -> repeat -> batch -> parse -> float -> prefetch: the official
    reader's structure, no mirror."""
    import numpy as np
    import tensorflow as tf
    records = tf.data.TFRecordDataset(info.level_path(res), compression_type="", buffer_size=8 << 20)
    ds = tf.data.Dataset.zip((records, tf.data.Dataset.from_tensor_slices(info.labels)))
    window = int(min(info.num_images, max(1, (shuffle_mb << 20) // (info.num_channels * res * res + 32))))
    ds = ds.shuffle(window, seed=seed, reshuffle_each_iteration=True).repeat().batch(batch_size, drop_remainder=True)

    def convert(serialized, labels):
        feats = tf.io.parse_example(serialized, {"shape": tf.io.FixedLenFeature([3], tf.int64),
                                                 "data": tf.io.FixedLenFeature([], tf.string)})
        x = tf.reshape(tf.io.decode_raw(feats["data"], tf.uint8), [batch_size, info.num_channels, res, res])
        x = tf.transpose(x, [0, 2, 3, 1])
        return tf.cast(x, tf.float32) * np.float32(2 / 255) - 1, labels

    return ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def measure(make_iter, warmup, batches):
    """(wall s and CPU s to the first batch, wall s/batch, CPU s/batch) of pulling batches from a fresh iterator."""
    t0, c0 = time.perf_counter(), cpu_seconds()
    it = make_iter()
    next(it)
    first, first_cpu = time.perf_counter() - t0, cpu_seconds() - c0
    for _ in range(warmup):
        next(it)
    w0, c0 = time.perf_counter(), cpu_seconds()
    for _ in range(batches):
        next(it)
    return first, first_cpu, (time.perf_counter() - w0) / batches, (cpu_seconds() - c0) / batches


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="dataset folder (default: the demo dataset in the cache)")
    p.add_argument("--res", type=int, default=32)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--batches", type=int, default=300)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    from stylegan_tf.data import numpy_reader, open_dataset
    if args.data is None:
        from stylegan_tf.training.prepare import ensure_demo_dataset
        info = ensure_demo_dataset()
    else:
        info = open_dataset(args.data)
    res, mb = args.res, args.batch
    pipelines = {
        "reference: tf.data window shuffle": lambda: window_shuffle_reference(info, res, mb, 0).as_numpy_iterator(),
        "ours: tf.data, cached level": lambda: info.make_tf_dataset(res, mb, seed=0).as_numpy_iterator(),
        "ours: tf.data, uncached": lambda: info.make_tf_dataset(res, mb, seed=0, cache_mb=0).as_numpy_iterator(),
        "ours: numpy, cached level": lambda: numpy_reader.iterate_batches(info, res, mb, seed=0),
        "ours: numpy, uncached": lambda: numpy_reader.iterate_batches(info, res, mb, seed=0, cache_mb=0),
    }
    results = {name: [] for name in pipelines}
    for _ in range(args.repeats):
        for name, make in pipelines.items():   # alternated: every round runs each once
            numpy_reader.clear_readers()        # a fresh process's state: the cache is filled again
            results[name].append(measure(make, args.warmup, args.batches))
    load = os.getloadavg()
    print(f"{info.path}: {info.num_images} images, {res}x{res}, batch {mb}; load {load[0]:.2f} {load[1]:.2f}; "
          f"medians of {args.repeats} alternated rounds of {args.batches} batches")
    print(f"{'pipeline':36s} {'1st batch s':>11s} {'(CPU s)':>8s} {'wall ms/batch':>14s} {'CPU ms/batch':>13s}")
    med = {n: [statistics.median(v[i] for v in r) for i in range(4)] for n, r in results.items()}
    for name, (first, first_cpu, wall, cpu) in med.items():
        print(f"{name:36s} {first:11.3f} {first_cpu:8.3f} {wall * 1e3:14.3f} {cpu * 1e3:13.3f}")
    ref = med["reference: tf.data window shuffle"]
    for name in ("ours: tf.data, cached level", "ours: numpy, cached level"):
        print(f"ratio reference / {name}: wall {ref[2] / max(med[name][2], 1e-9):.1f}x, "
              f"CPU {ref[3] / max(med[name][3], 1e-9):.1f}x")


if __name__ == "__main__":
    main()
