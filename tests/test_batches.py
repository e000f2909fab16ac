"""The training batches (data/batches.py): tf.data and numpy give the same batches for a seed, batch k can be read
without the batches before it, pyramid / subset / repeat / last partial batch, the decoded-level cache, damage."""
import os

import numpy as np
import pytest
from conftest import write_random_dataset

tf = pytest.importorskip("tensorflow")

from stylegan_tf.data import DatasetError, level_reader, numpy_reader, open_dataset  # noqa: E402
from stylegan_tf.data.batches import BatchStream  # noqa: E402

N = 20


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batches") / "ds"
    rng = np.random.RandomState(1)
    images = rng.randint(0, 256, [N, 3, 16, 16]).astype(np.uint8)
    labels = np.eye(4, dtype=np.float32)[rng.randint(0, 4, N)]
    return write_random_dataset(folder, images, labels), images, labels


def _tf_batches(ds, count):
    out = []
    for images, labels in ds.take(count):
        levels = images if isinstance(images, tuple) else (images,)
        out.append(([x.numpy() for x in levels], labels.numpy()))
    return out


def _np_batches(it, count):
    out = []
    for _, (images, labels) in zip(range(count), it):
        out.append((list(images) if isinstance(images, tuple) else [images], labels))
    return out


def _assert_same(a, b):
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert len(xa) == len(xb)
        for u, v in zip(xa, xb):
            assert u.dtype == v.dtype == np.float32 and u.shape == v.shape
            np.testing.assert_array_equal(u, v)
        np.testing.assert_array_equal(ya, yb)


CASES = {
    "shuffle-mirror-labels-repeat": dict(resolution=16, batch_size=6, mirror=True, seed=5),       # epochs cross
    "pyramid": dict(resolution=16, batch_size=6, mirror=True, seed=2, pyramid=True),
    "lower-level-uncached": dict(resolution=8, batch_size=7, mirror=True, seed=9, cache_mb=0),
    "one-epoch-partial-last": dict(resolution=16, batch_size=6, mirror=True, seed=4, repeat=False),
    "record-order": dict(resolution=4, batch_size=8, shuffle=False, repeat=False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tf_data_and_numpy_give_the_same_batches(dataset, case):
    info, _, _ = dataset
    kw = CASES[case]
    theirs = _tf_batches(info.make_tf_dataset(**kw), 9)
    ours = _np_batches(numpy_reader.iterate_batches(info, **kw), 9)
    _assert_same(ours, theirs)
    if kw.get("repeat", True):
        assert len(ours) == 9 and all(len(y) == kw["batch_size"] for _, y in ours)
    else:
        sizes = [len(y) for _, y in ours]
        assert sum(sizes) == N and sizes[:-1] == [kw["batch_size"]] * (len(sizes) - 1)


def test_the_stream_is_per_epoch_permutations_with_images_labels_and_flips_together(dataset):
    info, images, labels = dataset
    ref = images.transpose(0, 2, 3, 1)
    stream = BatchStream(info, 16, batch_size=6, mirror=True, seed=11)
    order, flips = [], 0
    for k in range(10):                                    # 60 images: three epochs of 20
        (x,), y = stream.batch_uint8(k)
        for img, lab in zip(x, y):
            hit = [i for i in range(N) if np.array_equal(img, ref[i]) or np.array_equal(img, ref[i][:, ::-1])]
            assert len(hit) == 1
            order.append(hit[0])
            flips += not np.array_equal(img, ref[hit[0]])
            np.testing.assert_array_equal(lab, labels[hit[0]])
    epochs = [order[i:i + N] for i in range(0, 3 * N, N)]
    assert all(sorted(e) == list(range(N)) for e in epochs)
    assert epochs[0] != epochs[1] != epochs[2] and epochs[0] != list(range(N))
    assert 10 < flips < 50
    again = BatchStream(info, 16, batch_size=6, mirror=True, seed=11)
    np.testing.assert_array_equal(again.batch_uint8(7)[0][0], stream.batch_uint8(7)[0][0])
    other = BatchStream(info, 16, batch_size=6, mirror=True, seed=12)
    assert not np.array_equal(other.batch_uint8(0)[0][0], stream.batch_uint8(0)[0][0])


@pytest.mark.parametrize("pyramid", [False, True])
def test_a_pipeline_started_at_batch_k_gives_batch_k(dataset, pyramid):
    info, _, _ = dataset
    kw = dict(resolution=16, batch_size=6, mirror=True, seed=3, pyramid=pyramid)
    from_zero = _tf_batches(info.make_tf_dataset(**kw), 12)
    for k in (1, 5, 10):
        _assert_same(_tf_batches(info.make_tf_dataset(start=k, **kw), 2), from_zero[k:k + 2])
        _assert_same(_np_batches(numpy_reader.iterate_batches(info, start=k, **kw), 2), from_zero[k:k + 2])


def test_a_resumed_start_reads_only_its_own_records(dataset, monkeypatch):
    info, _, _ = dataset
    path = info.level_path(16)
    reads = []
    real_pread = os.pread

    def counting_pread(fd, size, offset):
        if os.path.realpath(f"/proc/self/fd/{fd}") == os.path.realpath(path):
            reads.append(offset)
        return real_pread(fd, size, offset)

    monkeypatch.setattr(os, "pread", counting_pread)
    kw = dict(resolution=16, batch_size=4, seed=8, cache_mb=0)
    stream = BatchStream(info, **kw)
    step = stream.readers[0].step
    k = 40                                                     # 160 images in: eight epochs
    it = numpy_reader.iterate_batches(info, start=k, prefetch=0, **kw)
    images, _ = next(it)
    wanted = stream.records[stream.positions(k)]
    assert sorted(o // step for o in reads) == sorted(set(wanted.tolist()))   # its 4 records, nothing before it
    np.testing.assert_array_equal(images, stream.batch(k)[0])
    reads.clear()
    x, _ = next(iter(info.make_tf_dataset(start=k, **kw)))
    np.testing.assert_array_equal(x.numpy(), images)
    assert 0 < len(reads) < 4 * k / 2          # a few batches prefetched ahead, never the 160 records before k


def test_cached_and_uncached_levels_read_the_same(dataset):
    info, images, _ = dataset
    cached = BatchStream(info, 8, batch_size=5, mirror=True, seed=1, pyramid=True)
    assert all(r.cached for r in cached.readers)
    first = [cached.batch_uint8(k) for k in range(6)]
    uncached = BatchStream(info, 8, batch_size=5, mirror=True, seed=1, pyramid=True, cache_mb=0)
    assert not any(r.cached for r in uncached.readers)
    for k, (levels, labels) in enumerate(first):
        again, again_labels = uncached.batch_uint8(k)
        for a, b in zip(levels, again):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(labels, again_labels)
    # A budget that holds only the lower levels caches those, lowest first.
    small = BatchStream(info, 16, batch_size=5, pyramid=True, cache_mb=N * 3 * (16 + 64 + 100) / 2 ** 20)
    assert [r.cached for r in small.readers] == [True, True, False]
    reader = level_reader.level_reader(info.level_path(16), (3, 16, 16))
    np.testing.assert_array_equal(reader.read([3, 0, 3]), images[[3, 0, 3]].transpose(0, 2, 3, 1))


def test_subset_view_reads_its_class_only_and_both_paths_agree(dataset):
    from stylegan_tf.training.prepare import subset_class
    info, images, labels = dataset
    view = subset_class(info, "0", str(info.path))
    members = np.flatnonzero(labels.argmax(1) == 0)
    assert view.num_images == len(members) >= 3
    kw = dict(resolution=16, batch_size=3, mirror=False, seed=6)
    theirs = _tf_batches(view.make_tf_dataset(**kw), 4)
    _assert_same(_np_batches(numpy_reader.iterate_batches(view, **kw), 4), theirs)
    keys = {images[i].transpose(1, 2, 0).tobytes() for i in members}
    for (x,), y in theirs:
        assert y.shape == (3, 0)
        assert all(np.rint((img + 1) * 127.5).astype(np.uint8).tobytes() in keys for img in x)
    _assert_same(_tf_batches(view.make_tf_dataset(start=2, **kw), 2), theirs[2:4])


def test_a_damaged_record_is_named_by_both_paths(dataset, tmp_path):
    import shutil
    info, _, _ = dataset
    folder = tmp_path / "bad"
    shutil.copytree(info.path, folder)
    bad = open_dataset(folder)
    path = bad.level_path(8)
    step = level_reader.level_reader(path, (3, 8, 8)).step
    with open(path, "r+b") as f:                                # one flipped byte in record 13's pixels
        f.seek(13 * step + step // 2)
        byte = f.read(1)
        f.seek(13 * step + step // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    needle = f"{path}: record 13: data damaged (checksum mismatch"
    for cache_mb in (None, 0):
        stream = BatchStream(bad, 8, batch_size=N, shuffle=False, repeat=False, cache_mb=cache_mb)
        with pytest.raises(DatasetError, match="^" + needle.replace("(", r"\(")):
            stream.batch(0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="record 13: data damaged"):
        list(bad.make_tf_dataset(8, batch_size=N, shuffle=False, repeat=False, cache_mb=0))


def test_records_of_other_tools_varying_sizes_and_framing(tmp_path):
    """A level file whose records differ in size and framing (another writer, an extra feature) is read through
    its record headers and parsed record by record, with and without the cache."""
    rng = np.random.RandomState(3)
    images = rng.randint(0, 256, [7, 3, 4, 4]).astype(np.uint8)
    path = str(tmp_path / "other-r02.tfrecords")
    with tf.io.TFRecordWriter(path) as w:
        for i, im in enumerate(images):
            feature = {"data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[im.tobytes()])),
                       "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=im.shape)),
                       "note": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x" * i]))}
            w.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    reader = level_reader.LevelReader(path, (3, 4, 4))
    assert reader.offsets is not None and reader.count == 7         # not one record size: headers walked
    order = [6, 0, 3, 3, 1]
    want = images[order].transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(reader.read(order), want)
    reader.enable_cache()
    np.testing.assert_array_equal(reader.read(order), want)
    data = bytearray(open(path, "rb").read())
    data[int(reader.offsets[4]) + 20] ^= 0x01                       # inside record 4's payload
    bad = str(tmp_path / "bad-r02.tfrecords")
    open(bad, "wb").write(bytes(data))
    with pytest.raises(DatasetError, match=r"bad-r02\.tfrecords: record 4: data damaged"):
        level_reader.LevelReader(bad, (3, 4, 4)).read(range(7))
