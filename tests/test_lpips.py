"""LPIPS-VGG16 and VGG16 fc2 (metrics/lpips.py, metrics/vgg16.py) against the `lpips` package and torchvision
(tests/fixtures/lpips: computed by PyTorch with a random VGG16 trunk the tests rebuild from its seed), and the
weight files: lookup, verified download, one-line errors."""
import hashlib
import io
import os
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest

from stylegan_tf.metrics import lpips as lp
from stylegan_tf.metrics import vgg16

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "lpips")
HEADS = os.path.join(FIXTURES, "lpips-v0.1-vgg.pth")
sys.path.insert(0, FIXTURES)
from random_vgg16 import fc2_images, random_vgg16_state  # noqa: E402


@pytest.fixture(scope="module")
def expected():
    with np.load(os.path.join(FIXTURES, "expected.npz")) as f:
        return {k: f[k] for k in f.files}


def test_lpips_equals_the_lpips_package(expected):
    state = random_vgg16_state(0)
    state.update(vgg16.read_state([HEADS]))
    net = lp.LPIPS(state)
    assert net.calibrated
    for case in ("even", "odd"):       # 32x32 and 37x45 (odd sizes: the max pools floor, as torch's)
        a, b = expected[f"lpips_{case}_a"], expected[f"lpips_{case}_b"]
        want = expected[f"lpips_{case}_distance"]
        got = net.distances(a, b)
        # Pair 0: two unrelated images, to 1e-5 of the distance.
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
        # Pair 1: 1e-3 apart, the regime of perceptual path length. Its distance (5e-7) is made of differences
        # of unit-norm features 1e-3 apart: float32 round-off of the features (6e-8 of 1) is 6e-5 of each
        # difference in either implementation, about 1e-4 of the squared distance; 1e-3 leaves a margin of 10.
        np.testing.assert_allclose(got[1], want[1], rtol=1e-3)
        np.testing.assert_allclose(net.distances(a, a), 0.0, atol=1e-12)


@pytest.mark.slow   # 138M random weights built and run at 224x224: 20-40 s on a 2-core CPU
def test_vgg16_fc2_features_equal_torchvision(expected):
    net = vgg16.VGG16(random_vgg16_state(1, classifier=True), classifier=True)
    for case, images in fc2_images().items():    # 32x32 (area upsampling to 224) and 250x250 (area downsampling)
        want = expected[f"fc2_{case}_features"]
        got = net.fc2_features(images)
        assert got.shape == (2, 4096)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_heads_are_read_from_the_lpips_wheel_file():
    heads = vgg16.read_state([HEADS])
    assert sorted(heads) == [f"lin{s}.model.1.weight" for s in range(5)]
    assert [heads[f"lin{s}.model.1.weight"].size for s in range(5)] == [64, 128, 256, 512, 512]
    with open(HEADS, "rb") as f:
        data = f.read()
    spec = vgg16.FILES["lpips"]
    assert len(data) == spec["size"] and hashlib.sha256(data).hexdigest() == spec["sha256"]


def _offline(monkeypatch, tmp_path):
    def refuse(*_a, **_k):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(vgg16, "_lpips_package_file", lambda: None)
    monkeypatch.setenv("STYLEGAN_TF_CACHE", str(tmp_path / "cache"))
    for spec in vgg16.FILES.values():
        monkeypatch.delenv(spec["env"], raising=False)


def test_missing_weights_are_one_line_naming_the_cache_path_and_url(tmp_path, monkeypatch):
    _offline(monkeypatch, tmp_path)
    for kind, spec in vgg16.FILES.items():
        with pytest.raises(vgg16.WeightsMissing) as e:
            vgg16.weights_path(kind)
        msg = str(e.value)
        assert "\n" not in msg and spec["url"] in msg and str(tmp_path / "cache" / spec["name"]) in msg
        assert spec["env"] in msg and e.value.flag == spec["flag"]
    monkeypatch.setenv("STYLEGAN_TF_LPIPS", str(tmp_path / "gone.pth"))
    with pytest.raises(vgg16.WeightsError, match="STYLEGAN_TF_LPIPS.*gone.pth"):
        vgg16.weights_path("lpips")
    with pytest.raises(vgg16.WeightsError, match="--vgg16 .*nope.pth"):
        vgg16.weights_path("vgg16", str(tmp_path / "nope.pth"))


def test_a_download_is_kept_only_when_its_hash_is_right(tmp_path, monkeypatch):
    _offline(monkeypatch, tmp_path)
    with open(HEADS, "rb") as f:
        good = f.read()
    served = {}

    class Response(io.BytesIO):
        headers = {}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def urlopen(url, timeout=None):
        served["url"] = url
        return Response(served["body"])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    target = tmp_path / "cache" / vgg16.FILES["lpips"]["name"]
    served["body"] = good[:-1] + b"x"        # a damaged download
    with pytest.raises(vgg16.WeightsError, match="sha256"):
        vgg16.weights_path("lpips", progress=False)
    assert not target.exists() and not [p for p in os.listdir(target.parent) if "lpips" in p]
    served["body"] = good
    assert vgg16.weights_path("lpips", progress=False) == str(target)
    assert served["url"] == vgg16.FILES["lpips"]["url"] and target.read_bytes() == good
    served["body"] = b""                     # now found in the cache: no download
    served.pop("url")
    assert vgg16.weights_path("lpips") == str(target) and "url" not in served


def test_editing_uses_the_metrics_lpips():
    from stylegan_tf.editing.errors import EditError
    from stylegan_tf.editing.lpips import LPIPS
    assert issubclass(LPIPS, lp.LPIPS)
    with pytest.raises(EditError, match="features.0"):
        LPIPS.from_files(HEADS)
