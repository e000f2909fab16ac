"""The `StyleGAN` iteration on Keras' JAX backend: a pure function of the model's state, jitted by `fit`.

Keras' JAX trainer calls `train_step(state, data)` with `state = (trainable, non_trainable, optimizer, metrics)`
value lists and expects `(logs, new_state)` (keras.io, "Customizing what happens in fit() with JAX"). The
iteration is the TF path's (`StyleGAN._iteration`, official order): Gs = lerp(G, Gs, beta), then the D step
(fakes drawn through G in training mode, which moves `dlatent_avg`), then the G step against the updated D. The
networks run through `keras.StatelessScope` over the state's values; gradients come from `jax.value_and_grad`;
each optimizer applies them statelessly to the variables that took part in the traced graph, as the TF path
applies only the non-None gradients (a lower level's ToRGB/FromRGB keeps its Adam state); an update with any
non-finite gradient is dropped whole (weights, moments, step counter), as `apply_if_finite` does. Reals are one
tensor, or for a pyramid architecture (MSG) a list of levels lowest first, handled as the TF path handles them.

Randomness is keyed by (seed, salt, step) exactly as the TF step keys it (same salts), as raw JAX PRNG keys: a
run resumed from a snapshot draws what the uninterrupted run would, though JAX's numbers are not TF's. Under
`keras.distribution.DataParallel` the jitted step sees the global batch, so the draws do not depend on the
number of devices.
"""
import jax
import jax.numpy as jnp
import keras
import numpy as np

from stylegan_tf.networks import draws
from stylegan_tf.training import loss as loss_lib
from stylegan_tf.training.model import downscale_reals

# The same salts as training/model.py: the draws of one step are told apart identically on both backends.
_SALT_Z_D, _SALT_Z_G, _SALT_MIRROR, _SALT_PENALTY, _SALT_LABELS, _SALT_G_DRAWS_D, _SALT_G_DRAWS_G = 1, 2, 3, 4, 5, 6, 7

# Rematerialise R1's input gradients (jax.checkpoint) from this native resolution up: below it the activations
# are small and recomputation only costs time.
REMAT_FROM_RESOLUTION = 256


class OptimizerPair:
    """What Keras' JAX trainer sees as `model.optimizer`: the G and D optimizers' variables as one state list.

    The trainer moves `model.optimizer.variables` in and out of the jitted step; the step splits them again."""

    built = True

    def __init__(self, g_optimizer, d_optimizer):
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer

    @property
    def variables(self):
        return list(self.g_optimizer.variables) + list(self.d_optimizer.variables)


class _RecordingScope(keras.StatelessScope):
    """A StatelessScope that notes which variables were read: the ones that took part in the traced graph."""

    def __init__(self, state_mapping, reads):
        super().__init__(state_mapping=state_mapping)
        self._reads = reads

    def get_current_value(self, variable):
        self._reads.add(id(variable))
        return super().get_current_value(variable)


class _State:
    """The model's variables by id, with value lists converted to and from an {id: value} dict."""

    def __init__(self, model):
        self.trainable = list(model.trainable_variables)
        self.non_trainable = list(model.non_trainable_variables)
        self.all = self.trainable + self.non_trainable

    def to_dict(self, trainable_values, non_trainable_values):
        return {id(v): x for v, x in zip(self.all, list(trainable_values) + list(non_trainable_values))}

    def from_dict(self, values):
        return [values[id(v)] for v in self.trainable], [values[id(v)] for v in self.non_trainable]


def _run(fn, variables, values, reads=None):
    """`fn()` with every variable in `variables` reading `values[id]`; returns (result, values after)."""
    mapping = [(v, values[id(v)]) for v in variables]
    scope = keras.StatelessScope(state_mapping=mapping) if reads is None else _RecordingScope(mapping, reads)
    with scope:
        out = fn()
    after = dict(values)
    after.update({id(v): scope.state_mapping[id(v)] for v in variables})
    return out, after


def _apply(optimizer, opt_values, grads, variables, values, used):
    """One optimizer update of the used `variables` (values dict updated), skipped whole if not finite.

    Returns (new values dict, new optimizer values, skipped 0/1)."""
    idx = [i for i, v in enumerate(variables) if id(v) in used]
    grads = [grads[i] for i in idx]
    vars_used = [variables[i] for i in idx]
    mapping = list(zip(optimizer.variables, opt_values)) + [(v, values[id(v)]) for v in vars_used]
    with keras.StatelessScope(state_mapping=mapping) as scope:
        optimizer.apply(grads, vars_used)
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in grads])) if grads else jnp.array(True)
    new_values = dict(values)
    for v in vars_used:
        new_values[id(v)] = jnp.where(finite, scope.get_current_value(v), values[id(v)])
    new_opt = [jnp.where(finite, scope.get_current_value(v), old) for v, old in zip(optimizer.variables, opt_values)]
    return new_values, new_opt, 1.0 - finite.astype("float32")


def _key(model, step, salt):
    return jnp.stack([jnp.asarray(model.seed * 64 + salt, jnp.uint32), jnp.asarray(step).astype(jnp.uint32)])


def fade_reals(x, alpha):
    """The original's FadeLOD on native reals (as model.fade_reals): lerp(x, nearest_up(box_down2(x)), alpha)."""
    n, h, w, c = x.shape
    if h < 2:
        return x
    y = x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4), keepdims=True)
    y = jnp.broadcast_to(y, (n, h // 2, 2, w // 2, 2, c)).reshape(x.shape)
    return x + (y - x) * alpha.astype(x.dtype)


def _ema_steps(diffs, beta, runtime_flag):
    """[(Gs - G) * beta] for each pair, each product rounded to float32 before the add that follows.

    The official lerp (TF1's separate multiply and add kernels) rounds the product on its own. Inside one XLA
    fusion, LLVM contracts `G + (Gs - G) * beta` into a fused multiply-add, and an optimization_barrier does not
    stop it (XLA expands barriers away before fusing): measured, that moves some weights by one float32 ulp,
    3.0e-4 of the EMA step of the official-iteration fixture (tests/test_jax.py runs that test on JAX). The branches
    of a conditional are compiled as computations of their own, so the products leave their kernel rounded.
    Both branches are the same function: `runtime_flag` only has to be a value XLA cannot fold."""
    def products(ds):
        return [d * beta for d in ds]

    return jax.lax.cond(runtime_flag, products, products, diffs)


def r1_due(model, step):
    """Whether global step `step` takes the R1 penalty (`StyleGAN.r1_due` on JAX): always, unless the loss
    kwargs' `r1_interval` K > 1, then on the steps with step % K == 0."""
    return (jnp.asarray(step) % loss_lib.r1_interval(model.loss_kwargs)) == 0


def _levels(fn, reals):
    """`fn` on the reals: one tensor, or each level of a pyramid (a list, lowest first)."""
    return [fn(r) for r in reals] if isinstance(reals, (list, tuple)) else fn(reals)


def iteration(model, st, values, opt_values, reals, labels, z_d, z_g, labels_g, step, noise_mode=None):
    """Gs update, D step, G step on state `values` ({id: value}) and `opt_values` (G's then D's).

    Returns (out dict as `StyleGAN._iteration`'s, new values, new optimizer values)."""
    G, D = model.G, model.D
    pyramid = isinstance(reals, (list, tuple))
    top = reals[-1] if pyramid else reals
    n = top.shape[0]
    global_n = float(model.global_batch or n)
    level = model.level
    if getattr(G, "lod", None) is not None and not pyramid:
        # Only a progressively grown network fades; architectures without `lod` (DCGAN, MSG) never do.
        lod = values[id(G.lod)].astype("float32")
        reals = fade_reals(reals, jnp.clip(lod - float(level), 0.0, 1.0))
    n_g_opt = len(model.g_optimizer.variables)
    g_opt, d_opt = list(opt_values[:n_g_opt]), list(opt_values[n_g_opt:])
    loss_lib.REMAT_INPUT_GRADIENTS = top.shape[1] >= REMAT_FROM_RESOLUTION

    # ---- Gs = lerp(G, Gs, beta) first: G as it was before this iteration (see StyleGAN._iteration).
    values = dict(values)
    pairs = [(s, g) for s, g, trainable in model.gs_pairs() if trainable]
    for s, g, trainable in model.gs_pairs():
        if not trainable:
            values[id(s)] = values[id(g)]
    steps = _ema_steps([values[id(s)] - values[id(g)] for s, g in pairs], float(model.gs_beta),
                       jnp.asarray(step) != 0)
    for (s, g), d in zip(pairs, steps):
        values[id(s)] = values[id(g)] + d

    # ---- D step
    fakes, values = _run(lambda: G(z_d, labels=labels, training=True, level=level, noise_mode=noise_mode,
                                   seed=draws.child(_key(model, step, _SALT_G_DRAWS_D), 0)), st.all, values)
    fakes = jax.tree_util.tree_map(jax.lax.stop_gradient, fakes)
    fakes = [f.astype(r.dtype) for f, r in zip(fakes, reals)] if pyramid else fakes.astype(reals.dtype)
    d_vars = list(D.trainable_variables)

    def d_loss_and_grads(loss_kwargs, reads):
        def d_loss(d_values):
            vals = dict(values)
            vals.update({id(v): x for v, x in zip(d_vars, d_values)})

            def fn():
                return model.d_loss_fn(lambda x: model._call_D(x, labels), reals, fakes, r1_scale=model.r1_scale,
                                       grad_scale=1.0, seed=_key(model, step, _SALT_PENALTY), **loss_kwargs)

            (per_sample, stats), _ = _run(fn, st.all, vals, reads)
            return jnp.sum(per_sample) / global_n, (per_sample, stats)

        (_, aux), grads = jax.value_and_grad(d_loss, has_aux=True)([values[id(v)] for v in d_vars])
        return aux, grads

    d_reads = set()
    interval = loss_lib.r1_interval(model.loss_kwargs)
    if interval > 1:
        # Lazy R1 (StyleGAN2): the penalty, gamma * K, only on steps with step % K == 0, as StyleGAN._lazy_r1;
        # only the branch taken runs, so the other steps skip the double backprop.
        reads = {True: set(), False: set()}

        def branch(with_r1):
            return lambda: d_loss_and_grads(loss_lib.lazy_r1_kwargs(model.loss_kwargs, with_r1), reads[with_r1])

        (d_per_sample, stats), d_grads = jax.lax.cond(r1_due(model, step), branch(True), branch(False))
        if reads[True] != reads[False]:
            raise ValueError("the lazy R1 step and the plain D step reach different D variables")
        d_reads = reads[True]
    else:
        (d_per_sample, stats), d_grads = d_loss_and_grads(model.loss_kwargs, d_reads)
    values, d_opt, d_skip = _apply(model.d_optimizer, d_opt, d_grads, d_vars, values, d_reads)

    # ---- G step (moves dlatent_avg again, as the original's G loss graph does)
    g_vars = list(G.trainable_variables)
    g_state = list(G.non_trainable_variables)
    g_reads = set()

    def g_loss(g_values):
        vals = dict(values)
        vals.update({id(v): x for v, x in zip(g_vars, g_values)})

        def fn():
            fk = G(z_g, labels=labels_g, training=True, level=level, noise_mode=noise_mode,
                   seed=draws.child(_key(model, step, _SALT_G_DRAWS_G), 0))
            fake_scores = model._call_D(fk, labels_g)
            if loss_lib.g_loss_needs_reals(model.g_loss_fn):
                # A relativistic G loss compares with D's scores of this iteration's reals.
                return model.g_loss_fn(fake_scores, model._call_D(reals, labels))
            return model.g_loss_fn(fake_scores)

        per_sample, after = _run(fn, st.all, vals, g_reads)
        return jnp.sum(per_sample) / global_n, (per_sample, [after[id(v)] for v in g_state])

    (_, (g_per_sample, g_state_values)), g_grads = jax.value_and_grad(g_loss, has_aux=True)(
        [values[id(v)] for v in g_vars])
    values.update({id(v): x for v, x in zip(g_state, g_state_values)})
    values, g_opt, g_skip = _apply(model.g_optimizer, g_opt, g_grads, g_vars, values, g_reads)

    out = dict(stats)
    out.update(D_loss_per_sample=d_per_sample, G_loss_per_sample=g_per_sample, nonfinite_skips=d_skip + g_skip,
               D_grads=d_grads, G_grads=g_grads)
    return out, values, g_opt + d_opt


def _state_of(model):
    st = model.__dict__.get("_jax_state_index")
    if st is None or len(st.all) != len(model.trainable_variables) + len(model.non_trainable_variables):
        st = model.__dict__["_jax_state_index"] = _State(model)
    return st


def train_step(model, state, data):
    """Keras' stateless JAX `train_step`: one official iteration on `(reals, labels, step)`.

    Args:
        model: the `StyleGAN` model (its phase set by `configure_phase`).
        state: (trainable values, non-trainable values, optimizer values (G's then D's), metric values).
        data: (reals, labels [B, L], step [B]); reals [B, R, R, C] in [-1, 1], box-filtered down to the level's
            native resolution where R is larger, or for a pyramid architecture a tuple of every level, lowest first.

    Returns:
        (logs, new state), as Keras' JAX trainer expects.

    Example:
        >>> model.compile(g_optimizer=adam(), d_optimizer=adam())   # KERAS_BACKEND=jax: fit calls this
        >>> model.configure_phase(level=0, global_batch=4)
        >>> model.fit(batches, steps_per_epoch=2)
    """
    trainable, non_trainable, opt_values, metric_values = state
    reals, labels, step = data
    step = step[0]
    st = _state_of(model)
    values = st.to_dict(trainable, non_trainable)
    has_labels = model.G.label_size > 0
    reals = _levels(lambda x: jnp.asarray(x).astype("float32"), reals)
    if not isinstance(reals, list):
        reals = downscale_reals(reals, model.G.resolution // 2 ** model.level)
    n = (reals[0] if isinstance(reals, list) else reals).shape[0]
    labels = jnp.asarray(labels).astype("float32") if has_labels else None
    if model.mirror:
        flip = jax.random.uniform(_key(model, step, _SALT_MIRROR), (n,)) < 0.5
        # One flip per sample, applied to every level of it.
        reals = _levels(lambda x: jnp.where(flip[:, None, None, None], x[:, :, ::-1], x), reals)
    z_d = jax.random.normal(_key(model, step, _SALT_Z_D), (n, model.G.latent_size))
    z_g = jax.random.normal(_key(model, step, _SALT_Z_G), (n, model.G.latent_size))
    labels_g = None
    if has_labels:
        pool = model.label_pool
        if pool is None or len(pool) == 0:
            raise ValueError("a conditional model needs label_pool (the dataset's labels) for the G step")
        idx = jax.random.randint(_key(model, step, _SALT_LABELS), (n,), 0, len(pool))
        labels_g = jnp.asarray(pool)[idx]
    out, values, opt_values = iteration(model, st, values, opt_values, reals, labels, z_d, z_g, labels_g, step)

    local = {"G_loss": jnp.mean(out["G_loss_per_sample"]), "D_loss": jnp.mean(out["D_loss_per_sample"]),
             "real_score": jnp.mean(out["real_score"]), "fake_score": jnp.mean(out["fake_score"]),
             "nonfinite_skips": out["nonfinite_skips"]}
    for extra in ("r1", "gp", "div"):
        if extra in out:
            local[extra] = jnp.mean(out[extra])
    new_metrics, logs, i = [], {}, 0
    for name, metric in model._trackers.items():
        k = len(metric.variables)
        mv = list(metric_values[i:i + k])
        i += k
        if name == "r1" and loss_lib.r1_interval(model.loss_kwargs) > 1:
            # The mean over the steps that took the penalty (the others report no R1), as on TF.
            mv = metric.stateless_update_state(mv, local[name],
                                               sample_weight=r1_due(model, step).astype("float32"))
        elif name in local:
            mv = metric.stateless_update_state(mv, local[name])
        logs[name] = metric.stateless_result(mv)
        new_metrics.extend(mv)
    trainable, non_trainable = st.from_dict(values)
    return logs, (trainable, non_trainable, opt_values, new_metrics)


def deterministic_step(model, reals, labels, z_d, z_g, labels_g, step, noise_mode):
    """`StyleGAN.deterministic_step` on JAX: the iteration on given numbers, jitted once per phase structure,
    written back into the model's and optimizers' variables. Returns numpy arrays as the TF path does."""
    st = _state_of(model)
    opt_vars = OptimizerPair(model.g_optimizer, model.d_optimizer).variables
    phase = (model.level, model.global_batch, model.gs_beta, model.r1_scale, noise_mode, len(st.all),
             model.loss_name, repr(sorted(model.loss_kwargs.items())))
    cached = model.__dict__.get("_jax_deterministic_fn")
    if cached is None or cached[0] != phase:
        def fn(trainable, non_trainable, opt_values, reals, labels, z_d, z_g, labels_g, step):
            out, values, opt_values = iteration(model, st, st.to_dict(trainable, non_trainable), opt_values,
                                                reals, labels, z_d, z_g, labels_g, step, noise_mode=noise_mode)
            return out, st.from_dict(values), opt_values
        model.__dict__["_jax_deterministic_fn"] = cached = (phase, jax.jit(fn))
    arr = (lambda x: None if x is None else jnp.asarray(np.asarray(x, np.float32)))
    out, (trainable, non_trainable), opt_values = cached[1](
        [v.value for v in st.trainable], [v.value for v in st.non_trainable], [v.value for v in opt_vars],
        _levels(arr, reals), arr(labels), arr(z_d), arr(z_g), arr(labels_g), jnp.asarray(int(step), jnp.uint32))
    for v, x in zip(st.all + opt_vars, list(trainable) + list(non_trainable) + list(opt_values)):
        v.assign(x)
    grads = {key: [np.asarray(g, np.float32) for g in out.pop(key)] for key in ("D_grads", "G_grads")}
    out = {k: np.asarray(v) for k, v in out.items()}
    out.update(grads)
    out["D_loss"] = out["D_loss_per_sample"].sum() / model.global_batch
    out["G_loss"] = out["G_loss_per_sample"].sum() / model.global_batch
    return out
