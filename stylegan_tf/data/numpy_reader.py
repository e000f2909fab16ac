"""Reading the official TFRecord layout without TensorFlow: records, `tf.train.Example`s, levels by record index.

A TFRecord file is a run of records: uint64 length, uint32 masked CRC-32C of the length, the payload, uint32
masked CRC-32C of the payload. Each payload is a `tf.train.Example` protobuf whose two features are the official
`shape` (int64 [C, H, W]) and `data` (the uint8 bytes); both are decoded by hand here (protobuf's wire format is
small: varints and length-delimited fields). `LevelReader` reads any record of a level file by its index (checked,
decoded, optionally from a cache of the whole decoded level); data/batches.py builds the training batches on it,
for tf.data and for numpy alike. This is also what the metrics read when TensorFlow is not installed (JAX).
"""
import collections
import functools
import os
import struct
import threading

import numpy as np

from stylegan_tf.data.tfrecords import _CRC_TABLE, DatasetError, _zero_shift, masked_crc32c


def read_records(path, check_crc=False, limit=None):
    """Yield the payloads of a TFRecord file in order; DatasetError naming the file and record on damage."""
    with open(path, "rb") as f:
        index = 0
        while limit is None or index < limit:
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise DatasetError(f"{path}: record {index} is truncated; recreate the dataset")
            length, length_crc = struct.unpack("<QI", header)
            if check_crc and masked_crc32c(header[:8]) != length_crc:
                raise DatasetError(f"{path}: record {index} has a corrupted length; recreate the dataset")
            payload = f.read(length)
            footer = f.read(4)
            if len(payload) < length or len(footer) < 4:
                raise DatasetError(f"{path}: record {index} is truncated; recreate the dataset")
            if check_crc and masked_crc32c(payload) != struct.unpack("<I", footer)[0]:
                raise DatasetError(f"{path}: record {index} fails its checksum (damaged); recreate the dataset")
            yield payload
            index += 1


def _varint(buf, pos):
    result, shift = 0, 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf):
    """(field number, wire type, value) of one protobuf message; value is bytes for length-delimited fields."""
    for number, wire, start, end in _spans(buf, 0, len(buf)):
        yield number, wire, (_varint(buf, start)[0] if wire == 0 else buf[start:end])


def parse_features(serialized):
    """A serialized `tf.train.Example` -> {name: list of bytes | list of int | numpy float32 array}."""
    features = {}
    for number, _, value in _fields(memoryview(serialized)):
        if number != 1:                           # Example.features
            continue
        for n2, _, entry in _fields(value):       # Features.feature: map<string, Feature> entries
            if n2 != 1:
                continue
            name, feature = None, b""
            for n3, _, v in _fields(entry):
                if n3 == 1:
                    name = bytes(v).decode("utf-8")
                elif n3 == 2:
                    feature = v
            for kind, _, lst in _fields(feature):
                if kind == 1:                     # BytesList
                    features[name] = [bytes(v) for n4, _, v in _fields(lst) if n4 == 1]
                elif kind == 2:                   # FloatList (packed or not)
                    vals = []
                    for n4, w, v in _fields(lst):
                        if n4 == 1:
                            vals.extend(np.frombuffer(bytes(v), "<f4").tolist() if w == 2 else
                                        [struct.unpack("<f", bytes(v))[0]])
                    features[name] = np.asarray(vals, np.float32)
                elif kind == 3:                   # Int64List (packed or not)
                    vals = []
                    for n4, w, v in _fields(lst):
                        if n4 != 1:
                            continue
                        if w == 2:
                            p = 0
                            while p < len(v):
                                x, p = _varint(v, p)
                                vals.append(x - (1 << 64) if x >> 63 else x)
                        else:
                            vals.append(v - (1 << 64) if v >> 63 else v)
                    features[name] = vals
    return features


def parse_example(serialized):
    """One serialized image record -> uint8 array [C, H, W] (the official `shape` and `data` features).

    Example:
        >>> image = parse_example(next(read_records("datasets/mine/mine-r05.tfrecords")))   # [3, 32, 32]
    """
    feats = parse_features(serialized)
    shape, data = feats.get("shape"), feats.get("data")
    if shape is None or data is None or len(shape) != 3 or len(data) != 1:
        raise DatasetError("record without the official 'shape' [C,H,W] and 'data' features")
    return np.frombuffer(data[0], np.uint8).reshape(shape)


def _spans(buf, pos, end):
    """(field number, wire type, start, end) of each field of the protobuf message buf[pos:end]: where its value
    lies in `buf` (the payload of a length-delimited field, the bytes of the others)."""
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, after = _varint(buf, pos)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            after = pos + n
        elif wire in (1, 5):
            after = pos + (8 if wire == 1 else 4)
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if after > end:
            raise ValueError("protobuf field runs past its message")
        yield number, wire, pos, after
        pos = after


def data_span(serialized):
    """(start, end) of the image bytes (the `data` feature) inside a serialized `tf.train.Example`, or None.

    Every record of a level file written by one tool has the same framing around these bytes, so knowing where
    they lie in one record lets a whole level be decoded by slicing (see `LevelReader`)."""
    buf = memoryview(serialized)
    found = []
    for n1, w1, s1, e1 in _spans(buf, 0, len(buf)):
        if n1 != 1 or w1 != 2:                        # Example.features
            continue
        for n2, w2, s2, e2 in _spans(buf, s1, e1):    # Features.feature map entries
            if n2 != 1 or w2 != 2:
                continue
            key, value = None, None
            for n3, w3, s3, e3 in _spans(buf, s2, e2):
                if n3 == 1 and w3 == 2:
                    key = bytes(buf[s3:e3])
                elif n3 == 2 and w3 == 2:
                    value = (s3, e3)
            if key == b"data" and value is not None:
                found += [(s5, e5) for n4, w4, s4, e4 in _spans(buf, *value) if n4 == 1 and w4 == 2  # BytesList
                          for n5, w5, s5, e5 in _spans(buf, s4, e4) if n5 == 1 and w5 == 2]
    return found[0] if len(found) == 1 else None


@functools.lru_cache(maxsize=8)
def _position_tables(m):
    """uint32 [m * 256]: entry i * 256 + b is the CRC register (started at zero) after byte b at position i of an
    m-byte chunk followed by the rest of the chunk."""
    p = np.empty((m, 256), np.uint32)
    p[m - 1] = _CRC_TABLE
    for i in range(m - 2, -1, -1):
        x = p[i + 1]
        p[i] = _CRC_TABLE[x & 0xFF] ^ (x >> 8)
    return p.reshape(-1)


def _crc32c_rows(rows, chunk=512):
    """TFRecord's masked CRC-32C of every row of a uint8 [n, L] array (L >= 4), all rows at once.

    A CRC from a zero register is linear in the data: a chunk's CRC is the XOR of one table entry per byte (the
    byte's effect at its position), so a chunk of every row is one gather and one XOR-reduction; the chunks are
    then chained with the "append m zero bytes" map (tfrecords._zero_shift). The initial register ~0 is folded
    into the first four bytes, as tfrecords.crc32c does. A level's worth of records costs L / chunk numpy steps,
    not a Python loop per record or per byte."""
    n, length = rows.shape
    k = -(-length // chunk)
    m = -(-length // k)
    pad = k * m - length
    table = _position_tables(m)
    offsets = np.arange(m, dtype=np.intp) * 256
    t0, t1, t2, t3 = (np.asarray(t, np.uint32) for t in _zero_shift(m))
    out = np.empty(n, np.uint32)
    block = max(1, (1 << 20) // m)                      # rows per step: ~8 MB of gather indices
    for a in range(0, n, block):
        flat = np.zeros((min(block, n - a), k * m), np.uint8)
        flat[:, pad:] = rows[a:a + block]
        flat[:, pad:pad + 4] ^= 0xFF
        crc = np.zeros(len(flat), np.uint32)
        for c in range(k):
            part = np.bitwise_xor.reduce(table[flat[:, c * m:(c + 1) * m] + offsets], axis=1)
            crc = t0[crc & 0xFF] ^ t1[(crc >> 8) & 0xFF] ^ t2[(crc >> 16) & 0xFF] ^ t3[crc >> 24] ^ part
        crc ^= np.uint32(0xFFFFFFFF)
        out[a:a + len(flat)] = ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(0xA282EAD8)
    return out


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
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            header = f.read(12)
            if len(header) < 12:
                self._fail(0)
            (length,) = struct.unpack("<Q", header[:8])
            payload = f.read(length)
            if len(payload) < length or len(f.read(4)) < 4:
                self._fail(0)
            self.step = length + 16
            fixed = size % self.step == 0
            if fixed:
                f.seek(size - self.step)
                fixed = f.read(12) == header
            if fixed:
                self.count, self.offsets, self.lengths = size // self.step, None, None
            else:
                self.offsets, self.lengths = self._walk_headers(f, size)
                self.count = len(self.offsets)
        self._header = np.frombuffer(header, np.uint8)
        self._length = length
        self._template = None
        image = self._parse(payload, 0).transpose(2, 0, 1)
        try:
            span = data_span(payload)
        except (ValueError, IndexError):
            span = None
        if span is not None and span[1] - span[0] == image.size and payload[span[0]:span[1]] == image.tobytes():
            buf = np.frombuffer(payload, np.uint8)
            self._template = (span, buf[:span[0]].copy(), buf[span[1]:].copy())
        self.verified = np.zeros(self.count, bool)
        self.nbytes = self.count * self.nbytes_per_image

    def _walk_headers(self, f, size):
        offsets, lengths, pos, index = [], [], 0, 0
        while pos < size:
            f.seek(pos)
            header = f.read(12)
            if len(header) < 12:
                self._fail(index)
            (length,) = struct.unpack("<Q", header[:8])
            if struct.unpack("<I", header[8:])[0] != masked_crc32c(header[:8]) or pos + length + 16 > size:
                self._fail(index)
            offsets.append(pos)
            lengths.append(length)
            pos += length + 16
            index += 1
        return np.asarray(offsets, np.int64), np.asarray(lengths, np.int64)

    def _fail(self, index, damage=None):
        """Raise the DatasetError naming record `index`; its damage in tfrecords' words when not given."""
        if damage is None:
            from stylegan_tf.data.tfrecords import _find_damage
            found = _find_damage(self.path, index)
            damage = found[1] if found is not None and found[0] == index else "damaged (its framing differs " \
                                                                               "from the other records')"
        raise DatasetError(f"{self.path}: record {index}: {damage}; recreate the dataset")

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
            bad = _crc32c_rows(rows[sel, 12:12 + length]) != stored
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
    from stylegan_tf.data.batches import BatchStream
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
