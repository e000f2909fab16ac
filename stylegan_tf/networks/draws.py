"""The generator's random draws (noise maps, style-mixing latents and cutoffs).

With `seed` (a [2] int tensor) a draw is stateless: `salt` tells apart the draws of one call, and a training step
keyed by its step number draws the same numbers however often it is traced (a resume, a new phase). Without a seed
the backend's global generator is used, as in the original.

keras.random has no fold_in, so the seeded draws go to each backend's own stateless ops. Under TensorFlow they are
the ones training has always used (tf.random.stateless_*, stateless_fold_in), so a resumed run or a stored test
number draws exactly what it drew before; under JAX the seed is a raw [2] uint32 PRNG key.
"""
import keras

_BACKEND = keras.backend.backend()

if _BACKEND == "tensorflow":
    import tensorflow as tf
elif _BACKEND == "jax":
    import jax
    import jax.numpy as jnp


def _seeded_backend():
    if _BACKEND not in ("tensorflow", "jax"):
        raise RuntimeError(f"seeded random draws need Keras' TensorFlow or JAX backend, not {_BACKEND!r}")


def child(seed, salt):
    """An independent seed for a group of draws (None stays None)."""
    if seed is None:
        return None
    _seeded_backend()
    if _BACKEND == "tensorflow":
        return tf.random.experimental.stateless_fold_in(seed, salt)
    return jax.random.fold_in(jnp.asarray(seed).astype(jnp.uint32), salt)


def uniform(shape, seed=None, salt=0, minval=0.0, maxval=1.0, dtype="float32"):
    """Uniform in [minval, maxval); an integer `dtype` draws integers."""
    if _BACKEND == "tensorflow":
        if seed is None:
            return tf.random.uniform(shape, minval=minval, maxval=maxval, dtype=dtype)
        return tf.random.stateless_uniform(shape, seed=child(seed, salt), minval=minval, maxval=maxval, dtype=dtype)
    integer = "int" in str(dtype)
    if seed is None:
        draw = keras.random.randint if integer else keras.random.uniform
        return draw(shape, minval=minval, maxval=maxval, dtype=dtype)
    key = child(seed, salt)
    draw = jax.random.randint if integer else jax.random.uniform
    return draw(key, shape, minval=minval, maxval=maxval, dtype=dtype)


def normal(shape, seed=None, salt=0, dtype="float32"):
    if _BACKEND == "tensorflow":
        if seed is None:
            return tf.random.normal(shape, dtype=dtype)
        return tf.random.stateless_normal(shape, seed=child(seed, salt), dtype=dtype)
    if seed is None:
        return keras.random.normal(shape, dtype=dtype)
    key = child(seed, salt)
    return jax.random.normal(key, shape, dtype=dtype)


def call_seed():
    """The seed to hand one call of a compiled inference function that may draw noise.

    A tf.function draws from TensorFlow's global generator inside the graph (None: unseeded, as always). A jitted
    JAX function cannot hold generator state, so each call gets a fresh key drawn outside it from Keras' global
    seed generator (reproducible after `keras.utils.set_random_seed`)."""
    if _BACKEND == "tensorflow":
        return None
    return keras.random.randint((2,), 0, 2**31 - 1, dtype="int32")


def seed_stream(seed):
    """`call_seed` made reproducible: successive calls return the seeds of one NumPy RandomState(`seed`), so the
    noise a compiled inference function draws call after call is the same every run, on either backend.

    Example:
        >>> next_seed = seed_stream(123)
        >>> a, b = next_seed(), next_seed()     # two different seeds, the same two every time
    """
    import numpy as np
    rng = np.random.RandomState(int(seed))
    return lambda: keras.ops.convert_to_tensor(rng.randint(0, 2**31 - 1, size=2), "int32")
