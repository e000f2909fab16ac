"""Precision/recall (metrics/precision_recall.py) and the Inception Score (metrics/inception_score.py) against
stylegan2-ada-pytorch's own code run on fixed arrays (tests/fixtures/metrics), and through calc_metrics."""
import os
import sys
import types

import numpy as np
import pytest

from stylegan_tf.metrics import inception_score as is_
from stylegan_tf.metrics import metric_base
from stylegan_tf.metrics import precision_recall as pr

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "metrics")
sys.path.insert(0, FIXTURES)
from make_fixture import SPLITS, logits  # noqa: E402  (numpy only; torch is imported by its main())


@pytest.fixture(scope="module")
def expected():
    with np.load(os.path.join(FIXTURES, "pr_is_expected.npz")) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize("case", ["k3", "k5"])
def test_precision_recall_equal_stylegan2_ada(expected, case):
    real, fake, k = expected[f"pr_{case}_real"], expected[f"pr_{case}_fake"], int(expected[f"pr_{case}_k"])
    want = expected[f"pr_{case}_expected"]
    np.testing.assert_allclose(pr.precision_recall(real, fake, k), want, rtol=0, atol=1e-6)
    # Blocks of a few rows (what keeps 50k x 50k out of memory) change nothing.
    np.testing.assert_allclose(pr.precision_recall(real, fake, k, block_elements=997), want, rtol=0, atol=1e-6)


def test_kth_neighbour_radius_leaves_the_point_itself_out():
    x = np.array([[0.0], [1.0], [3.0], [6.0]])
    np.testing.assert_array_equal(pr.kth_neighbour_radii(x, 1), [1, 1, 2, 3])
    np.testing.assert_array_equal(pr.kth_neighbour_radii(x, 2), [3, 2, 3, 5])
    # On a radius is inside (<=), beyond it is not.
    assert pr.coverage(x, pr.kth_neighbour_radii(x, 1), np.array([[7.0], [9.0], [9.5]])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="more than 3"):
        pr.kth_neighbour_radii(x[:3], 3)


def test_inception_score_equals_stylegan2_ada(expected):
    got = is_.inception_score(is_.class_probabilities(logits()), SPLITS)
    np.testing.assert_allclose(got, expected["is_expected"], rtol=1e-6)
    # One class for every image: IS 1; a uniform spread over C classes, one per image: IS C.
    assert is_.inception_score(np.tile(np.eye(5)[:1], (20, 1)) * 0.999 + 0.0002, 2)[0] == pytest.approx(1.0)
    assert is_.inception_score(np.tile(np.eye(10), (2, 1)) * (1 - 1e-9) + 1e-10, 2)[0] == pytest.approx(10, rel=1e-6)
    # Probabilities that underflow to 0 (logits far apart) count 0 log 0 = 0: the limit, not NaN.
    assert is_.inception_score(is_.class_probabilities(np.tile(np.eye(10), (2, 1)) * 1e4), 2) == pytest.approx((10, 0))


class FakeDetector:
    """Deterministic features of uint8 images (a projection of their pixels) standing in for VGG16 and
    FID-Inception, so that the metrics' plumbing (reals, fakes, counts, keys, cache) is checked in a second."""

    cache_key = "fake-detector"

    def __init__(self, dim):
        self.projection = np.random.RandomState(dim).randn(32 * 32 * 3, dim).astype(np.float32) / 300
        self.model = types.SimpleNamespace(get_layer=lambda name: types.SimpleNamespace(
            kernel=np.random.RandomState(1).randn(dim, 30).astype(np.float32)))
        self.mode = "tf1"

    def features(self, images, batch_size=50):
        return np.asarray(images, np.float32).reshape(len(images), -1) @ self.projection

    fc2_features = features


def test_metrics_through_calc_metrics(tiny_generator, demo_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_TF_CACHE", str(tmp_path / "cache"))
    data = demo_dataset(resolution=32, count=16)
    gen = types.SimpleNamespace(G=tiny_generator, D=None, Gs=tiny_generator)
    vgg, inc = FakeDetector(8), FakeDetector(16)
    records = metric_base.calc_metrics(gen, "pr10k3,is10k", data, num_images=40, batch_size=16, vgg16=vgg,
                                       inception=inc, progress=False, report_dir=str(tmp_path))
    ctx = metric_base.MetricContext(tiny_generator, data, batch_size=16, progress=False)
    reals = np.concatenate(list(ctx.iterate_reals(40)))
    fake_batches = list(ctx.iterate_fakes(40))
    fakes = np.concatenate(fake_batches)
    precision, recall = pr.precision_recall(vgg.features(reals), vgg.features(fakes), 3)
    assert records[0]["results"] == pytest.approx({"pr10k3_precision": precision, "pr10k3_recall": recall})
    kernel = inc.model.get_layer("fc").kernel.astype(np.float64)       # logits without the output bias
    # Per batch of 16 as the metric extracts them: BLAS rounds a float32 matmul differently for other row
    # counts, and on some CPUs the split's std then moved by 2.5e-5 relative.
    features = np.concatenate([inc.features(b) for b in fake_batches])
    mean, std = is_.inception_score(is_.class_probabilities(features @ kernel))
    assert records[1]["results"] == pytest.approx({"is10k_mean": mean, "is10k_std": std}, rel=1e-9)
    assert all(np.isfinite(v) for r in records for v in r["results"].values())
    assert sorted(os.listdir(tmp_path)) == ["cache", "metric-is10k.jsonl", "metric-pr10k3.jsonl"]
    # The reals' VGG16 features are cached under the detector's key (FID-Inception is never loaded for it).
    assert [n for n in os.listdir(tmp_path / "cache" / "metrics") if "pr-vgg16-features" in n]
