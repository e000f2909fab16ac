"""Reading the official TFRecord layout without TensorFlow: records, `tf.train.Example`s and numpy batches.

A TFRecord file is a run of records: uint64 length, uint32 masked CRC-32C of the length, the payload, uint32
masked CRC-32C of the payload. Each payload is a `tf.train.Example` protobuf whose two features are the official
`shape` (int64 [C, H, W]) and `data` (the uint8 bytes); both are decoded by hand here (protobuf's wire format is
small: varints and length-delimited fields). `iterate_batches` gives the same stream as `make_tf_dataset` does
(the same window-shuffle algorithm as `tf.data.Dataset.shuffle`, reshuffled every epoch, full batches when
repeating, uint8 -> `x * 2/255 - 1`, mirror flips drawn per batch from (seed, batch index)); without shuffling
and mirroring the batches are identical to tf.data's, with them the random numbers are numpy's, not TF's.
This is what training and the metrics read when TensorFlow is not installed (a JAX machine).
"""
import queue
import struct
import threading

import numpy as np

from stylegan_tf.data.tfrecords import DatasetError, masked_crc32c


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
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


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


def _window_shuffle(items, window, rng):
    """tf.data's shuffle: a buffer of `window` items; each output is a uniformly drawn buffer slot, refilled
    from the input."""
    buf = []
    for item in items:
        if len(buf) < window:
            buf.append(item)
            continue
        i = int(rng.integers(len(buf)))
        out, buf[i] = buf[i], item
        yield out
    while buf:
        i = int(rng.integers(len(buf)))
        buf[i], buf[-1] = buf[-1], buf[i]
        yield buf.pop()


def iterate_batches(info, resolution=None, batch_size=32, mirror=False, shuffle=True, repeat=True, seed=None,
                    shuffle_mb=1024, drop_remainder=None, prefetch=2):
    """numpy (images float32 [-1, 1] NHWC [B, r, r, C], labels float32 [B, L]) batches, as `make_tf_dataset`.

    Args:
        info: an opened dataset (`open_dataset`).
        resolution: the level to read (default: full).
        batch_size, mirror, shuffle, repeat, seed, shuffle_mb, drop_remainder: as `DatasetInfo.make_tf_dataset`.
        prefetch: batches decoded ahead in a background thread (0: none).

    Example:
        >>> batches = iterate_batches(open_dataset("datasets/mine"), 32, batch_size=8, seed=1)
        >>> images, labels = next(batches)
    """
    resolution = info.resolution if resolution is None else int(resolution)
    path = info.level_path(resolution)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
    drop = bool(repeat) if drop_remainder is None else bool(drop_remainder)
    item_bytes = info.num_channels * resolution * resolution + 32
    window = int(min(info.num_images, max(1, (shuffle_mb << 20) // item_bytes)))
    shape = (info.num_channels, resolution, resolution)
    labels = info.labels

    def items():
        epoch = 0
        while True:
            stream = zip(read_records(path), range(len(labels)))
            if shuffle:
                stream = _window_shuffle(stream, window, np.random.default_rng([seed, epoch]))
            yield from stream
            epoch += 1
            if not repeat:
                return

    def batches():
        index, group = 0, []
        for record, i in items():
            group.append((record, i))
            if len(group) == batch_size:
                yield _convert(group, index)
                index, group = index + 1, []
        if group and not drop:
            yield _convert(group, index)

    def _convert(group, index):
        images = np.stack([parse_example(r) for r, _ in group])
        if images.shape[1:] != shape:
            raise DatasetError(f"{path}: records have shape {list(images.shape[1:])}, expected {list(shape)}")
        images = images.transpose(0, 2, 3, 1).astype(np.float32) * np.float32(2.0 / 255.0) + np.float32(-1.0)
        if mirror:
            flip = np.random.default_rng([seed, index, 1]).uniform(size=len(group)) < 0.5
            images[flip] = images[flip, :, ::-1]
        return images, labels[[i for _, i in group]]

    return batches() if not prefetch else _prefetched(batches(), prefetch)


def _prefetched(gen, depth):
    """Run `gen` in a daemon thread, `depth` items ahead; its exceptions are raised in the consumer."""
    q = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work():
        try:
            for item in gen:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as e:   # handed to the consumer, which raises it
            q.put(e)

    threading.Thread(target=work, daemon=True).start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


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
