"""The official StyleGAN dataset layout: one uncompressed TFRecord file per level of detail.

`<dir>/<name>-rNN.tfrecords` holds, for NN = log2(resolution) down to 2, one `tf.train.Example` per image
with `shape` (int64 [C, H, W]) and `data` (raw uint8 bytes, CHW). Record i is the same image in every
file. Optional labels: `<dir>/<name>-rxx.labels`, an `np.save`d float32 [N, L] array in record order.
"""
import glob
import os
import re
import struct

import numpy as np

LEVEL_RE = re.compile(r"^(?P<name>.*)-r(?P<log2>\d\d)\.tfrecords$")


class DatasetError(ValueError):
    """A dataset folder or an input that cannot be used; the message names the path and what to do."""


def level_path(folder, name, resolution):
    return os.path.join(folder, f"{name}-r{int(np.log2(resolution)):02d}.tfrecords")


def labels_path(folder, name):
    return os.path.join(folder, f"{name}-rxx.labels")


def find_levels(folder):
    """{resolution: path} of the level files in `folder`; raises DatasetError when the layout is wrong."""
    files = sorted(glob.glob(os.path.join(glob.escape(folder), "*.tfrecords")))
    if not files:
        raise DatasetError(f"{folder}: no *.tfrecords files; create a dataset with dataset_tool.py first")
    levels, names = {}, set()
    for path in files:
        m = LEVEL_RE.match(os.path.basename(path))
        if not m:
            raise DatasetError(f"{path}: not named <name>-rNN.tfrecords; remove it or rename it")
        names.add(m.group("name"))
        levels[2 ** int(m.group("log2"))] = path
    if len(names) > 1:
        raise DatasetError(f"{folder}: holds several datasets ({', '.join(sorted(names))}); keep one per folder")
    return dict(sorted(levels.items()))


def _read_record(f):
    header = f.read(12)
    if len(header) < 12:
        return None
    (length,) = struct.unpack("<Q", header[:8])
    data = f.read(length)
    if len(data) < length or len(f.read(4)) < 4:
        return None
    return data


def parse_example(serialized):
    """One serialized record -> uint8 array [C, H, W] (numpy, through the protobuf class TF ships)."""
    import tensorflow as tf
    ex = tf.train.Example.FromString(serialized)
    shape = list(ex.features.feature["shape"].int64_list.value)
    data = ex.features.feature["data"].bytes_list.value
    if len(shape) != 3 or len(data) != 1:
        raise DatasetError("record without the official 'shape' [C,H,W] and 'data' features")
    return np.frombuffer(data[0], np.uint8).reshape(shape)


def scan_level(path):
    """(shape [C,H,W] of the first record, record count) of one level file.

    Every record of a level has the same serialized size (same shape, same byte count), so the count
    follows from the file size; a file whose size is not a whole number of records was cut short (an
    interrupted write) and is rejected. Files written by other tools with varying record sizes fall
    back to walking the record headers.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        first = _read_record(f)
        if first is None:
            raise DatasetError(f"{path}: empty or truncated TFRecord file; recreate the dataset")
        try:
            shape = tuple(int(v) for v in parse_example(first).shape)
        except (DatasetError, ValueError) as e:
            raise DatasetError(f"{path}: first record is not an image record ({e}); recreate the dataset")
        step = len(first) + 16
        if size % step == 0:
            count = size // step
            f.seek(size - step)
            tail = f.read(8)
            if struct.unpack("<Q", tail)[0] == len(first):
                return shape, count
        f.seek(0)
        count = 0
        while True:
            pos = f.tell()
            header = f.read(8)
            if not header:
                break
            if len(header) < 8:
                raise DatasetError(f"{path}: truncated at byte {pos}; the dataset was not written completely")
            (length,) = struct.unpack("<Q", header)
            f.seek(4 + length + 4, os.SEEK_CUR)
            if f.tell() > size:
                raise DatasetError(f"{path}: truncated at byte {pos}; the dataset was not written completely")
            count += 1
    return shape, count


class DatasetWriter:
    """Writes images (given as their pyramids, see pyramid.build_pyramid) to one TFRecord file per level."""

    def __init__(self, folder, name, resolution, channels):
        import tensorflow as tf
        self._tf = tf
        self.folder, self.name = folder, name
        self.resolution, self.channels = int(resolution), int(channels)
        self.resolutions = [self.resolution >> k for k in range(int(np.log2(self.resolution)) - 1)]
        self.paths = [level_path(folder, name, r) for r in self.resolutions]
        self._writers = [tf.io.TFRecordWriter(p) for p in self.paths]
        self.count = 0

    def add(self, pyramid):
        if len(pyramid) != len(self._writers):
            raise ValueError(f"pyramid has {len(pyramid)} levels, expected {len(self._writers)}")
        tf = self._tf
        for level, writer, r in zip(pyramid, self._writers, self.resolutions):
            if level.shape != (self.channels, r, r) or level.dtype != np.uint8:
                raise ValueError(f"level {level.dtype} {level.shape} != uint8 {(self.channels, r, r)}")
            ex = tf.train.Example(features=tf.train.Features(feature={
                "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=level.shape)),
                "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[level.tobytes()]))}))
            writer.write(ex.SerializeToString())
        self.count += 1

    def write_labels(self, labels):
        labels = np.asarray(labels, dtype=np.float32)
        if labels.ndim != 2 or labels.shape[0] != self.count:
            raise ValueError(f"labels {labels.shape} do not match {self.count} images")
        with open(labels_path(self.folder, self.name), "wb") as f:
            np.save(f, labels)

    def close(self):
        for w in self._writers:
            w.close()
        self._writers = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
