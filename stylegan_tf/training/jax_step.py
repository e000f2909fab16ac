"""The `StyleGAN` iteration (training/iteration.py) on Keras' JAX backend: a pure function of the model's state.

Keras' JAX trainer calls `train_step(state, data)` with `state = (trainable, non_trainable, optimizer, metrics)`
value lists and expects `(logs, new_state)` (keras.io, "Customizing what happens in fit() with JAX"). The
networks run through `keras.StatelessScope` over the state's values, held as an {id(variable): value} dict;
gradients come from `jax.value_and_grad`; each optimizer applies them statelessly to the variables that took
part in the traced graph, as the TF path applies only the non-None gradients (a lower level's ToRGB/FromRGB keeps
its Adam state); an update with any non-finite gradient is dropped whole (weights, moments, step counter), as
`apply_if_finite` does.

The draws are JAX's, keyed by the same (seed, salt, step) as TF's: a run resumed from a snapshot draws what the
uninterrupted run would, though JAX's numbers are not TF's. Under `keras.distribution.DataParallel` the jitted
step sees the global batch, so the draws do not depend on the number of devices.
"""
import jax
import jax.numpy as jnp
import keras
import numpy as np

from stylegan_tf.training import iteration
from stylegan_tf.training import loss as loss_lib

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



def _ema_products(diffs, beta, runtime_flag):
    """[(Gs - G) * beta] for each pair, each product rounded to float32 before the add that follows.

    TF1's lerp (the official EMA, and our TF step) runs the multiply and the add as two kernels, so the product
    is rounded on its own. XLA:CPU compiles with LLVM's FP-op fusion always allowed, so `G + (Gs - G) * beta` in
    one fused kernel becomes a fused multiply-add (vfmadd213ps in the object code, although the LLVM IR has a
    separate fmul and fadd) that rounds once: measured on the official-iteration fixture, 27562 of G's 65825
    weights then land one float32 ulp off the official Gs, which is 3.0e-4 of the EMA step itself (4x4/Const/bias;
    tests/test_official_train_step.py checks that step to 1e-4). There is no XLA flag against it, and XLA removes
    an optimization_barrier before fusing; the branches of a conditional are compiled as computations of their
    own, so the products leave their kernel rounded. Both branches are the same function: `runtime_flag` only has
    to be a value XLA cannot fold."""
    def products(ds):
        return [d * beta for d in ds]

    return jax.lax.cond(runtime_flag, products, products, diffs)


class Backend:
    """The JAX side of training/iteration.py's backend object (see its docstring): the state's values as an
    {id(variable): value} dict and each optimizer's values, replaced as the iteration goes."""

    def __init__(self, st, values, optimizers, opt_values, step):
        self.st = st
        self.values = dict(values)
        self.optimizers = optimizers
        # The optimizers' values arrive as one list (`OptimizerPair.variables`: G's, then D's).
        self.opt_values, i = {}, 0
        for opt in optimizers:
            self.opt_values[id(opt)] = list(opt_values[i:i + len(opt.variables)])
            i += len(opt.variables)
        self.step = step

    def all_optimizer_values(self):
        return [x for opt in self.optimizers for x in self.opt_values[id(opt)]]

    def value(self, variable):
        return self.values[id(variable)]

    @staticmethod
    def normal(key, shape):
        return jax.random.normal(key, shape)

    @staticmethod
    def uniform(key, n):
        return jax.random.uniform(key, (n,))

    @staticmethod
    def randint(key, n, maxval):
        return jax.random.randint(key, (n,), 0, maxval)

    @staticmethod
    def replica_id():
        return 0

    def run(self, fn):
        out, self.values = _run(fn, self.st.all, self.values)
        return out

    @staticmethod
    def loss_scale(optimizer):
        return 1.0

    def loss_and_grads(self, fn, variables, optimizer, keep=()):
        reads = set()

        def loss(var_values):
            vals = dict(self.values)
            vals.update({id(v): x for v, x in zip(variables, var_values)})
            (value, aux), after = _run(fn, self.st.all, vals, reads)
            return value, (aux, [after[id(v)] for v in keep])

        (_, (aux, kept)), grads = jax.value_and_grad(loss, has_aux=True)([self.values[id(v)] for v in variables])
        self.values.update({id(v): x for v, x in zip(keep, kept)})
        return aux, [g if id(v) in reads else None for g, v in zip(grads, variables)]

    @staticmethod
    def cond(pred, true_fn, false_fn):
        return jax.lax.cond(pred, true_fn, false_fn)

    @staticmethod
    def replica_mean(x):
        # The jitted step sees the global batch: its mean is every device's already.
        return x

    def apply(self, optimizer, grads, variables):
        """One stateless optimizer update of the variables with a gradient, skipped whole if not finite."""
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        grads = [g for g, _ in pairs]
        used = [v for _, v in pairs]
        old = self.opt_values[id(optimizer)]
        mapping = list(zip(optimizer.variables, old)) + [(v, self.values[id(v)]) for v in used]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            optimizer.apply(grads, used)
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in grads])) if grads else jnp.array(True)
        for v in used:
            self.values[id(v)] = jnp.where(finite, scope.get_current_value(v), self.values[id(v)])
        self.opt_values[id(optimizer)] = [jnp.where(finite, scope.get_current_value(v), x)
                                          for v, x in zip(optimizer.variables, old)]
        return 1.0 - finite.astype("float32")

    def update_gs(self, pairs, beta):
        for s, g, trainable in pairs:
            if not trainable:
                self.values[id(s)] = self.values[id(g)]
        trainable = [(s, g) for s, g, tr in pairs if tr]
        products = _ema_products([self.values[id(s)] - self.values[id(g)] for s, g in trainable], beta,
                                 jnp.asarray(self.step) != 0)
        for (s, g), p in zip(trainable, products):
            self.values[id(s)] = self.values[id(g)] + p


def _state_of(model):
    st = model.__dict__.get("_jax_state_index")
    if st is None or len(st.all) != len(model.trainable_variables) + len(model.non_trainable_variables):
        st = model.__dict__["_jax_state_index"] = _State(model)
    return st


def _run_iteration(model, bk, reals, labels, z_d, z_g, labels_g, step, noise_mode=None):
    top = reals[-1] if isinstance(reals, (list, tuple)) else reals
    loss_lib.REMAT_INPUT_GRADIENTS = top.shape[1] >= REMAT_FROM_RESOLUTION
    return iteration.iteration(model, bk, reals, labels, z_d, z_g, labels_g, step, noise_mode=noise_mode)


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
    bk = Backend(st, st.to_dict(trainable, non_trainable), (model.g_optimizer, model.d_optimizer), opt_values, step)
    out = _run_iteration(model, bk, *iteration.prepare_batch(model, bk, reals, labels, step), step)
    updates = iteration.metric_updates(model, out, step)
    new_metrics, logs, i = [], {}, 0
    for name, metric in model._trackers.items():
        k = len(metric.variables)
        mv = list(metric_values[i:i + k])
        i += k
        if name in updates:
            value, weight = updates[name]
            mv = metric.stateless_update_state(mv, value, sample_weight=weight)
        logs[name] = metric.stateless_result(mv)
        new_metrics.extend(mv)
    trainable, non_trainable = st.from_dict(bk.values)
    return logs, (trainable, non_trainable, bk.all_optimizer_values(), new_metrics)


def deterministic_step(model, reals, labels, z_d, z_g, labels_g, step, noise_mode):
    """`StyleGAN.deterministic_step` on JAX: the iteration on given numbers, jitted once per phase structure,
    written back into the model's and optimizers' variables. Returns numpy arrays as the TF path does."""
    st = _state_of(model)
    optimizers = (model.g_optimizer, model.d_optimizer)
    opt_vars = OptimizerPair(*optimizers).variables
    phase = iteration.phase_key(model, noise_mode) + (len(st.all),)
    cached = model.__dict__.get("_jax_deterministic_fn")
    if cached is None or cached[0] != phase:
        def fn(trainable, non_trainable, opt_values, reals, labels, z_d, z_g, labels_g, step):
            bk = Backend(st, st.to_dict(trainable, non_trainable), optimizers, opt_values, step)
            out = _run_iteration(model, bk, reals, labels, z_d, z_g, labels_g, step, noise_mode=noise_mode)
            return out, st.from_dict(bk.values), bk.all_optimizer_values()
        model.__dict__["_jax_deterministic_fn"] = cached = (phase, jax.jit(fn))
    arr = (lambda x: None if x is None else jnp.asarray(np.asarray(x, np.float32)))
    reals = [arr(x) for x in reals] if isinstance(reals, (list, tuple)) else arr(reals)
    out, (trainable, non_trainable), opt_values = cached[1](
        [v.value for v in st.trainable], [v.value for v in st.non_trainable], [v.value for v in opt_vars],
        reals, arr(labels), arr(z_d), arr(z_g), arr(labels_g), jnp.asarray(int(step), jnp.uint32))
    for v, x in zip(st.all + opt_vars, list(trainable) + list(non_trainable) + list(opt_values)):
        v.assign(x)
    return iteration.deterministic_outputs(model, out)
