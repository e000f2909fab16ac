"""The training batches of a dataset: one deterministic order, read by batch index, for tf.data and numpy alike.

The stream is the concatenation of per-epoch permutations of the images (numpy's `default_rng([seed, epoch])`),
cut into batches of B: batch k holds stream positions [kB, (k+1)B), so any batch is found without reading the
ones before it (a run resumed mid-phase starts at its step). Mirror flips are drawn per batch from
`default_rng([seed, k, 1])`. Records are read by index through data/level_reader.py's `LevelReader` (from a cache
of the decoded level when it fits in memory). `make_tf_dataset` (tf.data: `tf.numpy_function` over batch indices)
and `numpy_reader.iterate_batches` (a prefetch thread) give the same batches bit for bit for the same seed.

The original shuffles through a 4096 MB window of records (`tf.data.Dataset.shuffle`); a full permutation per epoch
is at least as random, and it is what makes batch k computable on its own. See docs/dataset.md.
"""
import collections
import concurrent.futures
import itertools
import os
import threading

import numpy as np

from stylegan_tf.data import level_reader

SCALE, BIAS = np.float32(2.0 / 255.0), np.float32(-1.0)   # the original's uint8 -> [-1, 1]


class BatchStream:
    """The batches of one dataset level (or pyramid of levels), in one seeded order, by index.

    Args:
        info: an opened dataset (`open_dataset`), or a view of one with `record_indices` (the records it keeps,
            in order; --subset-class's) and `labels` aligned with them.
        resolution: the level to read (default: the dataset's full resolution).
        batch_size: images per batch.
        mirror: flip each image left-right with p = 0.5 (one draw per image, all levels of it alike).
        shuffle: a fresh permutation of the images every epoch; else record order.
        repeat: endless (epochs follow each other inside batches too); else one epoch.
        seed: the order's and the flips' seed (None: drawn at random).
        drop_remainder: drop a last partial batch (default: when repeating, which never has one).
        pyramid: images are a tuple of every level 4x4 .. `resolution`, lowest first (MSG-GAN): the same record
            of each level file, flipped alike.
        cache_mb: decoded levels up to this many MB are kept in memory (default level_reader.CACHE_MB).
        shard: (index, count): each batch is the index-th of `count` equal slices of the global batch of
            `batch_size` (one worker's share in multi-worker training, which reads nothing else); (0, 1): all.

    Example:
        >>> stream = BatchStream(open_dataset("datasets/mine"), 32, batch_size=16, seed=5)
        >>> images, labels = stream.batch(1000)          # float32 [16, 32, 32, 3], labels [16, L]
        >>> share = BatchStream(open_dataset("datasets/mine"), 32, batch_size=16, seed=5, shard=(1, 2))
        >>> share.batch(1000)[0].shape                   # images 8..15 of the batch above
        (8, 32, 32, 3)
    """

    def __init__(self, info, resolution=None, batch_size=32, mirror=False, shuffle=True, repeat=True, seed=None,
                 drop_remainder=None, pyramid=False, cache_mb=None, shard=(0, 1)):
        resolution = info.resolution if resolution is None else int(resolution)
        info.level_path(resolution)   # one line naming the levels the dataset has, if not one of them
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        index, count = (int(x) for x in shard)
        if not 0 <= index < count or self.batch_size % count:
            raise ValueError(f"shard {index} of {count}: the batch of {self.batch_size} must split into {count} "
                             "equal shares")
        self.shard = (index, count)
        self.share = self.batch_size // count
        self.mirror, self.shuffle, self.repeat, self.pyramid = bool(mirror), bool(shuffle), bool(repeat), bool(pyramid)
        seed = int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF) if seed is None else int(seed)
        self.seed = seed % (1 << 63)   # numpy seeds are non-negative; every seed >= 0 is itself
        self.resolutions = [r for r in sorted(info.levels) if r <= resolution] if pyramid else [resolution]
        records = getattr(info, "record_indices", None)
        self.records = np.arange(info.num_images, dtype=np.int64) if records is None else np.asarray(records, np.int64)
        self.labels = np.asarray(info.labels, np.float32)
        if len(self.labels) != len(self.records):
            raise ValueError(f"{len(self.labels)} labels for {len(self.records)} records")
        n = len(self.records)
        drop = self.repeat if drop_remainder is None else bool(drop_remainder)
        self.full_batches = self.repeat or drop          # every batch has batch_size images: a static shape
        self.num_batches = None if self.repeat else (n // self.batch_size if drop else -(-n // self.batch_size))
        self.readers = [level_reader.level_reader(info.level_path(r), (info.num_channels, r, r))
                        for r in self.resolutions]
        level_reader.cache_levels(self.readers, cache_mb)
        self._perms, self._perms_lock = {}, threading.Lock()

    def _permutation(self, epoch):
        with self._perms_lock:
            perm = self._perms.get(epoch)
            if perm is None:
                perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.records))
                self._perms[epoch] = perm
                for old in sorted(self._perms)[:-4]:   # batches run ahead in parallel by a few epochs at most
                    del self._perms[old]
            return perm

    def positions(self, k):
        """Indices into `records`/`labels` of batch k's images (empty past the end of a non-repeating stream)."""
        n, b = len(self.records), self.batch_size
        end = (k + 1) * b if self.repeat else min((k + 1) * b, n)
        if self.num_batches is not None and k >= self.num_batches:
            end = k * b
        pos = np.arange(k * b, max(k * b, end), dtype=np.int64)
        if not self.shuffle:
            return pos % n
        epochs, within = np.divmod(pos, n)
        out = np.empty_like(pos)
        for e in np.unique(epochs).tolist():
            sel = epochs == e
            out[sel] = self._permutation(e)[within[sel]]
        return out

    def flips(self, k, count):
        """Which of batch k's `count` images are mirrored."""
        if not self.mirror:
            return np.zeros(count, bool)
        return np.random.default_rng([self.seed, k, 1]).uniform(size=count) < 0.5

    def batch_uint8(self, k):
        """Batch k as (tuple of uint8 NHWC levels, lowest first, flips applied; labels float32 [B, L])."""
        j = self.positions(int(k))
        if not len(j):
            raise IndexError(f"batch {k} is past the end of the stream ({self.num_batches} batches)")
        flip = self.flips(int(k), len(j))
        if self.shard[1] > 1:
            # This worker's slice of the global batch, with the flips the whole batch drew.
            part = slice(self.shard[0] * self.share, (self.shard[0] + 1) * self.share)
            j, flip = j[part], flip[part]
        ids = self.records[j]
        levels = []
        for reader in self.readers:
            images = reader.read(ids)
            if flip.any():
                images[flip] = images[flip, :, ::-1]
            levels.append(images)
        return tuple(levels), self.labels[j]

    def batch(self, k):
        """Batch k as the model takes it: (images float32 [-1, 1] NHWC, or a tuple of levels with `pyramid`;
        labels float32 [B, L])."""
        levels, labels = self.batch_uint8(k)
        levels = [x.astype(np.float32) * SCALE + BIAS for x in levels]
        return (tuple(levels) if self.pyramid else levels[0]), labels

    def numpy_batches(self, start=0, prefetch=2, workers=None):
        """numpy batches from batch `start` on (`batch`), in order; with `prefetch`, decoded ahead by `workers`
        threads (default: up to 4; numpy's checks and copies release the GIL, so large levels decode in
        parallel as tf.data's parallel map does), at least `prefetch` batches in flight."""
        stop = self.num_batches
        indices = itertools.count(int(start)) if stop is None else range(int(start), stop)
        if not prefetch:
            return (self.batch(k) for k in indices)
        workers = int(workers or min(4, os.cpu_count() or 1))
        return _ordered_map(self.batch, indices, max(int(prefetch), workers), workers)

    def tf_dataset(self, start=0, num_parallel_calls=None):
        """A `tf.data.Dataset` of the batches from batch `start` on: `tf.numpy_function` over batch indices (parallel,
        deterministic order), uint8 -> float32 in TensorFlow, prefetched. Static batch size when `full_batches`."""
        import tensorflow as tf
        stop = 2 ** 62 if self.num_batches is None else max(int(start), self.num_batches)
        count = len(self.resolutions)
        channels = self.readers[0].image_shape[-1]
        b = self.share if self.full_batches else None

        def fetch(k):
            levels, labels = self.batch_uint8(int(k))
            return (*levels, labels)

        def convert(k):
            out = tf.numpy_function(fetch, [k], [tf.uint8] * count + [tf.float32], stateful=False)
            levels = []
            for x, r in zip(out[:count], self.resolutions):
                x.set_shape([b, r, r, channels])
                levels.append(tf.cast(x, tf.float32) * SCALE + BIAS)
            labels = out[count]
            labels.set_shape([b, self.labels.shape[1]])
            return (tuple(levels) if self.pyramid else levels[0]), labels

        parallel = tf.data.AUTOTUNE if num_parallel_calls is None else num_parallel_calls
        ds = tf.data.Dataset.range(int(start), stop)
        return ds.map(convert, num_parallel_calls=parallel, deterministic=True).prefetch(tf.data.AUTOTUNE)


def _ordered_map(fn, items, in_flight, workers):
    """fn(item) for each item, in order, computed by `workers` threads up to `in_flight` items ahead; an
    exception of fn is raised here, at its item."""
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="batches") as pool:
        pending = collections.deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= in_flight:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:   # a consumer that stops early: nothing more is started
                future.cancel()
