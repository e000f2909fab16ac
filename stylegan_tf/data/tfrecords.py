"""The official StyleGAN dataset layout: one uncompressed TFRecord file per level of detail.

`<dir>/<name>-rNN.tfrecords` holds, for NN = log2(resolution) down to 2, one `tf.train.Example` per image
with `shape` (int64 [C, H, W]) and `data` (raw uint8 bytes, CHW). Record i is the same image in every
file. Optional labels: `<dir>/<name>-rxx.labels`, an `np.save`d float32 [N, L] array in record order. The records
themselves (framing, checksums, the example parser and its writing side) are records.py's; this module is the
folder's layout, its checks and the dataset writer.
"""
import contextlib
import errno
import glob
import json
import os
import re
import shutil
import struct

import numpy as np

from stylegan_tf.atomic import NotOursError, atomic_dir, check_dir_target, is_disk_full
from stylegan_tf.data.records import (DatasetError, RecordWriter, find_damage, image_example_parts,
                                      parse_example, read_record)

LEVEL_RE = re.compile(r"^(?P<name>.*)-r(?P<log2>\d\d)\.tfrecords$")
METADATA_FILE = "dataset.json"
FORMAT = "stylegan-tfrecords"
DATASET = "a dataset"
# Everything a dataset folder may hold; `--overwrite` replaces only a folder holding nothing else.
_SIDECAR_RE = re.compile(r"^(dataset\.json|skipped\.json|files\.json|.*-rxx\.labels|.*-attributes\.npy)$")


def human_size(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def is_dataset_file(name):
    """True for a name a dataset folder holds: a level file or one of the sidecars written beside them."""
    return bool(LEVEL_RE.match(name) or _SIDECAR_RE.match(name))


def _holds_a_level(path):
    """Refuse a non-empty folder without a level file: the sidecar names alone (files.json, dataset.json) are
    too common to prove that a folder is a dataset, and a dataset is never left without its levels."""
    names = os.listdir(path)
    if names and not any(LEVEL_RE.match(n) for n in names):
        raise NotOursError(f"{path} is not {DATASET} (it holds no <name>-rNN.tfrecords level file); --overwrite "
                           f"only replaces {DATASET}: choose another folder")


def check_output(path, overwrite):
    """Refuse an existing `path` unless `overwrite`, and even then unless it is a dataset folder: only level
    files and their sidecars (or nothing). atomic.check_dir_target's rule, with a level file required.
    Call it before slow work; `output_dir` checks again just before the replacement."""
    check_dir_target(path, overwrite, is_dataset_file, DATASET)
    if os.path.lexists(path):
        _holds_a_level(path)


def output_dir(path, overwrite):
    """`atomic_dir` for a dataset at `path`: yields the temporary folder to write it in; `overwrite` replaces
    only a dataset (see `check_output`)."""
    return atomic_dir(path, overwrite, ours=is_dataset_file, what=DATASET, replaceable=_holds_a_level)


def write_metadata(folder, tool, fields):
    """Write dataset.json: the format, the tool and its version, then the creator's `fields`."""
    from stylegan_tf import __version__
    with open(os.path.join(folder, METADATA_FILE), "w", encoding="utf-8") as f:
        json.dump({"format": FORMAT, "tool": tool, "tool_version": __version__, **fields}, f, indent=1)


def dataset_bytes(count, resolution, channels):
    """About how many bytes a dataset of `count` images takes (all levels, record framing included)."""
    per_image, r = 0, int(resolution)
    while r >= 4:
        per_image += channels * r * r + 64
        r //= 2
    return int(count) * per_image


@contextlib.contextmanager
def explain_disk_full(target, needed_bytes):
    """Turn a full disk while writing `target` into one DatasetError saying how much room is needed.

    Meant around an atomic_dir block, so the partial folder is already gone when the message is made."""
    try:
        yield
    except Exception as e:
        if not is_disk_full(e):
            raise
        folder = os.path.dirname(os.path.abspath(target))
        while not os.path.isdir(folder):
            folder = os.path.dirname(folder)
        free = shutil.disk_usage(folder).free
        raise DatasetError(f"{target}: disk full while writing the dataset (it needs about "
                           f"{human_size(needed_bytes)}, {human_size(free)} is free); nothing was written: "
                           f"free some space or choose another folder") from None


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


def scan_level(path):
    """(shape [C,H,W] of the first record, record count) of one level file.

    Every record of a level has the same serialized size (same shape, same byte count), so the count
    follows from the file size; a file whose size is not a whole number of records was cut short (an
    interrupted write) and is rejected. Files written by other tools with varying record sizes fall
    back to walking the record headers.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        first = read_record(f)
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


def _decode_damage(serialized, expected):
    """What is wrong with one record that passed its checksums, or None if it is a proper image record."""
    try:
        image = parse_example(serialized)
    except (ValueError, IndexError) as e:
        return f"not an image record ({e})"
    if image.shape != expected:
        return f"shape {list(image.shape)}, expected {list(expected)}"
    return None


def verify_level(path, expected_shape):
    """Read every record of one level file; returns the record count or raises DatasetError.

    Checks what TFRecord defines (each record's length and data CRC-32C, through TensorFlow's reader)
    and that each record decodes to `expected_shape` [C, H, W]. The message names the file and the
    record index: "<path>: record N: <damage>; recreate the dataset"."""
    import tensorflow as tf
    path = os.fspath(path)
    expected = tuple(int(v) for v in expected_shape)
    item_bytes = int(np.prod(expected))
    spec = {"shape": tf.io.FixedLenFeature([3], tf.int64), "data": tf.io.FixedLenFeature([], tf.string)}
    batches = iter(tf.data.TFRecordDataset(path, buffer_size=8 << 20)
                   .batch(max(1, (8 << 20) // (item_bytes + 64))).prefetch(2))
    count = 0

    def fail(index, damage):
        return DatasetError(f"{path}: record {index}: {damage}; recreate the dataset")

    while True:
        try:
            records = next(batches)
        except StopIteration:
            return count
        except tf.errors.OpError as e:
            found = find_damage(path, count)
            if found is None:  # TensorFlow saw damage our own reading cannot place: report its words
                detail = re.sub(r"\{\{.*?\}\}\s*", "", e.message).split(" [Op:")[0].strip()
                raise fail(f"{count} or later", detail) from None
            raise fail(*found) from None
        try:
            feats = tf.io.parse_example(records, spec)
            shapes = feats["shape"].numpy()
            lengths = tf.strings.length(feats["data"]).numpy()
            bad = np.flatnonzero(np.any(shapes != np.array(expected), axis=1) | (lengths != item_bytes))
        except tf.errors.OpError:
            bad = np.arange(len(records))
        for j in bad.tolist():
            damage = _decode_damage(records[j].numpy(), expected)
            if damage:
                raise fail(count + j, damage)
        count += len(records)


def _tensorflow_or_none():
    try:
        import tensorflow as tf
    except ImportError:
        return None
    return tf


class DatasetWriter:
    """Writes images (given as their pyramids, see pyramid.build_pyramid) to one TFRecord file per level.

    With TensorFlow importable the records go through `tf.io.TFRecordWriter` and `tf.train.Example`, exactly as
    NVIDIA's exporter writes them; without it (a JAX-only machine) through records.RecordWriter. The two give the
    same records up to the order of the two features inside each example: TensorFlow's protobuf serializes the
    feature map in an order that changes from process to process, while ours is always protobuf's deterministic
    (sorted) one, "data" then "shape". Every reader, NVIDIA's included, reads both alike.
    `use_tensorflow` (None: when importable) picks one."""

    # Image bytes buffered per flush without TensorFlow: the checksums of a level are computed for many records
    # at once (records.masked_crc32c_rows), which is what makes the numpy writer as fast as TensorFlow's. A few
    # MB keep the work in cache (measured at 64x64: 4 MB beats 32 MB); at least MIN_BUFFERED images per flush,
    # so large images (4 MB a pyramid at 1024x1024) are still checksummed several at a time.
    BUFFER_BYTES = 4 << 20
    MIN_BUFFERED = 8

    def __init__(self, folder, name, resolution, channels, use_tensorflow=None):
        tf = _tensorflow_or_none() if use_tensorflow in (None, True) else None
        if use_tensorflow and tf is None:
            raise ImportError("DatasetWriter(use_tensorflow=True) needs TensorFlow, which is not installed")
        self._tf = tf
        self.folder, self.name = folder, name
        self.resolution, self.channels = int(resolution), int(channels)
        self.resolutions = [self.resolution >> k for k in range(int(np.log2(self.resolution)) - 1)]
        self.paths = [level_path(folder, name, r) for r in self.resolutions]
        sizes = [self.channels * r * r for r in self.resolutions]
        self._parts = [[np.frombuffer(part, np.uint8) for part in image_example_parts((self.channels, r, r), n)]
                       for r, n in zip(self.resolutions, sizes)]
        self._per_flush = max(self.MIN_BUFFERED, self.BUFFER_BYTES // sum(sizes))
        self._pending = []
        self._writers = []
        try:
            for p in self.paths:
                with self._as_os_error(p):
                    self._writers.append(tf.io.TFRecordWriter(p) if tf is not None else RecordWriter(p))
        except BaseException:
            self._close_all()
            raise
        self.count = 0

    @contextlib.contextmanager
    def _as_os_error(self, path):
        # TensorFlow's file errors are not OSErrors; callers (and is_disk_full) handle OSError only. Ours are
        # OSErrors already, named by RecordWriter.
        if self._tf is None:
            yield
            return
        try:
            yield
        except self._tf.errors.OpError as e:
            code = {self._tf.errors.ResourceExhaustedError: errno.ENOSPC,
                    self._tf.errors.PermissionDeniedError: errno.EACCES,
                    self._tf.errors.NotFoundError: errno.ENOENT}.get(type(e), errno.EIO)
            raise OSError(code, os.strerror(code), path) from None

    def add(self, pyramid):
        if len(pyramid) != len(self._writers):
            raise ValueError(f"pyramid has {len(pyramid)} levels, expected {len(self._writers)}")
        for level, r in zip(pyramid, self.resolutions):
            if level.shape != (self.channels, r, r) or level.dtype != np.uint8:
                raise ValueError(f"level {level.dtype} {level.shape} != uint8 {(self.channels, r, r)}")
        tf = self._tf
        if tf is None:
            self._pending.append([np.ascontiguousarray(level) for level in pyramid])
            self.count += 1
            if len(self._pending) >= self._per_flush:
                self._flush()
            return
        for level, writer, path in zip(pyramid, self._writers, self.paths):
            ex = tf.train.Example(features=tf.train.Features(feature={
                "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=level.shape)),
                "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[level.tobytes()]))}))
            with self._as_os_error(path):
                writer.write(ex.SerializeToString())
        self.count += 1

    def _flush(self):
        """Write the buffered images to every level file, each level's records in one go."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        for i, (writer, (head, tail)) in enumerate(zip(self._writers, self._parts)):
            n, size = len(pending), pending[0][i].size
            rows = np.empty((n, head.size + size + tail.size), np.uint8)
            rows[:, :head.size] = head
            rows[:, head.size:head.size + size] = np.stack([images[i] for images in pending]).reshape(n, size)
            rows[:, head.size + size:] = tail
            writer.write_rows(rows)

    def write_labels(self, labels):
        labels = np.asarray(labels, dtype=np.float32)
        if labels.ndim != 2 or labels.shape[0] != self.count:
            raise ValueError(f"labels {labels.shape} do not match {self.count} images")
        with open(labels_path(self.folder, self.name), "wb") as f:
            np.save(f, labels)

    def close(self):
        # Write what is buffered, then close every file even when one fails (a full disk fails them all); then
        # report the first failure.
        failure = None
        try:
            self._flush()
        except OSError as e:
            failure = e
        closing = self._close_all()
        failure = failure or closing
        if failure is not None:
            raise failure

    def _close_all(self):
        """Close every file, keep going past failures; returns the first one (an OSError) or None."""
        failure = None
        for w, p in zip(self._writers, self.paths):
            try:
                with self._as_os_error(p):
                    w.close()
            except OSError as e:
                failure = failure or e
        self._writers, self._pending = [], []
        return failure

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:  # the dataset is being abandoned (atomic_dir deletes it): no buffered writes, no second error
            self._close_all()
