"""benchmarks/demo_check.py: its SWD is the metrics module's, and its calibrations degrade what they say."""
import importlib.util
import pathlib

import numpy as np
import pytest

from stylegan_tf.metrics import sliced_wasserstein as sw

REPO = pathlib.Path(__file__).resolve().parents[1]


def _demo_check():
    spec = importlib.util.spec_from_file_location("demo_check", REPO / "benchmarks" / "demo_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _faces(n, seed):
    """Flat backgrounds with a dark-outlined square: a crude stand-in for the demo faces, 32x32 uint8."""
    rng = np.random.RandomState(seed)
    x = np.repeat(rng.randint(120, 250, (n, 1, 1, 3)), 32, axis=1).repeat(32, axis=2)
    for i in range(n):
        a, b = rng.randint(4, 12, 2)
        x[i, a:a + 16, b:b + 16] = 0
        x[i, a + 1:a + 15, b + 1:b + 15] = rng.randint(60, 255, 3)
    return x.astype(np.uint8)


def test_scorer_equals_the_metrics_swd():
    # The scorer caches the reals' sorted projections; it must keep drawing the directions exactly as
    # swd_from_descriptors does, or its numbers stop being the metric's.
    dc = _demo_check()
    reals, other = _faces(64, 0), _faces(64, 1)
    noisy = np.clip(other + np.random.RandomState(2).randint(-30, 30, other.shape), 0, 255).astype(np.uint8)
    score = dc.Scorer(reals, seed=123)
    for images in (other, noisy, dc.box_down_up(other)):
        assert score(images) == sw.swd(reals, images, seed=123)


def test_calibrations_blur_and_rank_as_expected():
    dc = _demo_check()
    reals, other = _faces(64, 0), _faces(64, 1)
    down_up, box = dc.box_down_up(other), dc.box2x2(other)
    # down+up: every 2x2 block holds its mean; stride-1 box: each pixel the mean of itself and 3 neighbours.
    assert (down_up[:, ::2, ::2] == down_up[:, 1::2, 1::2]).all()
    assert not (other[:, ::2, ::2] == other[:, 1::2, 1::2]).all()
    mean = other[0, 5:7, 5:7].astype(np.float32).mean(axis=(0, 1))
    assert (np.abs(box[0, 5, 5].astype(int) - np.floor(mean + 0.5)) <= 1).all()
    score = dc.Scorer(reals, seed=123)
    floor = score(other)["avg"]
    assert floor < score(down_up)["avg"] and floor < score(box)["avg"]


def test_scorer_on_device_gives_the_same_numbers():
    # demo_sweep projects and sorts with jax.numpy on a GPU; float32 either way, so only rounding may differ.
    pytest.importorskip("jax")
    dc = _demo_check()
    reals, other = _faces(64, 0), _faces(64, 1)
    host, device = dc.Scorer(reals, seed=123), dc.Scorer(reals, seed=123, on_device=True)
    for images in (other, dc.box_down_up(other)):
        a, b = host(images), device(images)
        assert set(a) == set(b)
        for k in a:
            assert abs(a[k] - b[k]) <= 1e-4 * abs(a[k])
