"""GAN losses of the official code (`training/loss.py`) plus WGAN-div, selectable by name.

Every D loss takes `d_fn(images) -> scores [N, 1]` (a closure over D, labels and level, so tests can pass a
tiny Keras model) and returns `(per_sample_loss [N], stats)`, `stats` holding at least `real_score` and
`fake_score` [N]; every G loss takes the fake scores. Losses are per sample; the caller averages them (over the
global batch under a distribution strategy).

The registry: `LOSSES` maps a name to a `Loss` entry, which says all that the training iteration, the progress
logs and train.py's `--loss` help ask of a loss. `get_loss(name)` returns an entry, `loss_names()` lists the
names, and `register_loss(...)` adds a loss of your own in one place: nothing else needs to know it.

Example:
    >>> def d_ls(d_fn, reals, fakes, **_):
    ...     real, fake = ops.reshape(d_fn(reals), [-1]), ops.reshape(d_fn(fakes), [-1])
    ...     return ops.square(real - 1) + ops.square(fake), {"real_score": real, "fake_score": fake}
    >>> register_loss("lsgan", g=lambda fake: ops.square(ops.reshape(fake, [-1]) - 1), d=d_ls,
    ...               description="least squares (Mao et al. 2017)")
    >>> model.compile(g_optimizer=adam(), d_optimizer=adam(), loss="lsgan")
"""
import dataclasses
import itertools
import math
from typing import Callable, Tuple

import keras
from keras import ops

_BACKEND = keras.backend.backend()
if _BACKEND == "tensorflow":
    import tensorflow as tf
elif _BACKEND == "jax":
    import jax


def _scores(x):
    # Scores are reduced in float32 even under mixed precision, as the original's `fp32()`.
    return ops.reshape(ops.cast(x, "float32"), [-1])


def _input_gradients(d_fn, images, grad_scale=1.0):
    """d(sum D(images))/d(images) and the scores; `grad_scale` is the fp16 loss scale (undone on return).

    Differentiable again (R1 and the gradient penalties are minimised through it: a double backprop). On JAX the
    inner gradient is `jax.grad` of a pure function of the images; D's weights reach it through the Keras
    StatelessScope the caller runs in. With `REMAT_INPUT_GRADIENTS` it is wrapped in `jax.checkpoint`, so the
    outer backward pass recomputes D's forward and first backward instead of keeping their activations: the
    memory of the R1 step at high resolution, for about one more D pass."""
    if _BACKEND == "jax":
        def total(x):
            scores = _scores(d_fn(x))
            return ops.sum(scores) * grad_scale, scores

        inner = jax.grad(total, has_aux=True)
        if REMAT_INPUT_GRADIENTS:
            inner = jax.checkpoint(inner)
        grads, scores = inner(images)
        return ops.cast(grads, "float32") / grad_scale, scores
    with tf.GradientTape() as tape:
        tape.watch(images)
        scores = _scores(d_fn(images))
        total = tf.reduce_sum(scores) * grad_scale
    grads = tf.cast(tape.gradient(total, images), tf.float32) / grad_scale
    return grads, scores


# Rematerialise the input-gradient pass under JAX (see `_input_gradients`); the JAX train step sets it per phase.
REMAT_INPUT_GRADIENTS = False


def _sum_sq(g):
    return ops.sum(ops.square(g), axis=list(range(1, len(g.shape))))


# ------------------------------------------------------------------ pyramids (MSG-GAN: D takes a list of levels)
def _packed(d_fn, images):
    """(d_fn', x'): `images` as one tensor for the input-gradient penalties.

    A single tensor passes through. A pyramid (MSG-GAN's list of per-level images [N, r, r, C]) becomes one
    [N, sum r*r*C] tensor, every level flattened side by side, and d_fn' splits it back into the list D takes. The
    gradient w.r.t. x' is then every level's gradient side by side, so R1, the WGAN-GP norm and WGAN-div's norms
    are taken over the whole pyramid: the squared norm is the SUM over levels of the per-level squared norms.
    (The official MSG-StyleGAN code averages its R1 over the levels instead, i.e. gamma / num_levels.)"""
    if not isinstance(images, (list, tuple)):
        return d_fn, images
    shapes = [tuple(int(d) for d in x.shape[1:]) for x in images]
    sizes = [math.prod(shape) for shape in shapes]
    flat = ops.concatenate([ops.reshape(x, [-1, n]) for x, n in zip(images, sizes)], axis=1)
    splits = list(itertools.accumulate(sizes))[:-1]

    def unpacked(x):
        return d_fn([ops.reshape(part, (-1,) + shape) for part, shape in zip(ops.split(x, splits, axis=1), shapes)])

    return unpacked, flat


def _interpolate_levels(reals, fakes, seed):
    """`_interpolate` for a tensor or a pyramid; a pyramid's levels share each sample's factor t, so the
    interpolate of two pyramids is taken at one point between them."""
    if not isinstance(reals, (list, tuple)):
        return _interpolate(reals, fakes, seed)
    zeros = ops.zeros_like(ops.cast(fakes[0][:, :1, :1, :1], "float32"))
    t = _interpolate(zeros, zeros + 1.0, seed)   # exactly the [N, 1, 1, 1] factors of a single-tensor call
    return [ops.cast(r, f.dtype) + (f - ops.cast(r, f.dtype)) * ops.cast(t, f.dtype) for r, f in zip(reals, fakes)]


# ------------------------------------------------------------------ logistic (StyleGAN default)
def g_logistic_nonsaturating(fake_scores):
    return ops.softplus(-_scores(fake_scores))


def d_logistic_r1(d_fn, reals, fakes, gamma=10.0, r1_scale=1.0, grad_scale=1.0, seed=None, **_):
    """softplus(D(fake)) + softplus(-D(real)) + gamma/2 * r1_scale * ||dD(real)/dreal||^2.

    `r1_scale` is 1/4**level when D sees native low-resolution reals: the official penalty is taken w.r.t.
    the nearest-upscaled full-size reals, whose gradient is the native one spread over 4**level pixels
    divided by 4**level each, so its squared norm is the native one / 4**level (docs/training.md).

    The original adds the [N] penalty to the [N, 1] softplus terms, which broadcasts to an [N, N] matrix; its
    mean (what is minimised) equals the mean of this [N] loss, whose sample i is the matrix's entry (i, i)."""
    fake_scores = _scores(d_fn(fakes))
    if gamma:
        grads, real_scores = _input_gradients(*_packed(d_fn, reals), grad_scale)
        r1 = _sum_sq(grads)
    else:
        real_scores = _scores(d_fn(reals))
        r1 = ops.zeros_like(real_scores)
    loss = ops.softplus(fake_scores) + ops.softplus(-real_scores) + r1 * (0.5 * gamma * r1_scale)
    return loss, {"real_score": real_scores, "fake_score": fake_scores, "r1": r1}


def r1_interval(loss_kwargs):
    """K of the lazy R1 (`loss_kwargs["r1_interval"]`, train.py's `--r1-interval`): 1 = R1 every step."""
    return int((loss_kwargs or {}).get("r1_interval", 1))


def lazy_r1_kwargs(loss_kwargs, with_r1):
    """The D loss's keyword arguments for one step of a lazy-R1 run (StyleGAN2's lazy regularisation).

    With `r1_interval` K > 1 the penalty runs only on steps where `step % K == 0`, with gamma * K so that its
    average weight per step stays gamma; the other steps skip the double backprop (gamma 0). K = 1 returns the
    kwargs unchanged (minus the key): the official step. The caller chooses the branch per step (`tf.cond` /
    `jax.lax.cond`): only one of the two is computed.

    Args:
        loss_kwargs: the model's loss kwargs, e.g. {"gamma": 10.0, "r1_interval": 4}.
        with_r1: whether this step takes the penalty.

    Example:
        >>> kw = {"gamma": 10.0, "r1_interval": 4}
        >>> lazy_r1_kwargs(kw, True), lazy_r1_kwargs(kw, False)
        ({'gamma': 40.0}, {'gamma': 0.0})
    """
    kw = dict(loss_kwargs or {})
    k = int(kw.pop("r1_interval", 1))
    if k > 1:
        kw["gamma"] = float(kw.get("gamma", 10.0)) * k if with_r1 else 0.0
    return kw


# ------------------------------------------------------------------ WGAN family (ProGAN / CelebA-HQ)
def g_wgan(fake_scores):
    return -_scores(fake_scores)


def d_wgan(d_fn, reals, fakes, wgan_epsilon=0.001, seed=None, **_):
    """Official `D_wgan`: D(fake) - D(real) + epsilon * D(real)^2 (the drift term keeps scores near 0)."""
    real_scores = _scores(d_fn(reals))
    fake_scores = _scores(d_fn(fakes))
    loss = fake_scores - real_scores + wgan_epsilon * ops.square(real_scores)
    return loss, {"real_score": real_scores, "fake_score": fake_scores}


def _interpolate(reals, fakes, seed):
    if _BACKEND == "jax":
        # `seed`: the step's raw [2] uint32 key (see networks/draws.py).
        shape = (reals.shape[0], 1, 1, 1)
        t = keras.random.uniform(shape) if seed is None else jax.random.uniform(
            jax.numpy.asarray(seed).astype("uint32"), shape)
        t = ops.cast(t, fakes.dtype)
        return ops.cast(reals, fakes.dtype) + (fakes - ops.cast(reals, fakes.dtype)) * t
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
    mixed = _interpolate_levels(reals, fakes, seed)
    grads, _ = _input_gradients(*_packed(d_fn, mixed), grad_scale)
    norms = ops.sqrt(_sum_sq(grads))
    gp = ops.square(norms - wgan_target)
    loss = (fake_scores - real_scores + gp * (wgan_lambda / wgan_target ** 2)
            + wgan_epsilon * ops.square(real_scores))
    return loss, {"real_score": real_scores, "fake_score": fake_scores, "gp": gp}


def d_wgan_div(d_fn, reals, fakes, div_k=2.0, div_p=6.0, grad_scale=1.0, seed=None, **_):
    """WGAN-div (Wu et al. 2018): D(fake) - D(real) + k/2 * (||dD(real)||^p + ||dD(fake)||^p), k=2, p=6."""
    real_grads, real_scores = _input_gradients(*_packed(d_fn, reals), grad_scale)
    fake_grads, fake_scores = _input_gradients(*_packed(d_fn, fakes), grad_scale)
    # ||g||^p = (sum g^2)^(p/2)
    div = 0.5 * (ops.power(_sum_sq(real_grads), div_p / 2) + ops.power(_sum_sq(fake_grads), div_p / 2))
    loss = fake_scores - real_scores + div_k * div
    return loss, {"real_score": real_scores, "fake_score": fake_scores, "div": div}


# ------------------------------------------------------------------ hinge
def d_hinge(d_fn, reals, fakes, seed=None, **_):
    """Official `D_hinge`: max(0, 1 + D(fake)) + max(0, 1 - D(real)); G uses the WGAN loss."""
    real_scores = _scores(d_fn(reals))
    fake_scores = _scores(d_fn(fakes))
    loss = ops.relu(1.0 + fake_scores) + ops.relu(1.0 - real_scores)
    return loss, {"real_score": real_scores, "fake_score": fake_scores}


# ------------------------------------------------------------------ relativistic average hinge (MSG-GAN)
def d_ra_hinge(d_fn, reals, fakes, seed=None, **_):
    """Relativistic average hinge (Jolicoeur-Martineau 2018), the MSG-GAN paper's loss, per sample:
    max(0, 1 - (D(real) - mean D(fake))) + max(0, 1 + (D(fake) - mean D(real))).

    Its mean over the minibatch is the paper's loss. The means are over the batch this call sees (one replica's
    under a distribution strategy)."""
    real_scores = _scores(d_fn(reals))
    fake_scores = _scores(d_fn(fakes))
    loss = ops.relu(1.0 - (real_scores - ops.mean(fake_scores))) + ops.relu(1.0 + (fake_scores - ops.mean(real_scores)))
    return loss, {"real_score": real_scores, "fake_score": fake_scores}


def g_ra_hinge(fake_scores, real_scores):
    """The generator's side, which needs the real scores too (`Loss.g_needs_real_scores`), per sample:
    max(0, 1 + (D(real) - mean D(fake))) + max(0, 1 - (D(fake) - mean D(real)))."""
    fake_scores, real_scores = _scores(fake_scores), _scores(real_scores)
    return ops.relu(1.0 + (real_scores - ops.mean(fake_scores))) + ops.relu(1.0 - (fake_scores - ops.mean(real_scores)))


@dataclasses.dataclass(frozen=True)
class Loss:
    """A registry entry: a G and a D loss and what the rest of the code asks of them.

    Args:
        name: the name `compile(loss=...)` and train.py's `--loss` take.
        g: the G loss, `g(fake_scores) -> [N]`, or `g(fake_scores, real_scores)` if `g_needs_real_scores`.
        d: the D loss, `d(d_fn, reals, fakes, r1_scale=, grad_scale=, seed=, **loss_kwargs) -> ([N], stats)`;
            it must accept (and may ignore) every keyword.
        stats: the names of its own statistics in `stats` besides the scores (e.g. ("r1",)): each gets a tracker
            (the logs, stats.jsonl and TensorBoard show it under that name).
        g_needs_real_scores: the G loss compares with D's scores of the minibatch's reals (relativistic losses).
        lazy_r1: its D loss takes `gamma` and reports `r1`, so `r1_interval` (lazy R1) applies to it.
        description: one line for `--help`.
    """

    name: str
    g: Callable
    d: Callable
    stats: Tuple[str, ...] = ()
    g_needs_real_scores: bool = False
    lazy_r1: bool = False
    description: str = ""


LOSSES = {}


# The statistics every run logs whatever its loss; an entry's `stats` add to them.
COMMON_STATS = ("G_loss", "D_loss", "real_score", "fake_score", "nonfinite_skips")


def register_loss(name, g, d, stats=(), g_needs_real_scores=False, lazy_r1=False, description=""):
    """Add a loss to the registry under `name` (the arguments are `Loss`'s) and return its entry.

    Raises ValueError if the name is taken or a statistic would shadow one every run logs.

    Example:
        >>> entry = register_loss("lsgan", g_ls, d_ls, description="least squares (Mao et al. 2017)")
        >>> get_loss("lsgan") is entry, loss_names()[-1]
        (True, 'lsgan')
    """
    if name in LOSSES:
        raise ValueError(f"a loss named {name!r} is already registered")
    reserved = set(COMMON_STATS)
    if reserved & set(stats):
        raise ValueError(f"loss {name!r}: statistics {sorted(reserved & set(stats))} are logged for every loss")
    entry = Loss(name, g, d, tuple(stats), bool(g_needs_real_scores), bool(lazy_r1), description)
    LOSSES[name] = entry
    return entry


def loss_names():
    """The registered loss names, in registration order (the official default first)."""
    return list(LOSSES)


def get_loss(name):
    """The `Loss` entry of a name; ValueError naming the choices otherwise."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}: choose one of {', '.join(LOSSES)}") from None


# Every D loss ignores the options it does not use (e.g. gamma for hinge).
register_loss("logistic", g_logistic_nonsaturating, d_logistic_r1, stats=("r1",), lazy_r1=True,
              description="non-saturating logistic G, logistic D + R1 penalty (StyleGAN's default)")
register_loss("wgan-gp", g_wgan, d_wgan_gp, stats=("gp",), description="WGAN + gradient penalty (ProGAN)")
register_loss("wgan", g_wgan, d_wgan, description="WGAN with the drift term, no penalty")
register_loss("wgan-div", g_wgan, d_wgan_div, stats=("div",), description="WGAN-div (Wu et al. 2018)")
register_loss("hinge", g_wgan, d_hinge, description="hinge D, WGAN G")
register_loss("ra-hinge", g_ra_hinge, d_ra_hinge, g_needs_real_scores=True,
              description="relativistic average hinge (MSG-GAN)")
