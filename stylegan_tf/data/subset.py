"""A labelled dataset seen through one of its classes (train.py --subset-class)."""
import numpy as np

from stylegan_tf.data.batches import BatchStream


class SubsetView:
    """A labelled dataset seen through one class: its images only, and no labels (the networks trained on it are
    unconditional: one class carries no information). Everything the training loop reads from a dataset info
    (`make_tf_dataset`, `iterate_uint8`, counts, levels) is answered for the subset.

    Args:
        info: an opened dataset with labels (`open_dataset`).
        index: the class: its column of the one-hot labels.
        name: the class's name, for messages.

    Example:
        >>> view = SubsetView(open_dataset("datasets/mine"), 2, "cats")
        >>> view.num_images, view.label_size                # the class's images; no labels
    """

    def __init__(self, info, index, name):
        self._info = info
        self.class_index, self.class_name = index, name
        self._mask = np.argmax(info.labels, axis=1) == index
        self.num_images = int(self._mask.sum())
        self.labels = np.zeros([self.num_images, 0], np.float32)
        self.label_size = 0
        self.label_names = None

    def __getattr__(self, name):          # path, resolution, levels, num_channels, level_path, ...
        return getattr(self._info, name)

    @property
    def record_indices(self):
        """The dataset's record indices of the class's images, in record order (what data/batches.py reads)."""
        return np.flatnonzero(self._mask)

    def make_tf_dataset(self, resolution=None, batch_size=32, mirror=False, shuffle=True, repeat=True, seed=None,
                        shuffle_mb=None, num_parallel_calls=None, drop_remainder=None, pyramid=False, start=0,
                        cache_mb=None, shard=(0, 1)):
        """`DatasetInfo.make_tf_dataset` (the same arguments) over the class's images only, labels [B, 0]: the
        class's records in per-epoch permutations, read by index (numpy_reader.iterate_batches on this view gives
        the same batches)."""
        stream = BatchStream(self, resolution, batch_size=batch_size, mirror=mirror, shuffle=shuffle, repeat=repeat,
                             seed=seed, drop_remainder=drop_remainder, pyramid=pyramid, cache_mb=cache_mb,
                             shard=shard)
        return stream.tf_dataset(start=start, num_parallel_calls=num_parallel_calls)

    def iterate_uint8(self, resolution=None, max_images=None, batch_size=64, with_labels=False):
        n = self.num_images if max_images is None else min(int(max_images), self.num_images)
        got, start = 0, 0
        for images in self._info.iterate_uint8(resolution, batch_size=batch_size):
            mask = self._mask[start:start + len(images)]
            start += len(images)
            images = images[mask][:n - got]
            got += len(images)
            if len(images):
                yield (images, np.zeros([len(images), 0], np.float32)) if with_labels else images
            if got >= n:
                return
