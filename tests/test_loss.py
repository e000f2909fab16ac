"""GAN losses against values computed by hand on tiny Keras discriminators."""
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
    sr = reals.reshape(3, -1) @ w + b
    sf = fakes.reshape(3, -1) @ w + b
    loss, stats = L.d_logistic_r1(d, tf.constant(reals), tf.constant(fakes), gamma=10.0)
    r1 = np.sum(w ** 2)
    np.testing.assert_allclose(stats["r1"], [r1] * 3, rtol=1e-5)
    np.testing.assert_allclose(loss, softplus(sf) + softplus(-sr) + 5.0 * r1, rtol=1e-5)
    # gamma=0 switches the penalty off; r1_scale multiplies it
    loss0, _ = L.d_logistic_r1(d, tf.constant(reals), tf.constant(fakes), gamma=0.0)
    np.testing.assert_allclose(loss0, softplus(sf) + softplus(-sr), rtol=1e-5)
    loss_s, _ = L.d_logistic_r1(d, tf.constant(reals), tf.constant(fakes), gamma=10.0, r1_scale=0.25)
    np.testing.assert_allclose(loss_s, softplus(sf) + softplus(-sr) + 1.25 * r1, rtol=1e-5)
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
    sr = reals.reshape(3, -1) @ w + b
    sf = fakes.reshape(3, -1) @ w + b
    loss, stats = L.d_wgan_gp(d, tf.constant(reals), tf.constant(fakes), seed=tf.constant([1, 2], tf.int64))
    gp = (np.linalg.norm(w) - 1.0) ** 2           # a linear D has the same gradient at every interpolate
    np.testing.assert_allclose(stats["gp"], [gp] * 3, rtol=1e-5)
    np.testing.assert_allclose(loss, sf - sr + 10.0 * gp + 0.001 * sr ** 2, rtol=1e-5)
    loss, _ = L.d_wgan(d, tf.constant(reals), tf.constant(fakes))
    np.testing.assert_allclose(loss, sf - sr + 0.001 * sr ** 2, rtol=1e-5)
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
    sr = reals.reshape(3, -1) @ w + b
    sf = fakes.reshape(3, -1) @ w + b
    loss, stats = L.d_wgan_div(d, tf.constant(reals), tf.constant(fakes))
    div = np.linalg.norm(w) ** 6                   # (|g_real|^6 + |g_fake|^6) / 2 with g = w
    np.testing.assert_allclose(loss, sf - sr + 2.0 * div, rtol=1e-4)


def test_hinge(data):
    reals, fakes, w, b = data
    d = linear_d(w * 10, b)
    sr = reals.reshape(3, -1) @ (w * 10) + b
    sf = fakes.reshape(3, -1) @ (w * 10) + b
    loss, _ = L.d_hinge(d, tf.constant(reals), tf.constant(fakes))
    np.testing.assert_allclose(loss, np.maximum(0, 1 + sf) + np.maximum(0, 1 - sr), rtol=1e-5)
    # the data must exercise the clipping, or this would not tell hinge from WGAN
    assert np.any(1 + sf < 0) or np.any(1 - sr < 0)


def test_losses_by_name():
    assert set(L.LOSSES) == {"logistic", "wgan-gp", "wgan", "wgan-div", "hinge"}
    assert L.get_loss("hinge") == (L.g_wgan, L.d_hinge)
    with pytest.raises(ValueError, match="unknown loss 'lsgan'"):
        L.get_loss("lsgan")
