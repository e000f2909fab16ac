"""GAN losses of the official code (`training/loss.py`) plus WGAN-div, selectable by name.

Every D loss takes `d_fn(images) -> scores [N, 1]` (a closure over D, labels and level, so tests can pass a
tiny Keras model) and returns `(per_sample_loss [N], stats)`; every G loss takes the fake scores. Losses are
per sample; the caller averages them (over the global batch under a distribution strategy).
"""
import tensorflow as tf


def _scores(x):
    # Scores are reduced in float32 even under mixed precision, as the original's `fp32()`.
    return tf.reshape(tf.cast(x, tf.float32), [-1])


def _input_gradients(d_fn, images, grad_scale=1.0):
    """d(sum D(images))/d(images) and the scores; `grad_scale` is the fp16 loss scale (undone on return)."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        scores = _scores(d_fn(images))
        total = tf.reduce_sum(scores) * grad_scale
    grads = tf.cast(tape.gradient(total, images), tf.float32) / grad_scale
    return grads, scores


def _sum_sq(g):
    return tf.reduce_sum(tf.square(g), axis=list(range(1, len(g.shape))))


# ------------------------------------------------------------------ logistic (StyleGAN default)
def g_logistic_nonsaturating(fake_scores):
    return tf.nn.softplus(-_scores(fake_scores))


def d_logistic_r1(d_fn, reals, fakes, gamma=10.0, r1_scale=1.0, grad_scale=1.0, seed=None, **_):
    """softplus(D(fake)) + softplus(-D(real)) + gamma/2 * r1_scale * ||dD(real)/dreal||^2.

    `r1_scale` is 1/4**level when D sees native low-resolution reals: the official penalty is taken w.r.t.
    the nearest-upscaled full-size reals, whose gradient is the native one spread over 4**level pixels
    divided by 4**level each, so its squared norm is the native one / 4**level (docs/training.md).

    The original adds the [N] penalty to the [N, 1] softplus terms, which broadcasts to an [N, N] matrix; its
    mean (what is minimised) equals the mean of this [N] loss, whose sample i is the matrix's entry (i, i)."""
    fake_scores = _scores(d_fn(fakes))
    if gamma:
        grads, real_scores = _input_gradients(d_fn, reals, grad_scale)
        r1 = _sum_sq(grads)
    else:
        real_scores = _scores(d_fn(reals))
        r1 = tf.zeros_like(real_scores)
    loss = tf.nn.softplus(fake_scores) + tf.nn.softplus(-real_scores) + r1 * (0.5 * gamma * r1_scale)
    return loss, {"real_score": real_scores, "fake_score": fake_scores, "r1": r1}


# ------------------------------------------------------------------ WGAN family (ProGAN / CelebA-HQ)
def g_wgan(fake_scores):
    return -_scores(fake_scores)


def d_wgan(d_fn, reals, fakes, wgan_epsilon=0.001, seed=None, **_):
    """Official `D_wgan`: D(fake) - D(real) + epsilon * D(real)^2 (the drift term keeps scores near 0)."""
    real_scores = _scores(d_fn(reals))
    fake_scores = _scores(d_fn(fakes))
    loss = fake_scores - real_scores + wgan_epsilon * tf.square(real_scores)
    return loss, {"real_score": real_scores, "fake_score": fake_scores}


def _interpolate(reals, fakes, seed):
    n = tf.shape(reals)[0]
    shape = tf.stack([n, 1, 1, 1])
    if seed is None:
        t = tf.random.uniform(shape, 0.0, 1.0)
    else:
        t = tf.random.stateless_uniform(shape, seed=seed, minval=0.0, maxval=1.0)
    t = tf.cast(t, fakes.dtype)
    return tf.cast(reals, fakes.dtype) + (fakes - tf.cast(reals, fakes.dtype)) * t


def d_wgan_gp(d_fn, reals, fakes, wgan_lambda=10.0, wgan_epsilon=0.001, wgan_target=1.0, grad_scale=1.0,
              seed=None, **_):
    """Official `D_wgan_gp`: WGAN + lambda/target^2 * (||grad at random interpolates|| - target)^2 + drift."""
    real_scores = _scores(d_fn(reals))
    fake_scores = _scores(d_fn(fakes))
    mixed = _interpolate(reals, fakes, seed)
    grads, _ = _input_gradients(d_fn, mixed, grad_scale)
    norms = tf.sqrt(_sum_sq(grads))
    gp = tf.square(norms - wgan_target)
    loss = (fake_scores - real_scores + gp * (wgan_lambda / wgan_target ** 2)
            + wgan_epsilon * tf.square(real_scores))
    return loss, {"real_score": real_scores, "fake_score": fake_scores, "gp": gp}


def d_wgan_div(d_fn, reals, fakes, div_k=2.0, div_p=6.0, grad_scale=1.0, seed=None, **_):
    """WGAN-div (Wu et al. 2018): D(fake) - D(real) + k/2 * (||dD(real)||^p + ||dD(fake)||^p), k=2, p=6."""
    real_grads, real_scores = _input_gradients(d_fn, reals, grad_scale)
    fake_grads, fake_scores = _input_gradients(d_fn, fakes, grad_scale)
    # ||g||^p = (sum g^2)^(p/2)
    div = 0.5 * (tf.pow(_sum_sq(real_grads), div_p / 2) + tf.pow(_sum_sq(fake_grads), div_p / 2))
    loss = fake_scores - real_scores + div_k * div
    return loss, {"real_score": real_scores, "fake_score": fake_scores, "div": div}


# ------------------------------------------------------------------ hinge
def d_hinge(d_fn, reals, fakes, seed=None, **_):
    """Official `D_hinge`: max(0, 1 + D(fake)) + max(0, 1 - D(real)); G uses the WGAN loss."""
    real_scores = _scores(d_fn(reals))
    fake_scores = _scores(d_fn(fakes))
    loss = tf.nn.relu(1.0 + fake_scores) + tf.nn.relu(1.0 - real_scores)
    return loss, {"real_score": real_scores, "fake_score": fake_scores}


# name -> (G loss, D loss); every D loss ignores the options it does not use (e.g. gamma for hinge)
LOSSES = {
    "logistic": (g_logistic_nonsaturating, d_logistic_r1),
    "wgan-gp": (g_wgan, d_wgan_gp),
    "wgan": (g_wgan, d_wgan),
    "wgan-div": (g_wgan, d_wgan_div),
    "hinge": (g_wgan, d_hinge),
}


def get_loss(name):
    """(g_loss_fn, d_loss_fn) for a loss name; ValueError naming the choices otherwise."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}: choose one of {', '.join(LOSSES)}") from None
