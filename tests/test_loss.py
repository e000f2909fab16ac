"""GAN losses against values computed by hand on tiny Keras discriminators."""
import dataclasses
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from stylegan_tf.training import loss as L


def softplus(x):
    return np.log1p(np.exp(x))


def linear_d(w, b):
    """D(x) = <w, x> + b as a Keras layer: dD/dx = w for every x."""
    layer = keras.layers.Dense(1)
    layer.build((None, w.size))
    layer.set_weights([w.reshape(-1, 1), np.array([b], np.float32)])
    return lambda x: layer(tf.reshape(x, [tf.shape(x)[0], -1]))


def assert_sum_close(got, terms, rtol=1e-5, magnitude=None):
    """`got` == the sum of `terms` to `rtol` of the terms' magnitude (`magnitude`, default the sum of their
    absolute values), per sample.

    float32 rounds each term to ~6e-8 of its own size; where the terms cancel, that error stays while the sum
    shrinks, so a tolerance relative to the sum fails on a CPU whose kernels round differently (AMD Zen against
    Intel: the numpy references below differ by one ulp of the terms). The reference is taken in float64."""
    terms = [np.asarray(t, np.float64) for t in terms]
    err = np.abs(np.asarray(got, np.float64) - sum(terms))
    scale = sum(np.abs(t) for t in terms) if magnitude is None else magnitude
    assert np.all(err <= rtol * scale), f"off by {err} (terms' magnitude {scale}, rtol {rtol})"


def scores(x, w, b):
    """The scores of the linear D `linear_d(w, b)`, in float64."""
    return x.reshape(len(x), -1).astype(np.float64) @ w.astype(np.float64) + b


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    reals = rng.randn(3, 4, 4, 2).astype(np.float32)
    fakes = rng.randn(3, 4, 4, 2).astype(np.float32)
    w = (rng.randn(32) * 0.3).astype(np.float32)
    return reals, fakes, w, 0.25


def test_logistic_with_r1(data):
    reals, fakes, w, b = data
    d = linear_d(w, b)
    sr, sf = scores(reals, w, b), scores(fakes, w, b)
    loss, stats = L.d_logistic_r1(d, tf.constant(reals), tf.constant(fakes), gamma=10.0)
    r1 = np.sum(w.astype(np.float64) ** 2)
    np.testing.assert_allclose(stats["r1"], [r1] * 3, rtol=1e-5)
    assert_sum_close(loss, [softplus(sf), softplus(-sr), [5.0 * r1] * 3])
    # gamma=0 switches the penalty off; r1_scale multiplies it
    loss0, _ = L.d_logistic_r1(d, tf.constant(reals), tf.constant(fakes), gamma=0.0)
    assert_sum_close(loss0, [softplus(sf), softplus(-sr)])
    loss_s, _ = L.d_logistic_r1(d, tf.constant(reals), tf.constant(fakes), gamma=10.0, r1_scale=0.25)
    assert_sum_close(loss_s, [softplus(sf), softplus(-sr), [1.25 * r1] * 3])
    np.testing.assert_allclose(L.g_logistic_nonsaturating(tf.constant(sf[:, None])), softplus(-sf), rtol=1e-5)


def test_r1_on_a_nonlinear_d():
    # D(x) = c * sum(x^2): dD/dx = 2 c x, so R1 = 4 c^2 sum(x^2) per sample.
    c = 0.3
    x = np.random.RandomState(1).randn(2, 4, 4, 3).astype(np.float32)
    _, stats = L.d_logistic_r1(lambda v: c * tf.reduce_sum(v * v, axis=[1, 2, 3])[:, None],
                               tf.constant(x), tf.constant(x), gamma=10.0)
    np.testing.assert_allclose(stats["r1"], 4 * c * c * np.sum(x ** 2, axis=(1, 2, 3)), rtol=1e-5)


def test_r1_of_native_reals_times_scale_equals_official_full_size_penalty():
    # The original takes R1 on nearest-upscaled reals through a D that box-downscales them back; a D that sees
    # native reals must scale its R1 by 1/4**level to match (docs/training.md).
    rng = np.random.RandomState(2)
    level = 2
    x = rng.randn(2, 4, 4, 3).astype(np.float32)
    k = tf.constant(rng.randn(3, 3, 3, 1).astype(np.float32))

    def d_native(v):
        return tf.reduce_sum(tf.tanh(tf.nn.conv2d(v, k, 1, "SAME")), axis=[1, 2, 3])[:, None]

    def d_full(v):
        return d_native(tf.nn.avg_pool2d(v, 2 ** level, 2 ** level, "VALID"))

    up = np.repeat(np.repeat(x, 4, axis=1), 4, axis=2)
    _, full = L.d_logistic_r1(d_full, tf.constant(up), tf.constant(up), gamma=10.0)
    _, native = L.d_logistic_r1(d_native, tf.constant(x), tf.constant(x), gamma=10.0)
    np.testing.assert_allclose(full["r1"], native["r1"] / 4 ** level, rtol=1e-4)


def test_wgan_gp_and_wgan(data):
    reals, fakes, w, b = data
    d = linear_d(w, b)
    sr, sf = scores(reals, w, b), scores(fakes, w, b)
    loss, stats = L.d_wgan_gp(d, tf.constant(reals), tf.constant(fakes), seed=tf.constant([1, 2], tf.int64))
    gp = (np.linalg.norm(w.astype(np.float64)) - 1.0) ** 2   # a linear D has the same gradient at every interpolate
    np.testing.assert_allclose(stats["gp"], [gp] * 3, rtol=1e-5)
    # Sample 1 cancels to 0.0965 from terms of ~2: its float32 result is one ulp of the terms off on some CPUs.
    assert_sum_close(loss, [sf, -sr, [10.0 * gp] * 3, 0.001 * sr ** 2])
    loss, _ = L.d_wgan(d, tf.constant(reals), tf.constant(fakes))
    assert_sum_close(loss, [sf, -sr, 0.001 * sr ** 2])
    np.testing.assert_allclose(L.g_wgan(tf.constant(sf[:, None])), -sf, rtol=1e-6)


def test_wgan_gp_penalty_at_interpolates():
    # D(x) = 0.5 * sum(x^2): grad = x, so the penalty depends on where between real and fake we look.
    reals = np.full((2, 2, 2, 1), 2.0, np.float32)
    fakes = np.zeros((2, 2, 2, 1), np.float32)
    _, stats = L.d_wgan_gp(lambda v: 0.5 * tf.reduce_sum(v * v, axis=[1, 2, 3])[:, None],
                           tf.constant(reals), tf.constant(fakes), seed=tf.constant([3, 4], tf.int64))
    t = tf.random.stateless_uniform([2, 1, 1, 1], seed=tf.constant([3, 4], tf.int64)).numpy().reshape(-1)
    norm = (2.0 * (1 - t)) * 2.0                   # |x| = 2(1-t) at 4 pixels -> ||x|| = 2 * 2(1-t)
    np.testing.assert_allclose(stats["gp"], (norm - 1.0) ** 2, rtol=1e-5)


def test_wgan_div(data):
    reals, fakes, w, b = data
    d = linear_d(w, b)
    sr, sf = scores(reals, w, b), scores(fakes, w, b)
    loss, stats = L.d_wgan_div(d, tf.constant(reals), tf.constant(fakes))
    div = np.linalg.norm(w.astype(np.float64)) ** 6   # (|g_real|^6 + |g_fake|^6) / 2 with g = w
    assert_sum_close(loss, [sf, -sr, [2.0 * div] * 3], rtol=1e-4)


def test_hinge(data):
    reals, fakes, w, b = data
    d = linear_d(w * 10, b)
    sr, sf = scores(reals, w * 10, b), scores(fakes, w * 10, b)
    loss, _ = L.d_hinge(d, tf.constant(reals), tf.constant(fakes))
    # 1 + sf and 1 - sr may cancel: the terms' magnitude is that of the scores.
    assert_sum_close(loss, [np.maximum(0, 1 + sf), np.maximum(0, 1 - sr)], magnitude=2 + np.abs(sf) + np.abs(sr))
    # the data must exercise the clipping, or this would not tell hinge from WGAN
    assert np.any(1 + sf < 0) or np.any(1 - sr < 0)


def test_ra_hinge_by_hand():
    # The scores themselves go in (D = identity): real [1, -0.5, 2], fake [0.5, -1, 0];
    # mean fake = -1/6, mean real = 5/6.
    ident = lambda x: x  # noqa: E731
    real = tf.constant([[1.0], [-0.5], [2.0]])
    fake = tf.constant([[0.5], [-1.0], [0.0]])
    loss, stats = L.d_ra_hinge(ident, real, fake)
    # D: max(0, 1 - (r - mean f)) + max(0, 1 + (f - mean r))
    #   0: max(0, -1/6) + max(0, 2/3) = 2/3;  1: 4/3 + max(0, -5/6) = 4/3;  2: max(0, -7/6) + 1/6 = 1/6
    np.testing.assert_allclose(loss, [2 / 3, 4 / 3, 1 / 6], rtol=1e-6)
    np.testing.assert_allclose(np.mean(loss), 13 / 18, rtol=1e-6)
    np.testing.assert_allclose(stats["real_score"], [1.0, -0.5, 2.0])
    # G: max(0, 1 + (r - mean f)) + max(0, 1 - (f - mean r))
    #   0: 13/6 + 4/3 = 3.5;  1: 2/3 + 17/6 = 3.5;  2: 19/6 + 11/6 = 5
    np.testing.assert_allclose(L.g_ra_hinge(fake, real), [3.5, 3.5, 5.0], rtol=1e-6)
    entry = L.get_loss("ra-hinge")
    assert (entry.g, entry.d) == (L.g_ra_hinge, L.d_ra_hinge)
    assert entry.g_needs_real_scores and not L.get_loss("hinge").g_needs_real_scores


def _pyramid(rng, n=3, channels=2):
    return [tf.constant(rng.randn(n, r, r, channels).astype(np.float32)) for r in (4, 8)]


def test_penalties_on_a_pyramid_sum_over_levels():
    # MSG-GAN's D takes a list of levels: D(x4, x8) = <w4, x4> + <w8, x8> (+ b) has the input gradient (w4, w8)
    # everywhere, so R1 = |w4|^2 + |w8|^2 and the WGAN-GP norm is sqrt of that: the sum over levels.
    rng = np.random.RandomState(3)
    w4, w8 = (rng.randn(r * r * 2).astype(np.float32) * 0.1 for r in (4, 8))

    def d(levels):
        x4, x8 = (tf.reshape(x, [tf.shape(x)[0], -1]) for x in levels)
        return (tf.linalg.matvec(x4, w4) + tf.linalg.matvec(x8, w8) + 0.5)[:, None]

    reals, fakes = _pyramid(rng), _pyramid(rng)
    loss, stats = L.d_logistic_r1(d, reals, fakes, gamma=10.0)
    r1 = np.sum(w4 ** 2) + np.sum(w8 ** 2)
    np.testing.assert_allclose(stats["r1"], [r1] * 3, rtol=1e-5)
    sr = reals[0].numpy().reshape(3, -1) @ w4 + reals[1].numpy().reshape(3, -1) @ w8 + 0.5
    sf = fakes[0].numpy().reshape(3, -1) @ w4 + fakes[1].numpy().reshape(3, -1) @ w8 + 0.5
    np.testing.assert_allclose(loss, softplus(sf) + softplus(-sr) + 5.0 * r1, rtol=1e-5)
    _, stats = L.d_wgan_gp(d, reals, fakes, seed=tf.constant([1, 2], tf.int64))
    np.testing.assert_allclose(stats["gp"], [(np.sqrt(r1) - 1.0) ** 2] * 3, rtol=1e-5)
    _, stats = L.d_wgan_div(d, reals, fakes)
    np.testing.assert_allclose(stats["div"], [r1 ** 3] * 3, rtol=1e-4)


def test_wgan_gp_interpolates_every_level_at_the_same_point():
    # Reals all 0 and fakes all 1 at both levels: the interpolate's value is the sample's factor t, which must be
    # the same at every level (one point between the two pyramids) and differ between samples.
    zeros = [tf.zeros([4, r, r, 1]) for r in (4, 8)]
    ones = [tf.ones([4, r, r, 1]) for r in (4, 8)]
    mixed = L._interpolate_levels(zeros, ones, tf.constant([5, 6], tf.int64))
    t4, t8 = (m.numpy().reshape(4, -1) for m in mixed)
    assert np.all(t4 == t4[:, :1]) and np.all(t8 == t8[:, :1])
    np.testing.assert_array_equal(t4[:, 0], t8[:, 0])
    assert len(set(t4[:, 0].tolist())) == 4 and np.all((t4 >= 0) & (t4 <= 1))


def test_losses_by_name():
    assert L.loss_names() == ["logistic", "wgan-gp", "wgan", "wgan-div", "hinge", "ra-hinge"] == list(L.LOSSES)
    entry = L.get_loss("hinge")
    assert (entry.g, entry.d, entry.stats) == (L.g_wgan, L.d_hinge, ())
    with pytest.raises(ValueError, match="unknown loss 'lsgan'"):
        L.get_loss("lsgan")


def test_registry_entries_declare_what_the_iteration_asks():
    # The statistics each D loss reports besides the scores are the ones its entry declares (the trackers).
    rng = np.random.RandomState(4)
    reals, fakes = (tf.constant(rng.randn(2, 4, 4, 1).astype(np.float32)) for _ in range(2))
    d = linear_d(rng.randn(16).astype(np.float32) * 0.3, 0.1)
    for name in L.loss_names():
        entry = L.get_loss(name)
        _, stats = entry.d(d, reals, fakes, gamma=10.0, seed=tf.constant([1, 2], tf.int64))
        assert set(stats) == {"real_score", "fake_score", *entry.stats}, name
        assert entry.description and "\n" not in entry.description
    assert [n for n in L.loss_names() if L.get_loss(n).lazy_r1] == ["logistic"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        L.get_loss("logistic").stats = ()


def test_register_loss_refuses_a_taken_name_or_a_common_statistic():
    with pytest.raises(ValueError, match="'hinge' is already registered"):
        L.register_loss("hinge", L.g_wgan, L.d_hinge)
    with pytest.raises(ValueError, match="real_score"):
        L.register_loss("mine", L.g_wgan, L.d_hinge, stats=("real_score",))
    assert "mine" not in L.LOSSES
