"""Shared helpers for the numpy-in/numpy-out inference API (level choice from lod, batching, compiling)."""
import contextlib
import math

import keras
import numpy as np

# Inference precisions: name -> the dtype activations are computed in. fp32 is the faithful one; bf16 (fast on
# CPUs with AMX and on GPUs) changes the images by ~1e-2 and is opt-in everywhere it is offered.
PRECISIONS = {"fp32": "float32", "bf16": "bfloat16"}


def check_precision(precision):
    """`precision` if it is one of PRECISIONS, else ValueError naming the choices."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


@contextlib.contextmanager
def computing_in(layer, precision):
    """Inside the block, `layer` and its sublayers run as the numpy inference API wants them: in the dtype of the
    activations they are given, and (TensorFlow) with large epilogues fused by XLA (LayerEpilogue).

    Keras casts every float input of a float32 layer back to float32 (autocast); the layers of this project
    instead cast their weights to their input's dtype, so with autocast off a bfloat16 activation flows through
    in bfloat16 while the variables stay float32 (nothing is copied). fp32 keeps autocast as it is.

    Args:
        layer: a Keras layer or model (e.g. a generator's synthesis network).
        precision: a key of PRECISIONS.

    Example:
        >>> with computing_in(G.synthesis, "bf16"):
        ...     img = G.synthesis(w, level=0, dtype="bfloat16")
    """
    check_precision(precision)
    layers = list(layer._flatten_layers(include_self=True, recursive=True))
    saved = [(sub.autocast, sub.__dict__.get("fuse_elementwise")) for sub in layers]
    try:
        for sub in layers:
            if precision != "fp32":
                sub.autocast = False
            if hasattr(sub, "fuse_elementwise"):
                sub.fuse_elementwise = True
        yield layer
    finally:
        for sub, (autocast, fuse) in zip(layers, saved):
            sub.autocast = autocast
            if fuse is None:
                sub.__dict__.pop("fuse_elementwise", None)
            else:
                sub.fuse_elementwise = fuse


def level_for_lod(lod, max_level):
    """Static structure for a concrete lod: (level, fade). Fade is off when the lower path has weight 0."""
    lod = float(lod)
    if not np.isfinite(lod):
        raise ValueError(f"lod must be a finite number, got {lod}")
    level = int(min(max(math.floor(lod), 0), max_level))
    return level, bool(level < max_level and lod - level > 0)


def batched(fn, arrays, batch_size, on_batch=None):
    """Run `fn(*batch)` over the first axis of `arrays` in chunks (None entries pass through as None) and
    concatenate what it returns as numpy; None when nothing came back (no rows, or `fn` returns None).
    `on_batch(count)` is called after each chunk (a progress bar)."""
    n = len(next(a for a in arrays if a is not None))
    batch_size = max(int(batch_size), 1)
    outs = []
    for start in range(0, n, batch_size):
        result = fn(*[None if a is None else a[start:start + batch_size] for a in arrays])
        if result is not None:
            outs.append(np.asarray(result))
        if on_batch is not None:
            on_batch(min(batch_size, n - start))
    return np.concatenate(outs, axis=0) if outs else None


def compiled(fn, variables):
    """`fn` compiled for the current Keras backend; it reads `variables` (a model's `.variables`).

    TensorFlow's tf.function reads variables when it runs. jax.jit would bake their values in at trace time,
    so under JAX the values go in as arguments each call, through a StatelessScope: a later `assign` (lod,
    imported weights, the noise buffers generate writes) is seen without retracing.

    Under TensorFlow every argument of rank >= 2 (the batch inputs `batched` chunks: z, w, labels, images) is
    traced with its batch dimension unknown, before the first call: one graph per argument structure, whatever
    batch sizes came first. Otherwise the first call's batch size got a graph of its own and later sizes a
    relaxed one, and Grappler rewrites a graph with a known batch size differently (it rounds differently),
    so the same weights gave different images depending on what ran before in the process (the training
    loop's fakes grid): a few float32 ulps, 0.1 under mixed precision's bfloat16."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        function = tf.function(fn, reduce_retracing=True, autograph=False)
        traced = set()

        def spec(x):
            if not (tf.is_tensor(x) or isinstance(x, np.ndarray)):
                return x        # None, or a Python value tf.function traces as a constant
            shape = tuple(x.shape)
            return tf.TensorSpec(((None,) + shape[1:]) if len(shape) >= 2 else shape, tf.as_dtype(x.dtype))

        def call(*args, **kwargs):
            if kwargs:
                return function(*args, **kwargs)
            specs = tuple(spec(a) for a in args)
            key = repr(specs)
            if key not in traced:
                # Calls whose batch size differs dispatch to this trace (it is their supertype): no retracing.
                function.get_concrete_function(*specs)
                traced.add(key)
            return function(*args)
        call.function = function
        return call
    if backend == "jax":
        import jax
        variables = list(variables)

        @jax.jit
        def pure(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn(*args)

        return lambda *args: pure([v.value for v in variables], *args)
    return fn


def check_latents(G, z, labels):
    """A generator's numpy inputs, checked: z [N, latent_size] float32, labels [N, label_size] iff conditional."""
    z = np.asarray(z, dtype=np.float32)
    if z.ndim != 2 or z.shape[1] != G.latent_size:
        raise ValueError(f"z must have shape [N, {G.latent_size}], got {list(z.shape)}")
    if not G.label_size:
        return z, None
    if labels is None:
        raise ValueError(f"this generator is conditional: pass labels of shape [N, {G.label_size}]")
    labels = np.asarray(labels, dtype=np.float32)
    if labels.shape != (z.shape[0], G.label_size):
        raise ValueError(f"labels must have shape [{z.shape[0]}, {G.label_size}], got {list(labels.shape)}")
    return z, labels
