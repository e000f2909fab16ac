"""The datasets' numpy batches, without TensorFlow: what JAX training and the metrics read when TensorFlow is not
installed. The records are read by data/level_reader.py (by index) and data/records.py (in order).
"""
import numpy as np

from stylegan_tf.data.batches import BatchStream
from stylegan_tf.data.level_reader import (CACHE_MB, LevelReader, cache_levels, clear_readers,  # noqa: F401
                                           level_reader)
from stylegan_tf.data.records import parse_example, read_records  # noqa: F401  (their home was here)


def iterate_batches(info, resolution=None, batch_size=32, mirror=False, shuffle=True, repeat=True, seed=None,
                    shuffle_mb=None, drop_remainder=None, prefetch=2, pyramid=False, start=0, cache_mb=None):
    """numpy (images float32 [-1, 1] NHWC [B, r, r, C], labels float32 [B, L]) batches: the batches
    `make_tf_dataset` gives for the same arguments, bit for bit (both are `batches.BatchStream`).

    Args:
        info: an opened dataset (`open_dataset`), or a view of one that has `record_indices` (--subset-class).
        resolution, batch_size, mirror, shuffle, repeat, seed, shuffle_mb, drop_remainder, pyramid, start,
            cache_mb: as `DatasetInfo.make_tf_dataset`.
        prefetch: batches decoded ahead by background threads (0: none, in this thread).

    Example:
        >>> batches = iterate_batches(open_dataset("datasets/mine"), 32, batch_size=8, seed=1)
        >>> images, labels = next(batches)
    """
    stream = BatchStream(info, resolution, batch_size=batch_size, mirror=mirror, shuffle=shuffle, repeat=repeat,
                         seed=seed, drop_remainder=drop_remainder, pyramid=pyramid, cache_mb=cache_mb)
    return stream.numpy_batches(start=start, prefetch=prefetch)


def iterate_uint8(info, resolution=None, max_images=None, batch_size=64, with_labels=False):
    """uint8 NHWC numpy batches in record order (what `DatasetInfo.iterate_uint8` gives), without TensorFlow."""
    resolution = info.resolution if resolution is None else int(resolution)
    n = info.num_images if max_images is None else min(int(max_images), info.num_images)
    group, start = [], 0
    for record in read_records(info.level_path(resolution), check_crc=True, limit=n):
        group.append(parse_example(record))
        if len(group) == batch_size:
            images = np.stack(group).transpose(0, 2, 3, 1)
            yield (images, info.labels[start:start + len(images)]) if with_labels else images
            start, group = start + len(images), []
    if group:
        images = np.stack(group).transpose(0, 2, 3, 1)
        yield (images, info.labels[start:start + len(images)]) if with_labels else images
