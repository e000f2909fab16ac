"""Any record of a level file by its index, checked and decoded, optionally from a cache of the whole decoded level:
what data/batches.py builds the training batches on, for tf.data and for numpy alike."""
import collections
import os
import struct
import threading

import numpy as np

from stylegan_tf.data.records import (damage_error, data_span, masked_crc32c, masked_crc32c_rows, parse_example,
                                      record_offsets)


# The decoded-level cache: levels whose uint8 images fit in this many MB (all cached levels of the process
# together) are decoded once and kept, so that a batch is a numpy gather. 2 GiB holds the demo dataset at
# every level up to 256x256 (10,000 images) and FFHQ's levels up to 64x64 (70,000 images).
CACHE_MB = 2048
_READERS = collections.OrderedDict()   # (path, inode, size, mtime, shape) -> LevelReader, least recently used first
_READERS_LOCK = threading.Lock()
_MAX_READERS = 32
_CHUNK_BYTES = 32 << 20                # a cache is filled this many bytes of records at a time


def _pread(fd, size, offset):
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)   # Windows: every read opens its own descriptor, so seeking is safe
    return os.read(fd, size)


def _layout(path):
    """(first header, first payload, record count, offsets, lengths) of a level file; offsets and lengths are None
    when every record has the size of the first (arithmetic then finds them), as in every file dataset_tool.py or
    NVIDIA's tool writes."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        header = f.read(12)
        length = struct.unpack("<Q", header[:8])[0] if len(header) == 12 else 0
        payload = f.read(length)
        if len(header) < 12 or len(payload) < length or len(f.read(4)) < 4:
            raise damage_error(path, 0)
        step = length + 16
        if size % step == 0:
            f.seek(size - step)
            if f.read(12) == header:
                return header, payload, size // step, None, None
        offsets, lengths = record_offsets(path, f, size)
    return header, payload, len(offsets), offsets, lengths


def _framing(payload, image):
    """(span of the image bytes, the payload's bytes before and after them) when the first record holds its image
    as one slice; records framed alike are then decoded by slicing (`LevelReader._decode_rows`). Else None."""
    try:
        span = data_span(payload)
    except (ValueError, IndexError):
        return None
    if span is None or span[1] - span[0] != image.size or payload[span[0]:span[1]] != image.tobytes():
        return None
    buf = np.frombuffer(payload, np.uint8)
    return span, buf[:span[0]].copy(), buf[span[1]:].copy()


class LevelReader:
    """Record i of one level file, by index, checked and decoded: uint8 [r, r, C] (NHWC) images.

    Offsets come from the 12-byte record headers (arithmetic when every record has the size of the first, as in
    every file dataset_tool.py or NVIDIA's tool writes). Each record read is checked as TFRecord defines (header
    and payload CRC-32C; a payload is checked once per process) and must decode to the level's shape; damage
    raises DatasetError "<path>: record N: <damage>; recreate the dataset". With `enable_cache`, the whole level
    is decoded into one uint8 array on first use and batches are gathered from it.

    Use `level_reader(path, shape)`, which shares one reader per file within the process.

    Args:
        path: a level file (`DatasetInfo.level_path(r)`).
        shape: the records' shape [C, r, r].

    Example:
        >>> reader = level_reader(info.level_path(32), (3, 32, 32))
        >>> images = reader.read([5, 0, 7])            # uint8 [3, 32, 32, 3]
    """

    def __init__(self, path, shape):
        self.path = os.fspath(path)
        self.shape = tuple(int(v) for v in shape)
        c, r, _ = self.shape
        self.image_shape = (r, r, c)
        self.nbytes_per_image = c * r * r
        self._lock = threading.RLock()
        self._cache = None
        self._filled = False
        self.records_read = 0            # payloads read from the file (for tests and benchmarks)
        header, payload, self.count, self.offsets, self.lengths = _layout(self.path)
        self.step, self._length = len(payload) + 16, len(payload)
        self._header = np.frombuffer(header, np.uint8)
        self._template = _framing(payload, self._parse(payload, 0).transpose(2, 0, 1))
        self.verified = np.zeros(self.count, bool)
        self.nbytes = self.count * self.nbytes_per_image

    def _fail(self, index, damage=None):
        raise damage_error(self.path, index, damage)

    # ---------------------------------------------------------------- the decoded-level cache
    def enable_cache(self):
        with self._lock:
            if self._cache is None:
                self._cache = np.empty((self.count,) + self.image_shape, np.uint8)   # pages come with the fill
                self._filled = False

    def drop_cache(self):
        with self._lock:
            self._cache, self._filled = None, False

    @property
    def cached(self):
        return self._cache is not None

    def _fill(self):
        """Decode every record into the cache, a chunk of records at a time (one sequential read each)."""
        cache = self._cache
        chunk = max(1, _CHUNK_BYTES // (self.step if self.offsets is None else int(self.lengths.max()) + 16))
        with open(self.path, "rb") as f:
            for a in range(0, self.count, chunk):
                ids = np.arange(a, min(self.count, a + chunk))
                if self.offsets is None:
                    rows = np.empty((len(ids), self.step), np.uint8)
                    f.seek(a * self.step)
                    if f.readinto(memoryview(rows).cast("B")) < rows.nbytes:
                        self._fail(int(ids[-1]))
                    self.records_read += len(ids)
                    self._decode_rows(rows, ids, out=cache[a:a + len(ids)])
                else:
                    cache[ids] = self._read_varying(f.fileno(), ids)
        self._filled = True

    # ---------------------------------------------------------------- reading
    def read(self, indices):
        """uint8 [len(indices), r, r, C]: the records `indices` (any order, repeats allowed), decoded."""
        indices = np.asarray(indices, np.int64).reshape(-1)
        if len(indices) and (indices.min() < 0 or indices.max() >= self.count):
            raise IndexError(f"{self.path}: record index out of range 0..{self.count - 1}")
        with self._lock:
            cache = self._cache
            if cache is not None and not self._filled:
                self._fill()
        if cache is not None:
            return cache[indices]
        unique, inverse = np.unique(indices, return_inverse=True)   # file order; each record read once
        with open(self.path, "rb") as f:
            fd = f.fileno()
            if self.offsets is None:
                rows = np.empty((len(unique), self.step), np.uint8)
                for j, i in enumerate(unique.tolist()):
                    data = _pread(fd, self.step, i * self.step)
                    if len(data) < self.step:
                        self._fail(i)
                    rows[j] = np.frombuffer(data, np.uint8)
                self.records_read += len(unique)
                images = self._decode_rows(rows, unique)
            else:
                images = self._read_varying(fd, unique)
        return images[inverse]

    def _decode_rows(self, rows, ids, out=None):
        """Whole records of the first record's size (header, payload, footer: uint8 [n, step]) -> uint8 NHWC
        images (into `out` if given), checked: header, payload CRC (once per record), the image's shape."""
        n, length = len(rows), self._length
        ok = (rows[:, :12] == self._header).all(axis=1)
        if not ok.all():
            self._fail(int(ids[np.argmin(ok)]))
        todo = ~self.verified[ids]
        if todo.any():
            sel = slice(None) if todo.all() else todo
            stored = np.ascontiguousarray(rows[sel, 12 + length:]).view("<u4").reshape(-1)
            bad = masked_crc32c_rows(rows[sel, 12:12 + length]) != stored
            if bad.any():
                self._fail(int(np.asarray(ids)[sel][np.argmax(bad)]))
        out = np.empty((n,) + self.image_shape, np.uint8) if out is None else out
        c, r, _ = self.shape
        fast = np.zeros(n, bool)
        if self._template is not None:
            (s, e), head, tail = self._template
            fast = (rows[:, 12:12 + s] == head).all(axis=1) & (rows[:, 12 + e:12 + length] == tail).all(axis=1)
            if fast.all():                       # every record framed as the first: the images are one slice
                out[...] = rows[:, 12 + s:12 + e].reshape(n, c, r, r).transpose(0, 2, 3, 1)
            else:
                out[fast] = rows[fast, 12 + s:12 + e].reshape(-1, c, r, r).transpose(0, 2, 3, 1)
        for j in np.flatnonzero(~fast).tolist():   # another tool's framing: parse the Example
            out[j] = self._parse(rows[j, 12:12 + length].tobytes(), int(ids[j]))
        self.verified[ids] = True
        return out

    def _read_varying(self, fd, ids):
        """Records of a file whose records differ in size: one at a time."""
        out = np.empty((len(ids),) + self.image_shape, np.uint8)
        for j, i in enumerate(np.asarray(ids).tolist()):
            offset, length = int(self.offsets[i]), int(self.lengths[i])
            data = _pread(fd, length + 16, offset)
            self.records_read += 1
            if len(data) < length + 16:
                self._fail(i)
            payload = data[12:12 + length]
            if not self.verified[i] and masked_crc32c(payload) != struct.unpack("<I", data[12 + length:])[0]:
                self._fail(i)
            out[j] = self._parse(payload, i)
            self.verified[i] = True
        return out

    def _parse(self, payload, index):
        try:
            image = parse_example(payload)
        except (DatasetError, ValueError, IndexError) as e:
            self._fail(index, f"not an image record ({e})")
        if image.shape != self.shape:
            self._fail(index, f"shape {list(image.shape)}, expected {list(self.shape)}")
        return image.transpose(1, 2, 0)


def level_reader(path, shape):
    """The process's `LevelReader` of a level file (one per file and version of it, so its cache is shared)."""
    path = os.path.abspath(os.fspath(path))
    st = os.stat(path)
    key = (path, st.st_ino, st.st_size, st.st_mtime_ns, tuple(int(v) for v in shape))
    with _READERS_LOCK:
        reader = _READERS.get(key)
        if reader is not None:
            _READERS.move_to_end(key)
            return reader
    reader = LevelReader(path, shape)
    with _READERS_LOCK:
        reader = _READERS.setdefault(key, reader)
        _READERS.move_to_end(key)
        while len(_READERS) > _MAX_READERS:
            _READERS.popitem(last=False)
    return reader


def cache_levels(readers, cache_mb=None):
    """Cache the decoded levels of `readers` (lowest first) that fit in `cache_mb` (default `CACHE_MB`) together;
    the others read record by record. Caches of other files are dropped, least recently used first, to stay within
    the budget.

    Args:
        readers: `LevelReader`s a pipeline reads, e.g. one per level of a pyramid, lowest first.
        cache_mb: megabytes of decoded images the process may keep (0: no caching).

    Returns:
        The readers that are cached.

    Example:
        >>> cache_levels([level_reader(info.level_path(32), (3, 32, 32))])
    """
    budget = int((CACHE_MB if cache_mb is None else cache_mb) * (1 << 20))
    chosen, total = [], 0
    for reader in readers:
        if reader not in chosen and total + reader.nbytes <= budget:
            chosen.append(reader)
            total += reader.nbytes
    with _READERS_LOCK:
        others = [r for r in _READERS.values() if r.cached and r not in chosen and r not in readers]
    used = total + sum(r.nbytes for r in others)
    for reader in others:
        if used <= budget:
            break
        reader.drop_cache()
        used -= reader.nbytes
    for reader in readers:
        if reader in chosen:
            reader.enable_cache()
        else:
            reader.drop_cache()
    return chosen


def clear_readers():
    """Forget the process's readers and their caches (a fresh process's state: benchmarks of the first read)."""
    with _READERS_LOCK:
        _READERS.clear()
