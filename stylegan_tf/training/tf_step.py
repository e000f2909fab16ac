"""The `StyleGAN` iteration (training/iteration.py) on Keras' TensorFlow backend: what only TF does.

Variables are mutated in place; gradients come from `tf.GradientTape`; an update is skipped whole when a gradient
is not finite (`apply_if_finite`), with the decision taken in cross-replica context under MirroredStrategy. The
draws are TF's stateless ops for the global batch, each replica keeping its slice, so 1 or N replicas see the
same numbers.
"""
import keras
import tensorflow as tf

from stylegan_tf.training import iteration


def _replica():
    """(replica id, number of replicas) of the current replica context (0, 1 outside distribution)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None:
        return 0, 1
    return ctx.replica_id_in_sync_group, ctx.num_replicas_in_sync


def _distributed():
    return tf.distribute.has_strategy() and tf.distribute.get_replica_context() is not None \
        and tf.distribute.get_strategy().num_replicas_in_sync > 1


def _tf_var(v):
    # The TF variable (a MirroredVariable under a strategy) behind a Keras variable.
    return getattr(v, "value", v) if isinstance(v, keras.Variable) else v


def apply_if_finite(optimizer, grads, variables):
    """Apply `grads` unless any is NaN/Inf anywhere (all replicas agree); returns 1.0 if skipped else 0.0.

    None gradients (variables outside this level's graph) are left out. A skipped update leaves weights, Adam
    moments and the step counter untouched, as the original does. Under MirroredStrategy the decision must be
    taken in cross-replica context, because a `cond` inside a replica cannot contain the optimizer's
    cross-replica `merge_call`.
    """
    pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
    grads = [g for g, _ in pairs]
    variables = [v for _, v in pairs]
    bad = tf.add_n([tf.reduce_sum(tf.cast(~tf.math.is_finite(tf.cast(g, tf.float32)), tf.float32))
                    for g in grads]) if grads else tf.constant(0.0)
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        # It already skips non-finite steps (and adjusts its scale).
        optimizer.apply(grads, variables)
        return tf.cast(bad > 0, tf.float32)
    if not _distributed():
        finite = tf.equal(bad, 0.0)
        tf.cond(finite, lambda: _apply(optimizer, grads, variables), lambda: tf.no_op())
        return 1.0 - tf.cast(finite, tf.float32)

    ctx = tf.distribute.get_replica_context()
    total_bad = ctx.all_reduce(tf.distribute.ReduceOp.SUM, bad)

    def cross_replica(strategy, grads, total_bad):
        finite = tf.equal(strategy.experimental_local_results(total_bad)[0], 0.0)

        def do_apply():
            strategy.extended.call_for_each_replica(
                lambda g: optimizer.apply(g, variables), args=(grads,))
            return tf.constant(True)

        return tf.cond(finite, do_apply, lambda: tf.constant(False))

    ctx.merge_call(cross_replica, args=(grads, total_bad))
    return tf.cast(total_bad > 0, tf.float32)


def _apply(optimizer, grads, variables):
    optimizer.apply(grads, variables)
    return tf.no_op()


def _global_draw(fn, local_n, seed):
    """Draw for the global batch, keep this replica's slice: 1 or N replicas see the same numbers."""
    rid, n_rep = _replica()
    full = fn(local_n * n_rep, seed)
    start = tf.cast(rid, tf.int32) * local_n if not isinstance(rid, int) else rid * local_n
    return full[start:start + local_n]


class Backend:
    """The TF side of training/iteration.py's backend object (see its docstring)."""

    @staticmethod
    def value(variable):
        return tf.convert_to_tensor(_tf_var(variable))

    @staticmethod
    def normal(key, shape):
        return _global_draw(lambda m, s: tf.random.stateless_normal([m, *shape[1:]], seed=s), shape[0], key)

    @staticmethod
    def uniform(key, n):
        return _global_draw(lambda m, s: tf.random.stateless_uniform([m], seed=s), n, key)

    @staticmethod
    def randint(key, n, maxval):
        return _global_draw(
            lambda m, s: tf.random.stateless_uniform([m], seed=s, minval=0, maxval=maxval, dtype=tf.int64), n, key)

    @staticmethod
    def replica_id():
        return tf.cast(_replica()[0], tf.int64)

    @staticmethod
    def run(fn):
        return fn()

    @staticmethod
    def loss_scale(optimizer):
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return tf.cast(_tf_var(optimizer.dynamic_scale), tf.float32)
        return 1.0

    @staticmethod
    def loss_and_grads(fn, variables, optimizer, keep=()):
        with tf.GradientTape() as tape:
            loss, aux = fn()
            if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                loss = optimizer.scale_loss(loss)
        return aux, tape.gradient(loss, variables)

    @staticmethod
    def cond(pred, true_fn, false_fn):
        return tf.cond(pred, true_fn, false_fn)

    @staticmethod
    def apply(optimizer, grads, variables):
        return apply_if_finite(optimizer, grads, variables)

    @staticmethod
    def replica_mean(x):
        if not _distributed():
            return x
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.MEAN, x)

    @staticmethod
    def update_gs(pairs, beta):
        def new_value(gs_v, g_v, trainable):
            return g_v + (gs_v - g_v) * beta if trainable else g_v

        if not _distributed():
            for s, g, trainable in pairs:
                s.assign(new_value(s.value, g.value, trainable))
            return

        def cross_replica(strategy):
            for s, g, trainable in pairs:
                strategy.extended.update(_tf_var(s), lambda sv, gv, tr=trainable: sv.assign(new_value(sv, gv, tr)),
                                         args=(_tf_var(g),))

        tf.distribute.get_replica_context().merge_call(cross_replica)


def train_step(model, data):
    """Keras' `train_step` on TF: one official iteration on `(reals, labels, step)`; returns the logs."""
    reals, labels, step = data
    step = step[0]
    bk = Backend()
    out = iteration.iteration(model, bk, *iteration.prepare_batch(model, bk, reals, labels, step), step)
    for name, (value, weight) in iteration.metric_updates(model, out, step).items():
        model._trackers[name].update_state(value, sample_weight=weight)
    return {k: t.result() for k, t in model._trackers.items()}


def deterministic_step(model, reals, labels, z_d, z_g, labels_g, step, noise_mode):
    """`StyleGAN.deterministic_step` on TF: the iteration on given numbers as a tf.function, traced once per
    phase structure (level, batch, beta and R1 scale are read while tracing), as fit's."""
    arr = (lambda x: None if x is None else tf.convert_to_tensor(x, tf.float32))
    # A pyramid architecture (MSG) takes a list of levels, lowest first.
    reals = [arr(x) for x in reals] if isinstance(reals, (list, tuple)) else arr(reals)
    phase = iteration.phase_key(model, noise_mode)
    cached = model.__dict__.get("_deterministic_fn")   # kept out of Keras' attribute tracking
    if cached is None or cached[0] != phase:
        fn = tf.function(lambda *a: iteration.iteration(model, Backend(), *a, noise_mode=noise_mode))
        model.__dict__["_deterministic_fn"] = cached = (phase, fn)
    out = cached[1](reals, arr(labels), arr(z_d), arr(z_g), arr(labels_g), tf.constant(int(step), tf.int64))
    return iteration.deterministic_outputs(model, out)
