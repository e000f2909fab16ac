"""Open a dataset folder (ours or NVIDIA's, e.g. FFHQ's TFRecords) and read it with tf.data."""
import glob
import json
import os
import re

import numpy as np

from stylegan_tf.data.tfrecords import (FORMAT, METADATA_FILE, DatasetError, find_levels, level_path, scan_level,
                                        verify_level)


class DatasetInfo:
    """What a dataset folder holds; `make_tf_dataset` and `iterate_uint8` read it.

    Attributes: path, name, resolution, num_channels, num_images, levels ({resolution: path}, 4..R),
    label_size, labels (float32 [N, L]), label_names (list or None), metadata (dataset.json or {}),
    attributes ({name: float32 [N]} for datasets that store per-image attributes, else {}).
    """

    def __init__(self, path):
        path = os.path.abspath(os.fspath(path))
        if not os.path.isdir(path):
            raise DatasetError(f"{path}: dataset folder not found; pass the folder dataset_tool.py created")
        if path.endswith(".partial"):
            raise DatasetError(f"{path}: unfinished dataset left by an interrupted run; delete it and recreate")
        self.path = path
        self.metadata = self._read_metadata()
        levels = find_levels(path)
        self._check_against_metadata(levels)
        shapes, counts = {}, {}
        for r, p in levels.items():
            shapes[r], counts[r] = scan_level(p)
        top = max(levels)
        channels = shapes[top][0]
        for r, shape in shapes.items():
            if shape != (channels, r, r) or channels not in (1, 3):
                raise DatasetError(f"{levels[r]}: records have shape {list(shape)}, expected {[channels, r, r]} "
                                   f"(C = 1 or 3); the file does not belong to this dataset")
        missing = [r for r in (top >> k for k in range(int(np.log2(top)) - 1)) if r not in levels]
        if missing:
            raise DatasetError(f"{path}: levels {missing} are missing; recreate the dataset")
        if len(set(counts.values())) != 1:
            detail = ", ".join(f"r{int(np.log2(r)):02d}: {n}" for r, n in counts.items())
            raise DatasetError(f"{path}: levels hold different image counts ({detail}); recreate the dataset")
        self.levels = levels
        self.resolution = top
        self.num_channels = channels
        self.num_images = counts[top]
        self.name = os.path.basename(levels[top]).rsplit("-r", 1)[0]
        meta_count = self.metadata.get("count") if self.metadata.get("format") == FORMAT else None
        if isinstance(meta_count, int) and meta_count != self.num_images:
            raise DatasetError(f"{path}: {METADATA_FILE} says {meta_count} images but the level files hold "
                               f"{self.num_images}; recreate the dataset")
        self.labels = self._read_labels()
        self.label_size = int(self.labels.shape[1])
        names = self.metadata.get("label_names")
        self.label_names = list(names) if names and len(names) == self.label_size else None
        self.attributes = self._read_attributes()

    def _read_metadata(self):
        p = os.path.join(self.path, METADATA_FILE)
        if not os.path.isfile(p):
            return {}
        try:
            with open(p, encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, ValueError) as e:
            raise DatasetError(f"{p}: unreadable ({e}); delete it (the TFRecords do not need it)")
        return meta if isinstance(meta, dict) else {}

    def _check_against_metadata(self, levels):
        # Without this, a dataset whose top level file is lost would silently train at half resolution.
        if self.metadata.get("format") != FORMAT:
            return  # NVIDIA's datasets have no dataset.json; another tool's is not ours to interpret
        declared = self.metadata.get("levels")
        if not isinstance(declared, list) or not all(isinstance(r, int) and r >= 4 for r in declared):
            res = self.metadata.get("resolution")
            declared = [res >> k for k in range(int(np.log2(res)) - 1)] if isinstance(res, int) and res >= 4 else []
        missing = [r for r in declared if r not in levels]
        if missing:
            name = os.path.basename(next(iter(levels.values()))).rsplit("-r", 1)[0]
            files = ", ".join(os.path.basename(level_path(self.path, name, r)) for r in missing)
            raise DatasetError(f"{self.path}: {files} {'is' if len(missing) == 1 else 'are'} missing "
                               f"({METADATA_FILE} lists levels {declared}); recreate the dataset")
        extra = [r for r in levels if declared and r not in declared]
        if extra:
            raise DatasetError(f"{levels[extra[0]]}: level {extra[0]}x{extra[0]} is not in {METADATA_FILE} "
                               f"(levels {declared}); remove it or recreate the dataset")

    def _read_labels(self):
        # Like the original reader: the first *.labels file in the folder, if any.
        files = sorted(glob.glob(os.path.join(glob.escape(self.path), "*.labels")))
        if not files:
            return np.zeros([self.num_images, 0], np.float32)
        try:
            labels = np.load(files[0], allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DatasetError(f"{files[0]}: not a numpy label array ({e}); recreate it or delete it")
        if labels.ndim != 2 or labels.shape[0] != self.num_images:
            raise DatasetError(f"{files[0]}: labels have shape {list(labels.shape)}, expected "
                               f"[{self.num_images}, L]; recreate it or delete it")
        return labels.astype(np.float32)

    def _read_attributes(self):
        spec = self.metadata.get("attributes")
        p = os.path.join(self.path, f"{self.name}-attributes.npy")
        if not spec or not os.path.isfile(p):
            return {}
        try:
            values = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DatasetError(f"{p}: not a numpy attribute array ({e}); recreate the dataset")
        if values.ndim != 2 or values.shape != (self.num_images, len(spec)):
            raise DatasetError(f"{p}: shape {list(values.shape)} does not match dataset.json; recreate the dataset")
        return {a["name"]: values[:, i].astype(np.float32) for i, a in enumerate(spec)}

    def __repr__(self):
        return (f"DatasetInfo({self.path!r}, {self.num_images} images, {self.resolution}x{self.resolution}x"
                f"{self.num_channels}, labels {self.label_size})")

    def level_path(self, resolution=None):
        resolution = self.resolution if resolution is None else int(resolution)
        if resolution not in self.levels:
            raise DatasetError(f"{self.path}: no level for resolution {resolution}; "
                               f"it has {sorted(self.levels)}")
        return self.levels[resolution]

    def _parse_batch(self, serialized, resolution):
        import tensorflow as tf
        feats = tf.io.parse_example(serialized, {
            "shape": tf.io.FixedLenFeature([3], tf.int64),
            "data": tf.io.FixedLenFeature([], tf.string)})
        # decode_raw needs equal lengths across the batch; a foreign record of another size fails loudly.
        data = tf.io.decode_raw(feats["data"], tf.uint8)
        n = serialized.shape[0] if serialized.shape[0] is not None else -1  # keep a static batch size
        images = tf.reshape(data, [n, self.num_channels, resolution, resolution])
        return tf.transpose(images, [0, 2, 3, 1])

    def make_tf_dataset(self, resolution=None, batch_size=32, mirror=False, shuffle=True, repeat=True,
                        seed=None, shuffle_mb=None, num_parallel_calls=None, drop_remainder=None, pyramid=False,
                        start=0, cache_mb=None, shard=(0, 1)):
        """tf.data pipeline of (images float32 [-1, 1] NHWC [B, r, r, C], labels float32 [B, L]).

        Reads the level file for `resolution` (default: full). uint8 -> float as the original,
        `x * (2/255) - 1`; with `mirror`, each image is flipped left-right with p = 0.5. Shuffling is a fresh
        permutation of all images every epoch (the original: a 4096 MB window; docs/dataset.md); batch k is
        computed from (seed, k) alone (data/batches.py), so `start=k` begins at batch k without reading the
        batches before it, and `numpy_reader.iterate_batches` gives the same batches without TensorFlow.
        Batches are full when repeating (static shapes for training); `drop_remainder` overrides that.

        With `pyramid` (MSG-GAN), the images are a tuple of every stored level from 4x4 up to `resolution`,
        lowest first, read from the level files side by side: every level file holds the same images in the
        same record order (one `DatasetWriter.add` writes one image's pyramid to all of them), so record i of
        each file is the same image, which shuffling and mirroring keep together. A tuple, not a list: tf.data
        would try to stack a list into one tensor.

        Args:
            resolution: the level to read (default: full).
            batch_size: images per batch.
            mirror: random left-right flips (p = 0.5, drawn from (seed, batch index)).
            shuffle: a new permutation every epoch; else record order.
            repeat: endless; else one epoch.
            seed: order and flips (None: random).
            shuffle_mb: accepted for compatibility and unused (the window of the earlier reader; a permutation
                needs none).
            num_parallel_calls: batches decoded in parallel (default: tf.data.AUTOTUNE).
            drop_remainder: drop a last partial batch (default: when repeating).
            pyramid: every level 4x4 .. `resolution`, lowest first.
            start: the index of the first batch (a run resumed mid-phase starts at its step).
            cache_mb: decoded levels up to this many MB stay in memory (default level_reader.CACHE_MB, 2048).
            shard: (index, count): only the index-th of `count` equal slices of every batch of `batch_size`
                (a worker's share of the global batch in multi-worker training; `BatchStream`).

        Example:
            >>> ds = open_dataset("datasets/mine").make_tf_dataset(32, batch_size=8, pyramid=True, mirror=True)
            >>> [x.shape[1] for x in next(iter(ds))[0]]
            [4, 8, 16, 32]
        """
        from stylegan_tf.data.batches import BatchStream
        stream = BatchStream(self, resolution, batch_size=batch_size, mirror=mirror, shuffle=shuffle, repeat=repeat,
                             seed=seed, drop_remainder=drop_remainder, pyramid=pyramid, cache_mb=cache_mb,
                             shard=shard)
        return stream.tf_dataset(start=start, num_parallel_calls=num_parallel_calls)

    def iterate_uint8(self, resolution=None, max_images=None, batch_size=64, with_labels=False):
        """uint8 NHWC numpy batches in TFRecord order (no shuffle, no mirror); what metrics read.

        With `with_labels`, yields (images, labels) pairs instead. Without TensorFlow installed, the records are
        read by data/numpy_reader.py (the same batches).
        """
        try:
            import tensorflow as tf
        except ImportError:
            from stylegan_tf.data import numpy_reader
            yield from numpy_reader.iterate_uint8(self, resolution, max_images, batch_size, with_labels)
            return
        resolution = self.resolution if resolution is None else int(resolution)
        path = self.level_path(resolution)
        n = self.num_images if max_images is None else min(int(max_images), self.num_images)
        records = tf.data.TFRecordDataset(path, compression_type="", buffer_size=8 << 20).take(n)
        ds = records.batch(batch_size).map(lambda s: self._parse_batch(s, resolution),
                                           num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        start = 0
        try:
            for images in ds.prefetch(2).as_numpy_iterator():
                if with_labels:
                    yield images, self.labels[start:start + len(images)]
                else:
                    yield images
                start += len(images)
        except tf.errors.OpError as e:  # a damaged record (bad checksum, foreign size) in the middle of a file
            try:
                self.verify(resolution)  # names the record
            except DatasetError as damage:
                raise damage from None
            detail = re.sub(r"\{\{.*?\}\}\s*", "", e.message).split(" [Op:")[0].strip()
            raise DatasetError(f"{path}: damaged record ({detail}); recreate the dataset") from None

    def verify(self, resolution=None):
        """Read every record of one level (default: full) and check it; raises DatasetError naming the
        file and record of any damage (see tfrecords.verify_level). Returns the record count."""
        resolution = self.resolution if resolution is None else int(resolution)
        return verify_level(self.level_path(resolution), (self.num_channels, resolution, resolution))


def open_dataset(path):
    """Validate a dataset folder and describe it; raises DatasetError (a ValueError) naming the problem."""
    return DatasetInfo(path)
