"""The generator's random draws (noise maps, style-mixing latents and cutoffs).

With `seed` (a [2] int tensor) a draw is stateless: `salt` tells apart the draws of one call, and a training step
keyed by its step number draws the same numbers however often it is traced (a resume, a new phase). Without a seed
the global TF generator is used, as in the original.
"""
import tensorflow as tf


def child(seed, salt):
    """An independent seed for a group of draws (None stays None)."""
    return None if seed is None else tf.random.experimental.stateless_fold_in(seed, salt)


def uniform(shape, seed=None, salt=0, **kwargs):
    if seed is None:
        return tf.random.uniform(shape, **kwargs)
    return tf.random.stateless_uniform(shape, seed=child(seed, salt), **kwargs)


def normal(shape, seed=None, salt=0, dtype=tf.float32):
    if seed is None:
        return tf.random.normal(shape, dtype=dtype)
    return tf.random.stateless_normal(shape, seed=child(seed, salt), dtype=dtype)
