"""One official StyleGAN training iteration, written once for both Keras backends (keras.ops).

An iteration = Gs EMA update -> D step (counts the minibatch) -> G step, for the model's static `level`: the
original's `run([D_train_op, Gs_update_op])` then `run([G_train_op])`, with Gs averaging G as it was before the
iteration's G step. `prepare_batch` turns a `(reals, labels, step)` batch into the iteration's inputs and draws
its randomness, keyed by (seed, salt, step), so that a run resumed from a snapshot draws exactly the numbers the
uninterrupted run would. `iteration` is the iteration proper; `deterministic_step` runs it on given numbers.

What differs between the backends is only how state is held and how gradients are taken and applied: the TF
step (training/tf_step.py) mutates variables under `tf.GradientTape`, the JAX step (training/jax_step.py) is a
pure function of the state's values. Each hands the functions here a small backend object with:

    value(variable)                          the variable's current value
    normal(key, shape), uniform(key, n), randint(key, n, maxval)
                                             the step's draws (for the global batch: as many replicas as
                                             there are, the same numbers), each backend's own stateless ops
    replica_id()                             what tells the replicas' generator draws apart (0 on JAX)
    run(fn)                                  fn() with the state changes it makes kept (dlatent_avg)
    loss_scale(optimizer)                    the mixed-precision loss scale (1.0 without one)
    loss_and_grads(fn, variables, optimizer, keep=())
                                             fn() -> (loss, aux); returns (aux, gradients), None for a variable
                                             the loss does not reach; `keep`: variables whose changes inside
                                             fn survive on JAX (TF keeps every change)
    cond(pred, true_fn, false_fn)            only the branch taken runs
    apply(optimizer, grads, variables)       the update unless a gradient is not finite; returns 1.0 if skipped
    update_gs(pairs, beta)                   Gs = lerp(G, Gs, beta) for trainables, copies for the rest
    replica_mean(x)                          the mean of a scalar over the replicas (x itself on one)

With augmentation set (`StyleGAN.set_augment`), every image D sees (reals and fakes, D step and G step) goes
through `augment` first, inside D's function, so R1 is taken on the augmented reals as ADA does and the G step's
gradients flow through the augmentation; `--augment none` adds no op.
"""
import itertools

import keras
import numpy as np
from keras import ops

from stylegan_tf import augment as augment_lib
from stylegan_tf.networks import draws
from stylegan_tf.training import loss as loss_lib

# The salts of a step's draws. They key resumed runs and stored test numbers: never renumber them.
SALT_Z_D, SALT_Z_G, SALT_MIRROR, SALT_PENALTY, SALT_LABELS, SALT_G_DRAWS_D, SALT_G_DRAWS_G = 1, 2, 3, 4, 5, 6, 7
SALT_AUGMENT = 8

# TF's stateless ops take an int64 pair as their seed; JAX takes a raw [2] uint32 PRNG key.
_KEY_DTYPE = "uint32" if keras.backend.backend() == "jax" else "int64"

# The trackers every loss has (the loss registry's); a loss adds its own statistics (`Loss.stats`).
COMMON_STATS = loss_lib.COMMON_STATS
# An augmenting run's too: p used by the step, and the minibatch's mean sign(D(reals)) (a tick's mean is r_t).
AUGMENT_STATS = ("aug_p", "ada_rt")


def step_key(seed, step, salt):
    """The stateless key of one kind of draw of global step `step`: the pair (seed * 64 + salt, step)."""
    return ops.stack([ops.convert_to_tensor(seed * 64 + salt, _KEY_DTYPE), ops.cast(step, _KEY_DTYPE)])


def tracker_names(entry, augmenting=False):
    """The names of a run's trackers (its logs) for a loss registry entry (and augmentation)."""
    return list(COMMON_STATS) + list(entry.stats) + (list(AUGMENT_STATS) if augmenting else [])


def _levels(fn, reals):
    """`fn` on the reals: one tensor, or each level of a pyramid (MSG: a list, lowest first)."""
    return [fn(r) for r in reals] if isinstance(reals, (list, tuple)) else fn(reals)


def batch_size(reals):
    """The batch size of reals (a tensor, or a list of levels); static where it is known."""
    return ops.shape(reals[0] if isinstance(reals, (list, tuple)) else reals)[0]


def fade_reals(x, alpha):
    """The original's FadeLOD on native reals: lerp(x, nearest_up(box_down2(x)), alpha)."""
    if x.shape[1] is not None and x.shape[1] < 2:
        return x
    s = ops.shape(x)
    y = ops.mean(ops.reshape(x, [s[0], s[1] // 2, 2, s[2] // 2, 2, s[3]]), axis=(2, 4), keepdims=True)
    y = ops.reshape(ops.tile(y, [1, 1, 2, 1, 2, 1]), s)
    return x + (y - x) * ops.cast(alpha, x.dtype)


def downscale_reals(x, resolution):
    """Box-filter reals larger than `resolution` down to it (the mean of each block, as dataset_tool makes its
    lower levels): a user's full-resolution dataset then trains every level of a progressive run in one `fit`."""
    size = x.shape[1]
    if size is None or size <= resolution:
        return x
    factor = size // resolution
    return ops.average_pool(x, factor, factor, "valid")


def r1_due(model, step):
    """Whether global step `step` takes the R1 penalty: always, unless `loss_kwargs["r1_interval"]` K > 1
    (StyleGAN2's lazy regularisation), then on the steps with step % K == 0."""
    return ops.equal(ops.mod(step, loss_lib.r1_interval(model.loss_kwargs)), 0)


def check_label_pool(model):
    """The label pool the G step draws its conditioning from; ValueError if a conditional model has none."""
    pool = model.label_pool
    if pool is None or len(pool) == 0:
        raise ValueError("a conditional model needs label_pool (the dataset's labels) for the G step")
    return pool


def prepare_batch(model, bk, reals, labels, step):
    """A `(reals, labels, step)` batch -> the iteration's (reals, labels, z_d, z_g, labels_g).

    Reals are cast to float32, box-filtered down to the level's resolution where larger and mirrored left-right
    with p = 0.5 if `model.mirror` (one flip per sample, applied to every level of a pyramid); the latents of both
    steps and the G step's labels (drawn from `model.label_pool`) are drawn from (seed, step)."""
    pyramid = isinstance(reals, (list, tuple))
    reals = _levels(lambda x: ops.cast(x, "float32"), list(reals) if pyramid else reals)
    if not pyramid:
        reals = downscale_reals(reals, model.G.resolution // 2 ** model.level)
    n = batch_size(reals)
    if model.mirror:
        flip = bk.uniform(step_key(model.seed, step, SALT_MIRROR), n) < 0.5
        reals = _levels(lambda x: ops.where(flip[:, None, None, None], ops.flip(x, axis=2), x), reals)
    z_d = bk.normal(step_key(model.seed, step, SALT_Z_D), (n, model.G.latent_size))
    z_g = bk.normal(step_key(model.seed, step, SALT_Z_G), (n, model.G.latent_size))
    if model.G.label_size == 0:
        return reals, None, z_d, z_g, None
    pool = check_label_pool(model)
    labels_g = ops.take(ops.convert_to_tensor(pool), bk.randint(step_key(model.seed, step, SALT_LABELS), n,
                                                                len(pool)), axis=0)
    return reals, ops.cast(labels, "float32"), z_d, z_g, labels_g


def _call_G(model, bk, z, labels, step, salt, noise_mode):
    # Noise and style mixing differ between replicas, as with the original's per-GPU random ops.
    return model.G(z, labels=labels, training=True, level=model.level, noise_mode=noise_mode,
                   seed=draws.child(step_key(model.seed, step, salt), bk.replica_id()))


def _call_D(model, x, labels, augmenter=None):
    if augmenter is not None:
        x = augmenter(x)
    return model.D(x, labels=labels, training=True, level=model.level)


def _augmenter(model, p, key, phase):
    """D's input augmentation for one loss function (`phase` 0: the D step's, 1: the G step's), or None without
    augmentation: each call (reals, fakes, R1's reals) draws its own transforms from `key`, the phase and the
    call's number, counted as the loss is traced, so a retrace draws the same. `p`: the step's `model.aug_p`."""
    if model.augment_spec is None:
        return None
    key, calls = draws.child(key, phase), itertools.count()
    return lambda x: augment_lib.augment(x, p, draws.child(key, next(calls)), model.augment_spec)


def _ada_update(model, bk, p, real_scores, step):
    """The minibatch's mean sign(D(reals)) (averaged over the replicas); under --augment ada, ADA's heuristic:
    the signs summed in `ada_signs`, and every `ada_interval`-th step r_t = their mean moves p by
    sign(r_t - target) * N * interval / (ada_kimg * 1000), clipped to [0, 1] (as `augment.adjust_p`)."""
    signs = bk.replica_mean(ops.mean(ops.sign(ops.cast(real_scores, "float32"))))
    s = model.augment_settings
    if s["mode"] != "ada":
        return signs
    interval = s["ada_interval"]
    total = bk.value(model.ada_signs) + signs
    due = ops.equal(ops.mod(step + 1, interval), 0)
    speed = float(model.global_batch) * interval / (s["ada_kimg"] * 1000.0)
    new_p = ops.clip(p + ops.sign(total / interval - s["target"]) * speed, 0.0, 1.0)

    def assign():
        model.aug_p.assign(ops.where(due, new_p, p))
        model.ada_signs.assign(ops.where(due, ops.zeros_like(total), total))
    bk.run(assign)
    return signs


def _lazy_r1(model, bk, d_loss_and_grads, step):
    """The D loss and gradients of a lazy-R1 step: the penalty (gamma * K) on the due steps only.

    Only the branch taken is computed, so the other K - 1 steps skip the double backprop. The cond covers the
    loss and its gradients only (not the optimizer, whose TF update may need a cross-replica merge)."""
    unreached = {}

    def branch(with_r1):
        def run():
            aux, grads = d_loss_and_grads(loss_lib.lazy_r1_kwargs(model.loss_kwargs, with_r1))
            # A variable outside this level's graph has no gradient (None): the same in both branches, rebuilt
            # after the cond (a zero gradient would still move Adam's moments).
            unreached[with_r1] = [g is None for g in grads]
            return aux, [g for g in grads if g is not None]
        return run

    aux, grads = bk.cond(r1_due(model, step), branch(True), branch(False))
    if unreached[True] != unreached[False]:
        raise ValueError("the lazy R1 step and the plain D step reach different D variables")
    it = iter(grads)
    return aux, [None if none else next(it) for none in unreached[True]]


def _unscale(grads, scale):
    # The gradients of a loss-scaled (mixed precision) step, in the units of the loss itself. The optimizer is
    # given the scaled ones (LossScaleOptimizer unscales them itself); these are only reported.
    if isinstance(scale, float) and scale == 1.0:
        return grads
    return [None if g is None else ops.cast(g, "float32") / scale for g in grads]


def iteration(model, bk, reals, labels, z_d, z_g, labels_g, step, noise_mode=None):
    """Gs update, D step, G step on float32 `reals` at the level's native resolution (already mirrored).

    `labels`/`labels_g` None for an unconditional model; `step` keys the generator's own draws (noise maps,
    style mixing) and the penalty's; `noise_mode` None = the training default (random noise). Returns the
    per-sample losses, the loss's stats, `nonfinite_skips` and both gradient lists (aligned with
    `D/G.trainable_variables`, None where a variable is outside this level's graph; unscaled)."""
    entry, level = model.loss_entry, model.level
    global_n = float(model.global_batch or batch_size(reals))
    if getattr(model.G, "lod", None) is not None and not isinstance(reals, (list, tuple)):
        # Only a progressively grown network fades; architectures without `lod` (DCGAN, MSG) never do.
        lod = ops.cast(bk.value(model.G.lod), "float32")
        reals = fade_reals(reals, ops.clip(lod - float(level), 0.0, 1.0))

    # ---- Gs = lerp(G, Gs, beta); non-trainables (lod, dlatent_avg, noise buffers) copied.
    # The original runs the Gs update in the same session.run as the D step, so it averages G as it was before
    # this iteration's G step. The two ops do not depend on each other; in the official run (see
    # tests/fixtures/README.md, official-r16-cond-train-step.npz) Gs copies dlatent_avg as it was *before* the D
    # step's G call updated it (`pre/G/dlatent_avg`, not `mid/`). Updating Gs first reproduces both: G's
    # trainables are the same before and after the D step, and dlatent_avg is the pre-D-step value.
    bk.update_gs(model.gs_pairs(), float(model.gs_beta))

    # ---- D step (fakes use style mixing and update dlatent_avg inside G's training call)
    fakes = bk.run(lambda: _call_G(model, bk, z_d, labels, step, SALT_G_DRAWS_D, noise_mode))
    fakes = _levels(ops.stop_gradient, fakes)
    fakes = [ops.cast(f, r.dtype) for f, r in zip(fakes, reals)] if isinstance(fakes, (list, tuple)) \
        else ops.cast(fakes, reals.dtype)
    d_vars = model.D.trainable_variables
    d_scale = bk.loss_scale(model.d_optimizer)
    augmenting = model.augment_spec is not None
    p = ops.cast(bk.value(model.aug_p), "float32") if augmenting else None
    # Replicas augment their own images differently, as they draw their own noise.
    aug_key = draws.child(step_key(model.seed, step, SALT_AUGMENT), bk.replica_id()) if augmenting else None

    def d_loss_and_grads(loss_kwargs):
        def d_loss():
            aug = _augmenter(model, p, aug_key, 0)
            per_sample, stats = entry.d(lambda x: _call_D(model, x, labels, aug), reals, fakes,
                                        r1_scale=model.r1_scale, grad_scale=d_scale,
                                        seed=step_key(model.seed, step, SALT_PENALTY), **loss_kwargs)
            return ops.sum(per_sample) / global_n, (per_sample, stats)
        return bk.loss_and_grads(d_loss, d_vars, model.d_optimizer)

    if loss_lib.r1_interval(model.loss_kwargs) > 1:
        (d_per_sample, stats), d_grads = _lazy_r1(model, bk, d_loss_and_grads, step)
    else:
        (d_per_sample, stats), d_grads = d_loss_and_grads(model.loss_kwargs)
    if model.frozen_d:
        # FreezeD: no update (the optimizer leaves a variable without a gradient as it is).
        d_grads = [None if id(v) in model.frozen_d else g for g, v in zip(d_grads, d_vars)]
    d_skip = bk.apply(model.d_optimizer, d_grads, d_vars)

    # ---- G step (updates dlatent_avg again, as the original's G loss graph does)
    g_vars = model.G.trainable_variables

    def g_loss():
        aug = _augmenter(model, p, aug_key, 1)
        fake_scores = _call_D(model, _call_G(model, bk, z_g, labels_g, step, SALT_G_DRAWS_G, noise_mode), labels_g,
                              aug)
        if entry.g_needs_real_scores:
            # A relativistic G loss compares with D's scores of this iteration's reals.
            per_sample = entry.g(fake_scores, _call_D(model, reals, labels, aug))
        else:
            per_sample = entry.g(fake_scores)
        return ops.sum(per_sample) / global_n, per_sample

    g_per_sample, g_grads = bk.loss_and_grads(g_loss, g_vars, model.g_optimizer,
                                              keep=model.G.non_trainable_variables)
    g_skip = bk.apply(model.g_optimizer, g_grads, g_vars)

    out = dict(stats)
    if model.augment_spec is not None:
        out.update(aug_p=p, ada_rt=_ada_update(model, bk, p, stats["real_score"], step))
    out.update(D_loss_per_sample=d_per_sample, G_loss_per_sample=g_per_sample, nonfinite_skips=d_skip + g_skip,
               D_grads=_unscale(d_grads, d_scale), G_grads=_unscale(g_grads, bk.loss_scale(model.g_optimizer)))
    return out


def metric_updates(model, out, step):
    """{tracker name: (value, sample weight or None)} of one iteration's output, for the model's trackers.

    The losses and scores are this batch's means (per replica: Keras averages them over replicas). Under lazy R1
    the loss's statistics (its penalty) count only on the steps that took it (the others report none)."""
    lazy = loss_lib.r1_interval(model.loss_kwargs) > 1
    due = ops.cast(r1_due(model, step), "float32") if lazy else None
    updates = {}
    for name in model._trackers:
        if name == "nonfinite_skips":
            updates[name] = (out[name], None)
        elif name in ("G_loss", "D_loss"):
            updates[name] = (ops.mean(out[f"{name}_per_sample"]), None)
        elif name in out:
            updates[name] = (ops.mean(out[name]), due if name in model.loss_entry.stats else None)
    return updates


def phase_key(model, noise_mode):
    """What a trace of `deterministic_step` depends on besides its inputs: one trace per phase structure."""
    return (model.level, model.global_batch, model.gs_beta, model.r1_scale, noise_mode, model.loss_name,
            repr(sorted(model.loss_kwargs.items())), repr(sorted(model.augment_settings.items())), model.freeze_d)


def deterministic_outputs(model, out):
    """`deterministic_step`'s result as numpy: the output of `iteration` with the minibatch means added.

    A variable outside this level's graph (a lower level's ToRGB/FromRGB) has no gradient: reported as zeros,
    which is what the original's full-size graph computes for it (its fade weight is 0)."""
    grads = {key: [np.zeros(v.shape, np.float32) if g is None else np.asarray(ops.convert_to_numpy(g), np.float32)
                   for g, v in zip(out.pop(key), variables)]
             for key, variables in (("D_grads", model.D.trainable_variables),
                                    ("G_grads", model.G.trainable_variables))}
    result = {k: ops.convert_to_numpy(v) for k, v in out.items()}
    result.update(grads)
    result["D_loss"] = result["D_loss_per_sample"].sum() / model.global_batch
    result["G_loss"] = result["G_loss_per_sample"].sum() / model.global_batch
    return result
