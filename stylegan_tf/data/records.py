"""TFRecord files as this package reads them, without TensorFlow: record framing, CRC-32C, the example parser.

A TFRecord file is a run of records: uint64 length, uint32 masked CRC-32C of the length, the payload, uint32
masked CRC-32C of the payload. Each payload of a dataset level is a `tf.train.Example` protobuf whose two features
are the official `shape` (int64 [C, H, W]) and `data` (the uint8 bytes); both are decoded by hand here (protobuf's
wire format is small: varints and length-delimited fields), so the one parser serves with TensorFlow and without.
The writing side is here too (`image_example`, `RecordWriter`): the bytes `tf.io.TFRecordWriter` writes for the
`tf.train.Example` that NVIDIA's exporter builds (serialized deterministically), so datasets are created without
TensorFlow as well.
`DatasetError` lives here, at the bottom of the package, for every module to raise.

Example:
    >>> image = parse_example(next(read_records("datasets/mine/mine-r05.tfrecords")))   # uint8 [3, 32, 32]
"""
import functools
import os
import struct

import numpy as np


class DatasetError(ValueError):
    """A dataset folder or an input that cannot be used; the message names the path and what to do."""


def read_record(f):
    """The payload of the record at `f`'s position (the position moves past it), or None at the end or when cut short."""
    header = f.read(12)
    if len(header) < 12:
        return None
    (length,) = struct.unpack("<Q", header[:8])
    data = f.read(length)
    if len(data) < length or len(f.read(4)) < 4:
        return None
    return data



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


def _crc32c_table():
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):  # reflected CRC-32C (Castagnoli), polynomial 0x1EDC6F41
        t = np.where(t & 1, (t >> 1) ^ np.uint32(0x82F63B78), t >> 1).astype(np.uint32)
    return t


_CRC_TABLE = _crc32c_table()
_CRC_TABLE_LIST = _CRC_TABLE.tolist()


@functools.lru_cache(maxsize=16)  # one chunk length per record size: a level file needs one
def _zero_shift(n):
    """Four 256-entry tables of the linear map "feed n zero bytes" on a CRC register, one per register byte."""
    images = np.uint32(1) << np.arange(32, dtype=np.uint32)
    for _ in range(n):
        images = _CRC_TABLE[images & 0xFF] ^ (images >> 8)
    bits = ((np.arange(256)[:, None] >> np.arange(8)) & 1).astype(bool)
    return [np.bitwise_xor.reduce(np.where(bits, images[8 * j:8 * j + 8], np.uint32(0)), axis=1).tolist()
            for j in range(4)]


def crc32c(data):
    """CRC-32C of `data` (bytes-like), as TFRecord files use it; numpy, fast for megabyte records.

    A byte-by-byte loop is sequential, so the message is cut into ~sqrt(n) chunks whose CRCs are
    computed side by side (a CRC with a zero register is linear in the data), then chained with the
    "append n zero bytes" map. The initial register ~0 is folded into the first four bytes instead."""
    buf = np.frombuffer(bytes(data) if not isinstance(data, (bytes, bytearray, memoryview)) else data, np.uint8)
    n = buf.size
    if n < 64:
        crc = 0xFFFFFFFF
        for b in buf.tolist():
            crc = _CRC_TABLE_LIST[(crc ^ b) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF
    m = int(np.sqrt(n))
    k = -(-n // m)
    padded = np.zeros(k * m, np.uint8)  # leading zeros leave a zero register unchanged
    padded[k * m - n:] = buf
    padded[k * m - n:k * m - n + 4] ^= 0xFF
    columns = np.ascontiguousarray(padded.reshape(k, m).T)
    states = np.zeros(k, np.uint32)
    for col in columns:
        states = _CRC_TABLE[(states ^ col) & 0xFF] ^ (states >> 8)
    t0, t1, t2, t3 = _zero_shift(m)
    crc = 0
    for state in states.tolist():
        crc = t0[crc & 0xFF] ^ t1[(crc >> 8) & 0xFF] ^ t2[(crc >> 16) & 0xFF] ^ t3[crc >> 24] ^ state
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data):
    """The checksum TFRecord stores: CRC-32C rotated right by 15 bits plus a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record_offsets(path, f, size):
    """(offsets, lengths) int64 arrays of every record of the open file `f` of `size` bytes, from the record headers
    alone (length checksums checked); DatasetError naming the first record whose header is damaged."""
    offsets, lengths, pos = [], [], 0
    while pos < size:
        f.seek(pos)
        header = f.read(12)
        length = struct.unpack("<Q", header[:8])[0] if len(header) == 12 else 0
        if (len(header) < 12 or struct.unpack("<I", header[8:])[0] != masked_crc32c(header[:8])
                or pos + length + 16 > size):
            raise damage_error(path, len(offsets))
        offsets.append(pos)
        lengths.append(length)
        pos += length + 16
    return np.asarray(offsets, np.int64), np.asarray(lengths, np.int64)


def damage_error(path, index, damage=None):
    """The DatasetError "<path>: record N: <damage>; recreate the dataset"; `damage` found by `find_damage` when
    not given."""
    if damage is None:
        found = find_damage(path, index)
        damage = found[1] if found is not None and found[0] == index else \
            "damaged (its framing differs from the other records')"
    return DatasetError(f"{path}: record {index}: {damage}; recreate the dataset")


def find_damage(path, first=0):
    """(record index, what is wrong) of the first damaged record at or after record `first`, or None.

    Records before `first` were already checked, so only their headers are read (to find the offsets)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        index = 0
        while True:
            pos = f.tell()
            header = f.read(12)
            if not header:
                return None
            if len(header) < 12:
                return index, f"truncated (the file ends inside its header, at byte {pos})"
            (length,) = struct.unpack("<Q", header[:8])
            if struct.unpack("<I", header[8:])[0] != masked_crc32c(header[:8]):
                return index, f"length field damaged (bad header checksum at byte {pos})"
            if pos + 12 + length + 4 > size:
                return index, f"truncated (the file ends inside its data, at byte {size})"
            if index < first:
                f.seek(length + 4, os.SEEK_CUR)
            else:
                payload, stored = f.read(length), f.read(4)
                if struct.unpack("<I", stored)[0] != masked_crc32c(payload):
                    return index, f"data damaged (checksum mismatch over bytes {pos + 12}..{pos + 12 + length - 1})"
            index += 1


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


def masked_crc32c_rows(rows, chunk=512):
    """TFRecord's masked CRC-32C of every row of a uint8 [n, L] array (L >= 4), all rows at once.

    A CRC from a zero register is linear in the data: a chunk's CRC is the XOR of one table entry per byte (the
    byte's effect at its position), so a chunk of every row is one gather and one XOR-reduction; the chunks are
    then chained with the "append m zero bytes" map (`_zero_shift`). The initial register ~0 is folded
    into the first four bytes, as `crc32c` does. A level's worth of records costs L / chunk numpy steps,
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


def _varint_bytes(value):
    """Protobuf's varint of an int64 (a negative one as its 64-bit two's complement, ten bytes, as protobuf does)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number, payload):
    """A length-delimited protobuf field: key, varint length, the payload."""
    return _varint_bytes(number << 3 | 2) + _varint_bytes(len(payload)) + payload


def image_example_parts(shape, nbytes):
    """(head, tail): the serialized image `tf.train.Example` is head + the `nbytes` image bytes + tail.

    The example is the one NVIDIA's exporter builds, `Features(feature={"shape": Int64List(shape), "data":
    BytesList([image bytes])})`, with the int64 list packed, as protobuf serializes it in its deterministic mode
    (`SerializeToString(deterministic=True)`): map entries sorted by key, "data" before "shape". TensorFlow's
    default serialization holds the same fields, but its map order changes from process to process, so the
    deterministic one is the order to reproduce. The head and tail depend on the shape alone, so one pair serves
    every image of a level."""
    nbytes = int(nbytes)
    packed = b"".join(_varint_bytes(int(v)) for v in shape)
    shape_entry = _field(1, b"\x0a\x05shape" + _field(2, _field(3, _field(1, packed))))  # Int64List in Feature
    # The data entry with its bytes left off: every length on the way down counts them.
    value_head = b"\x0a" + _varint_bytes(nbytes)                                   # BytesList.value[0]
    feature = b"\x0a" + _varint_bytes(len(value_head) + nbytes) + value_head        # Feature.bytes_list
    entry = b"\x0a\x04data\x12" + _varint_bytes(len(feature) + nbytes) + feature    # map entry: key, value
    data_head = b"\x0a" + _varint_bytes(len(entry) + nbytes) + entry               # Features.feature["data"]
    size = len(data_head) + nbytes + len(shape_entry)
    return b"\x0a" + _varint_bytes(size) + data_head, shape_entry                # Example.features


def image_example(image):
    """A uint8 [C, H, W] array -> its serialized `tf.train.Example` (see `image_example_parts`); `parse_example`
    reverses it."""
    image = np.ascontiguousarray(image)
    head, tail = image_example_parts(image.shape, image.nbytes)
    return head + image.tobytes() + tail


class RecordWriter:
    """Writes a TFRecord file as `tf.io.TFRecordWriter` does (uncompressed): the same bytes for the same payloads.

    `write` frames one payload; `write_rows` frames many equal-length payloads at once, the checksums computed
    for all of them together (`masked_crc32c_rows`), which is how a level file is written fast without
    TensorFlow's compiled CRC. Errors are Python's OSErrors (a full disk: ENOSPC), naming the file."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self._file = open(self.path, "wb")

    def _named(self, e):
        # A buffered write's OSError may lack the file name; the caller's one-line error needs it.
        return e if e.filename else OSError(e.errno, e.strerror, self.path)

    def write(self, payload):
        header = struct.pack("<Q", len(payload))
        try:
            self._file.write(header + struct.pack("<I", masked_crc32c(header)) + bytes(payload) +
                             struct.pack("<I", masked_crc32c(payload)))
        except OSError as e:
            raise self._named(e) from None

    def write_rows(self, rows):
        """Write each row of a uint8 [n, L] array (or a list of equal-length bytes) as one record, in order."""
        if not isinstance(rows, np.ndarray):
            rows = np.stack([np.frombuffer(r, np.uint8) for r in rows]) if len(rows) else np.zeros((0, 0), np.uint8)
        n, length = rows.shape
        if n == 0:
            return
        if length < 4:                  # masked_crc32c_rows needs four bytes; such records are never images
            for row in rows:
                self.write(row.tobytes())
            return
        header = struct.pack("<Q", length)
        framed = np.empty((n, 12 + length + 4), np.uint8)
        framed[:, :12] = np.frombuffer(header + struct.pack("<I", masked_crc32c(header)), np.uint8)
        framed[:, 12:12 + length] = rows
        # Longer chunks for long records: fewer numpy steps per row when few rows come at once (measured: 3 MB
        # rows, 8 at a time, ~90 MB/s with 4096-byte chunks against ~45 with 512).
        crcs = masked_crc32c_rows(rows, chunk=512 if length < (64 << 10) else 4096)
        framed[:, 12 + length:] = crcs.astype("<u4").view(np.uint8).reshape(n, 4)
        try:
            self._file.write(framed.data)
        except OSError as e:
            raise self._named(e) from None

    def close(self):
        """Flush and close the file (a full disk may only show here); closing again does nothing."""
        if self._file.closed:
            return
        try:
            self._file.close()
        except OSError as e:
            raise self._named(e) from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
