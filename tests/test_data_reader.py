"""The tf.data reader training uses: levels, value mapping, labels, mirror, shuffle, determinism."""
import numpy as np
import pytest
from conftest import write_random_dataset

tf = pytest.importorskip("tensorflow")

from stylegan_tf.data import DatasetError, build_pyramid  # noqa: E402

N = 20


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reader") / "ds"
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, [N, 3, 16, 16]).astype(np.uint8)
    labels = np.eye(4, dtype=np.float32)[np.arange(N) % 4]
    return write_random_dataset(folder, images, labels), images, labels


def _all(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def test_values_levels_and_labels_in_record_order(dataset):
    info, images, labels = dataset
    assert (info.num_images, info.resolution, info.num_channels, info.label_size) == (N, 16, 3, 4)
    for lod, res in enumerate([16, 8, 4]):
        x, y = _all(info.make_tf_dataset(res, batch_size=6, shuffle=False, repeat=False))
        ref = np.stack([build_pyramid(im)[lod] for im in images]).transpose(0, 2, 3, 1)
        assert x.dtype == np.float32 and x.shape == (N, res, res, 3)
        # The original's mapping, in float32: x * (2/255) + (-1).
        np.testing.assert_array_equal(x, ref.astype(np.float32) * np.float32(2 / 255) + np.float32(-1))
        np.testing.assert_array_equal(y, labels)
    assert x.min() >= -1 and x.max() <= 1
    with pytest.raises(DatasetError, match="no level"):
        info.make_tf_dataset(32, 4)


def test_repeat_gives_full_static_batches(dataset):
    info, _, _ = dataset
    ds = info.make_tf_dataset(8, batch_size=6, seed=0)
    assert ds.element_spec[0].shape.as_list() == [6, 8, 8, 3]
    assert ds.element_spec[1].shape.as_list() == [6, 4]
    batches = list(ds.take(5))  # 30 images > 20: repeats past the end
    assert len(batches) == 5 and all(b[0].shape[0] == 6 for b in batches)


def test_shuffle_is_a_seeded_permutation(dataset):
    info, images, labels = dataset
    ref = np.stack([build_pyramid(im)[1] for im in images]).transpose(0, 2, 3, 1)
    a, ya = _all(info.make_tf_dataset(8, batch_size=5, shuffle=True, repeat=False, seed=7))
    b, _ = _all(info.make_tf_dataset(8, batch_size=5, shuffle=True, repeat=False, seed=7))
    np.testing.assert_array_equal(a, b)
    u8 = np.rint((a + 1) * 127.5).astype(np.uint8)
    order = [int(np.flatnonzero((ref == u).all(axis=(1, 2, 3)))[0]) for u in u8]
    assert sorted(order) == list(range(N)) and order != list(range(N))
    np.testing.assert_array_equal(ya, labels[order])  # labels travel with their images


def test_mirror_flips_about_half_reproducibly(dataset):
    info, images, _ = dataset
    ref = np.stack([build_pyramid(im)[0] for im in images]).transpose(0, 2, 3, 1)
    ref = ref.astype(np.float32) * np.float32(2 / 255) - 1
    runs = [_all(info.make_tf_dataset(16, 4, mirror=True, shuffle=False, repeat=False, seed=3))[0]
            for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])
    flipped = [bool(np.array_equal(x, r[:, ::-1])) for x, r in zip(runs[0], ref)]
    same = [bool(np.array_equal(x, r)) for x, r in zip(runs[0], ref)]
    assert all(f or s for f, s in zip(flipped, same))
    assert 2 <= sum(flipped) <= N - 2
    other = _all(info.make_tf_dataset(16, 4, mirror=True, shuffle=False, repeat=False, seed=4))[0]
    assert not np.array_equal(other, runs[0])


def test_iterate_uint8(dataset):
    info, images, labels = dataset
    batches = list(info.iterate_uint8(batch_size=8))
    assert [len(b) for b in batches] == [8, 8, 4] and batches[0].dtype == np.uint8
    np.testing.assert_array_equal(np.concatenate(batches), images.transpose(0, 2, 3, 1))
    first = list(info.iterate_uint8(resolution=4, max_images=5, batch_size=2, with_labels=True))
    assert sum(len(x) for x, _ in first) == 5
    np.testing.assert_array_equal(np.concatenate([y for _, y in first]), labels[:5])
