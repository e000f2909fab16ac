"""FID / KID / SWD maths against closed forms, the content-keyed cache, calc_metrics and the CLI."""
import json
import os
import pickle
import types

import numpy as np
import pytest
import scipy.linalg
from scipy import ndimage

from stylegan_tf.metrics import frechet_inception_distance as fid
from stylegan_tf.metrics import kernel_inception_distance as kid
from stylegan_tf.metrics import metric_base
from stylegan_tf.metrics import sliced_wasserstein as swd
from test_cli import read_only  # noqa: F401  (a fixture)

# ------------------------------------------------------------------------------------------------
# FID


def _random_factor(rs, d, rank=None):
    return rs.randn(d, rank or d) / np.sqrt(d)


def test_fid_of_identical_sets_is_zero():
    rs = np.random.RandomState(0)
    feats = rs.randn(400, 96) @ rs.randn(96, 96) + 3.0
    assert abs(fid.fid_from_features(feats, feats)) < 1e-6
    # Rank-deficient covariances (fewer samples than dimensions, as with small N) too.
    few = rs.randn(50, 128)
    assert abs(fid.fid_from_features(few, few)) < 1e-6


def test_fid_of_two_gaussians_matches_the_closed_form():
    rs = np.random.RandomState(1)
    d = 32
    q, _ = np.linalg.qr(rs.randn(d, d))
    a, b = rs.uniform(0.1, 4.0, d), rs.uniform(0.1, 4.0, d)
    mu1, mu2 = rs.randn(d), rs.randn(d)
    # Covariances sharing eigenvectors: FID = |mu1-mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
    s1, s2 = (q * a) @ q.T, (q * b) @ q.T
    expected = np.square(mu1 - mu2).sum() + np.square(np.sqrt(a) - np.sqrt(b)).sum()
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-10)
    # Isotropic: d * (sqrt(s) - sqrt(t))^2.
    assert fid.frechet_distance(np.zeros(d), 4 * np.eye(d), np.zeros(d), np.eye(d)) == pytest.approx(d, rel=1e-12)
    # Estimated from samples, the FID converges to the closed form.
    x = rs.randn(200000, 3) * np.sqrt([1.0, 2.0, 3.0]) + [1, 0, 0]
    y = rs.randn(200000, 3) * np.sqrt([2.0, 2.0, 1.0])
    truth = 1.0 + (1 - np.sqrt(2)) ** 2 + 0 + (np.sqrt(3) - 1) ** 2
    assert fid.fid_from_features(x, y) == pytest.approx(truth, abs=0.03)


@pytest.mark.parametrize("rank", [None, 20])
def test_trace_sqrt_closed_form_and_scipy_sqrtm(rank):
    rs = np.random.RandomState(2)
    a, b = _random_factor(rs, 64, rank), _random_factor(rs, 64, rank)
    s1, s2 = a @ a.T, b @ b.T
    ours = fid.trace_sqrt_product(s1, s2)
    # s1 s2 = A (A'B) B' is similar to (A'B)(A'B)', so tr sqrtm(s1 s2) = nuclear norm of A'B.
    exact = np.linalg.svd(a.T @ b, compute_uv=False).sum()
    assert ours == pytest.approx(exact, rel=1e-10)
    # scipy's sqrtm (what NVIDIA calls) agrees; on rank-deficient inputs it carries ~1e-8 of round-off noise.
    ref = np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
    assert ours == pytest.approx(ref, rel=1e-10 if rank is None else 1e-6)


def test_fid_few_samples_shortcut_equals_the_full_formula():
    rs = np.random.RandomState(12)
    x, y = rs.randn(20, 96) + 0.5, rs.randn(300, 96) @ rs.randn(96, 96) / 10
    mu, sigma = fid.feature_statistics(y)
    full = fid.frechet_distance(*fid.feature_statistics(x), mu, sigma)
    assert fid.frechet_distance_from_features(x, mu, sigma) == pytest.approx(full, rel=1e-9)


def test_feature_statistics_are_float64_unbiased():
    x = np.random.RandomState(3).randn(10, 4).astype(np.float32)
    mu, sigma = fid.feature_statistics(x)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(sigma, (x - x.mean(0)).T.astype(np.float64) @ (x - x.mean(0)) / 9, rtol=1e-6)
    with pytest.raises(ValueError):
        fid.feature_statistics(x[:1])


# ------------------------------------------------------------------------------------------------
# KID


def _mmd2_unbiased_loops(x, y):
    """Unbiased MMD^2 with the cubic kernel, written out with explicit sums."""
    d, m = x.shape[1], x.shape[0]

    def k(a, b):
        return (np.dot(a, b) / d + 1) ** 3

    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return kxx + kyy - 2 * kxy


def test_kid_equals_unbiased_mmd_on_known_inputs():
    rs = np.random.RandomState(4)
    real, fake = rs.randn(7, 5), rs.randn(7, 5) + 0.3
    # With subsets as large as the sets, every subset is a permutation: KID = MMD^2_u exactly.
    got = kid.kernel_inception_distance(real, fake, num_subsets=3)
    assert got == pytest.approx(_mmd2_unbiased_loops(fake, real), rel=1e-12)


def test_kid_grows_with_a_shift_and_is_unbiased():
    rs = np.random.RandomState(5)
    real = rs.randn(600, 16)
    same = kid.kernel_inception_distance(real, rs.randn(600, 16), num_subsets=20, max_subset_size=200)
    near = kid.kernel_inception_distance(real, rs.randn(600, 16) + 0.3, num_subsets=20, max_subset_size=200)
    far = kid.kernel_inception_distance(real, rs.randn(600, 16) + 1.0, num_subsets=20, max_subset_size=200)
    assert abs(same) < 0.02 * near and near < far
    assert kid.NUM_SUBSETS == 100 and kid.MAX_SUBSET_SIZE == 1000  # NVIDIA's estimator


# ------------------------------------------------------------------------------------------------
# SWD


def test_pyramid_matches_the_2d_filter_and_reconstructs():
    rs = np.random.RandomState(6)
    x = rs.randint(0, 256, size=(2, 32, 32, 3)).astype(np.float32)
    # The separable blur equals the original's 5x5 binomial filter with mirrored borders.
    g = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float32) / 256
    ref = ndimage.convolve(x, g[None, :, :, None], mode="mirror")[:, ::2, ::2]
    np.testing.assert_allclose(swd.pyr_down(x), ref, rtol=1e-5, atol=1e-3)
    pyr = swd.laplacian_pyramid(x.astype(np.uint8), 3)
    assert [p.shape[1] for p in pyr] == [32, 16, 8]
    np.testing.assert_allclose(swd.reconstruct_laplacian_pyramid(pyr), x, atol=1e-3)


def test_sliced_wasserstein_closed_form_in_one_dimension():
    rs = np.random.RandomState(7)
    a = rs.randn(5000, 1).astype(np.float32)
    # In 1-D every direction is +-1: SWD = W1 between the empirical distributions = the shift.
    assert swd.sliced_wasserstein(a, a + 0.5, rs) == pytest.approx(0.5, rel=1e-5)
    assert swd.sliced_wasserstein(a, a, rs) == 0.0


def _images(rs, n, res=32, c=3):
    """Smooth random images (blurred noise), like a tiny dataset."""
    x = ndimage.gaussian_filter(rs.rand(n, res, res, c) * 255, sigma=(0, 2, 2, 0))
    return np.clip((x - x.mean()) * 4 + 128, 0, 255).astype(np.uint8)


def test_swd_is_zero_for_identical_sets_and_grows_with_a_shift():
    rs = np.random.RandomState(8)
    imgs = _images(rs, 24)
    same = swd.swd(imgs, imgs)
    assert set(same) == {32, 16, "avg"} and all(v == 0.0 for v in same.values())
    noise = rs.randn(*imgs.shape)
    small = swd.swd(imgs, np.clip(imgs + 8 * noise, 0, 255).astype(np.uint8))
    large = swd.swd(imgs, np.clip(imgs + 40 * noise, 0, 255).astype(np.uint8))
    assert 0 < small["avg"] < large["avg"]
    assert small[32] < large[32] and small[16] < large[16]


def test_swd_descriptors_do_not_depend_on_batching():
    rs = np.random.RandomState(9)
    imgs = _images(rs, 8, res=16, c=1)
    a, b = swd.DescriptorSet(8, 16, 1, seed=3), swd.DescriptorSet(8, 16, 1, seed=3)
    a.add(imgs)
    for i in (0, 3, 5):
        b.add(imgs[i:{0: 3, 3: 5, 5: 8}[i]])
    for la, lb in zip(a.finalize(), b.finalize()):
        np.testing.assert_array_equal(la, lb)
    assert swd.pyramid_resolutions(64) == [64, 32, 16]
    with pytest.raises(ValueError, match="16x16"):
        swd.DescriptorSet(1, 8, 3, seed=0)


# ------------------------------------------------------------------------------------------------
# Registry


def test_registry_names():
    assert isinstance(metric_base.get_metric("fid50k"), fid.FID)
    m = metric_base.get_metric("fid10k_full")
    assert m.num_images == 10000 and m.full_reals
    assert metric_base.get_metric("kid50k").num_images == 50000
    assert metric_base.get_metric("swd16k").num_images == 16384
    assert metric_base.parse_metric_names("fid50k, swd16k,") == ["fid50k", "swd16k"]
    with pytest.raises(metric_base.MetricError, match="unknown metric 'ppl'.*fid50k"):
        metric_base.parse_metric_names("fid50k,ppl")
    with pytest.raises(metric_base.MetricError, match="fid0k"):
        metric_base.get_metric("fid0k")
    usual = metric_base.list_metrics()
    assert {"fid50k", "fid50k_full", "kid50k", "swd16k"} <= set(usual)
    assert all(metric_base.get_metric(n).name == n for n in usual)


def test_prepare_metrics_fetches_weights_only_when_needed(tmp_path, monkeypatch):
    from stylegan_tf.metrics import inception
    monkeypatch.setenv("STYLEGAN_TF_CACHE", str(tmp_path / "empty"))
    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    # SWD needs no weights: nothing is looked up (and nothing downloaded) with an empty cache.
    assert metric_base.prepare_metrics("swd16k,swd2k") == ["swd16k", "swd2k"]
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"x")
    monkeypatch.setenv(inception.ENV_VAR, str(weights))
    assert metric_base.prepare_metrics(["fid50k", "kid50k"]) == ["fid50k", "kid50k"]
    monkeypatch.setenv(inception.ENV_VAR, str(tmp_path / "gone.pth"))
    with pytest.raises(inception.InceptionWeightsError, match="gone.pth"):
        metric_base.prepare_metrics("swd16k,fid50k")


# ------------------------------------------------------------------------------------------------
# Datasets, cache, end to end (tiny generator, tiny dataset)


def write_dataset(folder, images):
    """A dataset in the official layout from uint8 NHWC images, through the dataset module's writer."""
    from stylegan_tf.data import DatasetWriter, build_pyramid
    os.makedirs(folder, exist_ok=True)
    n, res, _, c = images.shape
    with DatasetWriter(str(folder), os.path.basename(str(folder)), res, c) as w:
        for img in images:
            w.add(build_pyramid(np.ascontiguousarray(img.transpose(2, 0, 1))))
    return str(folder)


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_TF_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "metrics"


def test_cache_is_keyed_by_content_not_path(tmp_path, cache_home):
    from stylegan_tf.data import open_dataset
    rs = np.random.RandomState(10)
    imgs = _images(rs, 6, res=16)
    a = write_dataset(tmp_path / "a", imgs)
    b = write_dataset(tmp_path / "elsewhere" / "a", imgs)
    fa, fb = (metric_base.dataset_fingerprint(open_dataset(p)) for p in (a, b))
    assert fa == fb
    net = types.SimpleNamespace(cache_key="some-inception-weights", features=None)
    calls = []

    def compute():
        calls.append(1)
        return {"mu": np.full(3, len(calls), np.float64)}

    ctx = metric_base.MetricContext(None, a, inception=net)
    assert ctx.cached("fid-stats", {"num_reals": 6}, compute)["mu"][0] == 1
    assert metric_base.MetricContext(None, b, inception=net).cached("fid-stats", {"num_reals": 6}, compute)["mu"][0] == 1
    assert len(calls) == 1 and len(os.listdir(cache_home)) == 1
    # Other options, mirroring or Inception weights: other entries.
    ctx.cached("fid-stats", {"num_reals": 5}, compute)
    metric_base.MetricContext(None, a, mirror=True, inception=net).cached("fid-stats", {"num_reals": 6}, compute)
    other = types.SimpleNamespace(cache_key="other-weights", features=None)
    metric_base.MetricContext(None, a, inception=other).cached("fid-stats", {"num_reals": 6}, compute)
    assert len(calls) == 4
    # One pixel of one image changes -> the cache entry no longer applies.
    imgs2 = imgs.copy()
    imgs2[3, 5, 7, 1] ^= 1
    write_dataset(tmp_path / "c", imgs2)
    os.replace(tmp_path / "c" / "c-r04.tfrecords", tmp_path / "a" / "a-r04.tfrecords")
    for r in (3, 2):
        os.replace(tmp_path / "c" / f"c-r0{r}.tfrecords", tmp_path / "a" / f"a-r0{r}.tfrecords")
    assert metric_base.dataset_fingerprint(open_dataset(a)) != fa
    fresh = metric_base.MetricContext(None, a, inception=net).cached("fid-stats", {"num_reals": 6}, compute)
    assert len(calls) == 5 and fresh["mu"][0] == 5


@pytest.fixture(scope="module")
def tiny_gen(tiny_network_path):
    """conftest's tiny generator (noise weights 0.3) as calc_metrics takes it (G = Gs, no D)."""
    import stylegan_tf
    G = stylegan_tf.load_network(tiny_network_path).Gs
    return types.SimpleNamespace(G=G, D=None, Gs=G)


@pytest.fixture(scope="module")
def demo_data(demo_dataset):
    return demo_dataset(resolution=32, count=64)  # tiny_gen's resolution: metrics compare like with like


def test_reals_in_order_cycled_and_mirrored(demo_data):
    from stylegan_tf.data import open_dataset
    first = np.concatenate(list(open_dataset(demo_data).iterate_uint8(batch_size=64)))
    ctx = metric_base.MetricContext(None, demo_data, batch_size=24, progress=False)
    got = np.concatenate(list(ctx.iterate_reals(100)))
    assert got.shape == (100, 32, 32, 3)
    np.testing.assert_array_equal(got[:64], first)
    np.testing.assert_array_equal(got[64:], first[:36])  # fewer reals than asked: cycled, as NVIDIA's reader
    assert any("cycling" in n for n in ctx.notes)
    mirrored = np.concatenate(list(metric_base.MetricContext(None, demo_data, mirror=True, progress=False)
                                   .iterate_reals(64)))
    flipped = [np.array_equal(m, f[:, ::-1]) and not np.array_equal(m, f) for m, f in zip(mirrored, first)]
    same = [np.array_equal(m, f) for m, f in zip(mirrored, first)]
    assert all(a or b for a, b in zip(flipped, same)) and 10 < sum(flipped) < 54


def test_calc_metrics_swd_end_to_end(tiny_gen, demo_data, tmp_path):
    records = metric_base.calc_metrics(tiny_gen, "swd1k", demo_data, batch_size=16, report_dir=str(tmp_path),
                                       progress=False, num_images=24, snapshot="network-snapshot-000010.keras")
    (rec,) = records
    assert set(rec) == {"results", "metric", "total_time", "snapshot", "timestamp"}
    assert set(rec["results"]) == {"swd1k_32", "swd1k_16", "swd1k_avg"}
    assert all(np.isfinite(v) and v > 0 for v in rec["results"].values())
    lines = (tmp_path / "metric-swd1k.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == rec
    # Same seed -> same numbers (latents, noise, positions and directions are seeded); appended, not overwritten.
    again = metric_base.calc_metrics(tiny_gen, ["swd1k"], demo_data, batch_size=16, report_dir=str(tmp_path),
                                     progress=False, num_images=24)
    assert again[0]["results"] == rec["results"]
    assert len((tmp_path / "metric-swd1k.jsonl").read_text().splitlines()) == 2
    assert metric_base.format_results(rec).startswith("network-snapshot-000010.keras")


class _PixelFeatures:
    """A stand-in feature extractor that claims to be keras.applications' network (no download in tests)."""
    mode = "keras-applications"
    cache_key = "pixels"

    def features(self, images, batch_size=50):
        return np.asarray(images, np.float64).reshape(len(images), -1)[:, :48]


def test_noncomparable_inception_is_named_in_every_key(tiny_gen, demo_data, tmp_path, cache_home):
    records = metric_base.calc_metrics(tiny_gen, "fid1k,swd1k", demo_data, progress=False, num_images=8,
                                       inception=_PixelFeatures(), report_dir=str(tmp_path))
    assert records[0]["metric"] == "fid1k_keras_noncomparable"
    assert list(records[0]["results"]) == ["fid1k_keras_noncomparable"]
    assert records[1]["metric"] == "swd1k" and "swd1k_avg" in records[1]["results"]
    assert (tmp_path / "metric-fid1k_keras_noncomparable.jsonl").is_file()


def test_calc_metrics_refuses_a_mismatched_dataset(tiny_gen, tmp_path):
    small = write_dataset(tmp_path / "small", _images(np.random.RandomState(11), 4, res=16))
    with pytest.raises(metric_base.MetricError, match="16x16x3.*32x32x3"):
        metric_base.calc_metrics(tiny_gen, "swd1k", small, progress=False, num_images=4)


def test_fid_and_kid_end_to_end_with_cache(tiny_gen, demo_data, fixtures_dir, cache_home):
    from test_inception import recipe_state_dict
    from stylegan_tf.metrics import inception
    net = inception.load_fid_inception(recipe_state_dict(fixtures_dir), mode="tf1")
    kw = dict(batch_size=8, progress=False, num_images=8, inception=net)
    first = metric_base.calc_metrics(tiny_gen, "fid1k,kid1k", demo_data, **kw)
    vals = {k: v for r in first for k, v in r["results"].items()}
    assert set(vals) == {"fid1k", "kid1k"} and all(np.isfinite(v) for v in vals.values())
    assert vals["fid1k"] > 0
    cached = sorted(os.listdir(cache_home))
    assert len(cached) == 2 and any("fid-stats" in c for c in cached) and any("kid-features" in c for c in cached)
    stamp = [os.stat(cache_home / c).st_mtime_ns for c in cached]
    second = metric_base.calc_metrics(tiny_gen, "fid1k,kid1k", demo_data, **kw)
    assert [r["results"] for r in second] == [pytest.approx(r["results"], rel=1e-4) for r in first]
    assert [os.stat(cache_home / c).st_mtime_ns for c in cached] == stamp  # read, not rewritten


def test_cli(tiny_gen, demo_data, tmp_path, capsys):
    from stylegan_tf.metrics.__main__ import main
    from stylegan_tf.network_io import save_network
    from stylegan_tf.networks import Networks
    path = tmp_path / "run" / "network-final.keras"
    path.parent.mkdir()
    save_network(Networks(tiny_gen.G, None, tiny_gen.G), str(path))
    rc = main(["--network", str(path), "--data", demo_data, "--metrics", "swd1k", "--num", "16", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "network-final.keras" in out and "swd1k_avg" in out
    rec = json.loads((path.parent / "metric-swd1k.jsonl").read_text())
    assert rec["metric"] == "swd1k" and rec["snapshot"] == "network-final.keras"
    assert main(["--network", str(path), "--data", demo_data, "--metrics", "fid50k,nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m stylegan_tf.metrics: error: unknown metric 'nope'") and "\n" not in err
    assert main(["--network", str(tmp_path / "missing.keras"), "--data", demo_data]) == 2
    assert "missing.keras" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# Nothing computed is lost; every refusal is one line


def _saved_tiny(tiny_gen, folder):
    from stylegan_tf.network_io import save_network
    from stylegan_tf.networks import Networks
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "network-final.keras")
    save_network(Networks(tiny_gen.G, None, tiny_gen.G), path)
    return path


def test_result_is_printed_and_kept_when_the_network_folder_is_read_only(tiny_gen, demo_data, tmp_path,
                                                                        cache_home, read_only, capsys):
    from stylegan_tf.metrics.__main__ import main
    net = _saved_tiny(tiny_gen, tmp_path / "run")
    read_only(tmp_path / "run")
    assert main(["--network", net, "--data", demo_data, "--metrics", "swd1k", "--num", "16", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "network-final.keras" in out and "swd1k_avg" in out
    fallback = os.path.join(metric_base.fallback_report_dir(), "metric-swd1k.jsonl")
    assert f"cannot write {tmp_path / 'run' / 'metric-swd1k.jsonl'}" in err and fallback in err
    assert len(err.strip().splitlines()) == 1
    rec = json.loads(open(fallback).read())
    assert rec["report_dir"] == str(tmp_path / "run") and f"{rec['results']['swd1k_avg']:.4f}" in out
    # Nowhere to write at all: the result is still printed, and the note says it was not saved.
    read_only(metric_base.fallback_report_dir())
    assert main(["--network", net, "--data", demo_data, "--metrics", "swd1k", "--num", "16", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "swd1k_avg" in out and "was not saved to a file" in err


def test_each_result_is_handed_over_before_the_next_metric_runs(tiny_gen, demo_data, tmp_path, monkeypatch):
    seen = []
    swd_class = type(metric_base.get_metric("swd1k"))
    real = swd_class.evaluate

    def evaluate(self, ctx):
        if self.name == "swd2k":
            assert [r["metric"] for r in seen] == ["swd1k"]  # the first result is out before the second starts
            raise metric_base.MetricError("the second metric failed")
        return real(self, ctx)

    monkeypatch.setattr(swd_class, "evaluate", evaluate)
    with pytest.raises(metric_base.MetricError, match="second metric failed"):
        metric_base.calc_metrics(tiny_gen, "swd1k,swd2k", demo_data, progress=False, num_images=16,
                                 report_dir=str(tmp_path), on_result=seen.append)
    assert json.loads((tmp_path / "metric-swd1k.jsonl").read_text())["metric"] == "swd1k"


def test_hostile_or_wrong_network_file_is_one_line(demo_data, tmp_path, capsys):
    from stylegan_tf.metrics.__main__ import main
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    evil = tmp_path / "network-snapshot.pkl"
    evil.write_bytes(pickle.dumps(Evil(), protocol=4))
    junk = tmp_path / "junk.keras"
    junk.write_bytes(os.urandom(2000))
    for path in (evil, junk):
        assert main(["--network", str(path), "--data", demo_data, "--metrics", "swd1k", "--num", "16"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"python -m stylegan_tf.metrics: error: --network: {path}") and err.count("\n") == 1, err
    assert not marker.exists()


def test_inception_file_of_random_bytes_is_one_line(tiny_gen, demo_data, tmp_path, capsys):
    from stylegan_tf.metrics import inception, torch_pth
    from stylegan_tf.metrics.__main__ import main
    net = _saved_tiny(tiny_gen, tmp_path / "run")
    rs = np.random.RandomState(3)
    legacy_head = pickle.dumps(torch_pth._LEGACY_MAGIC, protocol=2)[:-1]  # a real header, then garbage
    for i, data in enumerate([rs.bytes(5000), b"\x80\x02" + rs.bytes(5000), legacy_head + rs.bytes(5000)]):
        path = tmp_path / f"weights{i}.pth"
        path.write_bytes(data)
        with pytest.raises(ValueError, match=f"weights{i}.pth"):
            torch_pth.load_state_dict(path)
        with pytest.raises(inception.InceptionWeightsError, match=f"weights{i}.pth"):
            inception.load_fid_inception(str(path))
        assert main(["--network", net, "--data", demo_data, "--metrics", "fid1k", "--num", "8", "--inception",
                     str(path), "--report-dir", "none", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"python -m stylegan_tf.metrics: error: {path}") and err.count("\n") == 1, err


def test_offline_inception_message_names_the_cache_and_only_real_flags(tiny_gen, demo_data, tmp_path,
                                                                       monkeypatch, capsys):
    import urllib.error
    import urllib.request
    from stylegan_tf.metrics import inception
    from stylegan_tf.metrics.__main__ import main

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    monkeypatch.setenv("STYLEGAN_TF_CACHE", str(tmp_path / "my-cache"))
    # What train.py --metrics shows (it has no weights flag): the cache path, $STYLEGAN_TF_CACHE, the env var.
    with pytest.raises(inception.InceptionWeightsMissing) as e:
        metric_base.prepare_metrics("fid50k", progress=False)
    msg = str(e.value)
    assert str(tmp_path / "my-cache" / inception.PTH_NAME) in msg and "$STYLEGAN_TF_CACHE" in msg
    assert inception.ENV_VAR in msg and "--inception" not in msg and "\n" not in msg
    # The metrics CLI has the flag, and says so; it fails before computing anything.
    net = _saved_tiny(tiny_gen, tmp_path / "run")
    assert main(["--network", net, "--data", demo_data, "--metrics", "swd1k,fid1k", "--num", "8",
                 "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "--inception PATH" in err and str(tmp_path / "my-cache") in err and err.count("\n") == 1



def test_network_below_the_dataset_resolution_uses_the_matching_level(tiny_gen, demo_dataset, tmp_path, capsys):
    # The demo trains a 32x32 network on the 64x64 faces: the metrics read the 32x32 level the dataset stores,
    # and say so, instead of refusing the dataset it was trained on.
    from stylegan_tf.data import open_dataset
    big = demo_dataset(resolution=64, count=64)
    level32 = np.concatenate(list(open_dataset(big).iterate_uint8(resolution=32)))
    same = write_dataset(tmp_path / "level32", level32)
    kw = dict(progress=False, num_images=64, batch_size=16)
    got = metric_base.calc_metrics(tiny_gen, "swd1k", big, **kw)[0]["results"]
    want = metric_base.calc_metrics(tiny_gen, "swd1k", same, **kw)[0]["results"]
    assert got == pytest.approx(want, rel=1e-6)
    assert "the dataset's 32x32 level" in capsys.readouterr().err
