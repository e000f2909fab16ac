"""Lazy R1 (`--r1-interval K`, StyleGAN2's lazy regularisation): the penalty on every K-th step with gamma * K.

A lazy step that is due must be the official step with gamma * K, and one that is not due the step without R1:
checked on the whole iteration (losses, D and G gradients, updated weights) against models trained the plain way.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from conftest import TINY_NET

from stylegan_tf.networks import Discriminator, Generator
from stylegan_tf.training import StyleGAN
from stylegan_tf.training import loss as L
from stylegan_tf.training.options import TrainingOptions, loss_settings, validate

NET = dict(resolution=8, num_channels=3, **TINY_NET)
LATENT = TINY_NET["latent_size"]


def _model(loss_kwargs):
    keras.utils.set_random_seed(3)
    G = Generator(**NET, style_mixing_prob=None)
    D = Discriminator(resolution=8, num_channels=3, fmap_base=TINY_NET["fmap_base"], fmap_max=TINY_NET["fmap_max"])
    model = StyleGAN(G, D, Generator(**NET, style_mixing_prob=None))
    z = np.zeros([1, LATENT], np.float32)
    G(z), model.Gs(z), D(np.zeros([1, 8, 8, 3], np.float32))
    model.ema_update_now(0.0)
    adam = lambda: keras.optimizers.Adam(1e-3, beta_1=0.0, beta_2=0.99, epsilon=1e-8)  # noqa: E731
    model.compile(g_optimizer=adam(), d_optimizer=adam(), loss="logistic", loss_kwargs=loss_kwargs)
    model.configure_phase(level=0, global_batch=4)
    return model


def _step(model, step):
    rng = np.random.default_rng(step)
    return model.deterministic_step(rng.uniform(-1, 1, (4, 8, 8, 3)), None, rng.normal(size=(4, LATENT)),
                                    rng.normal(size=(4, LATENT)), step=step)


def _same(a, b):
    for key in ("D_loss", "G_loss", "r1", "real_score", "fake_score"):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)
    for key in ("D_grads", "G_grads"):
        for x, y in zip(a[key], b[key]):
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6, err_msg=key)


def test_due_step_is_the_official_step_with_gamma_times_k_and_other_steps_skip_r1():
    lazy = _model({"gamma": 10.0, "r1_interval": 3})
    due, plain = _model({"gamma": 30.0}), _model({"gamma": 0.0})
    # Steps 3 (due: 3 % 3 == 0) then 4 (not due), each model continuing from its own previous step.
    a, b = _step(lazy, 3), _step(due, 3)
    _same(a, b)
    assert np.all(a["r1"] > 0)
    # After the due step the lazy and the gamma*K models hold the same weights; the not-due step must then be
    # the penalty-free step from those weights: give the gamma-0 model the same weights first.
    for src, dst in ((due.G, plain.G), (due.D, plain.D), (due.Gs, plain.Gs)):
        dst.set_weights(src.get_weights())
    for src, dst in ((due.g_optimizer, plain.g_optimizer), (due.d_optimizer, plain.d_optimizer)):
        for s, d in zip(src.variables, dst.variables):
            d.assign(s)
    a, b = _step(lazy, 4), _step(plain, 4)
    _same(a, b)
    np.testing.assert_array_equal(a["r1"], 0.0)
    for x, y in zip(lazy.D.get_weights(), plain.D.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_lazy_kwargs():
    assert L.lazy_r1_kwargs({"gamma": 10.0}, True) == {"gamma": 10.0}
    assert L.lazy_r1_kwargs({"gamma": 10.0, "r1_interval": 1}, False) == {"gamma": 10.0}
    assert L.lazy_r1_kwargs({"gamma": 10.0, "r1_interval": 4}, True) == {"gamma": 40.0}
    assert L.lazy_r1_kwargs({"gamma": 10.0, "r1_interval": 4}, False) == {"gamma": 0.0}


def test_option_default_is_the_official_loss_and_bad_values_are_one_line_errors():
    assert loss_settings(TrainingOptions()) == ("logistic", {"gamma": 10.0})
    assert loss_settings(TrainingOptions(r1_interval=4, gamma=5.0)) == ("logistic", {"gamma": 5.0, "r1_interval": 4})
    assert any("--r1-interval 0" in e for e in validate(TrainingOptions(r1_interval=0)))
    assert any("--r1-interval applies" in e for e in validate(TrainingOptions(r1_interval=2, loss="hinge")))
    assert not [e for e in validate(TrainingOptions(r1_interval=16)) if "r1" in e]


def test_fit_reports_r1_of_the_due_steps_only():
    import tensorflow as tf
    model = _model({"gamma": 10.0, "r1_interval": 2})
    x = np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 3)).astype(np.float32)
    ds = tf.data.Dataset.range(2).map(lambda s: (tf.constant(x), tf.zeros([4, 0]), tf.fill([4], s)))
    seen = []
    log = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(float(logs["r1"])))
    model.fit(ds, epochs=1, steps_per_epoch=2, verbose=0, callbacks=[log])
    # Step 0 takes the penalty, step 1 does not: the running mean stays step 0's (unweighted it would halve).
    assert seen[0] > 0
    np.testing.assert_allclose(seen[1], seen[0], rtol=1e-6)
