"""Random draws that are the same numbers on TensorFlow and JAX: a counter hashed with the seed, in keras.ops.

The networks' draws (networks/draws.py) use each backend's own stateless generator, so one seed draws different
numbers under TensorFlow and JAX. The augmentations must not: the same seed has to give the same augmented
batch on both backends. Here every number is a 32-bit integer hash of (seed, stream, element index), computed
with uint32 multiply/xor/shift, which both backends do bit for bit; a uniform is the hash's top 24 bits times
2^-24 (exact in float32, so comparisons such as `u < p` decide the same on both), a normal comes from two
uniforms by Box-Muller (the backends' log/cos may differ in the last bit: about 1e-7 relative).

The hash is Chris Wellons' "lowbias32" integer mixer, applied in a chain over the seed words, the stream and the
counter. It is for augmentation, not for cryptography.
"""
import zlib

import numpy as np
from keras import ops

_MUL1, _MUL2 = 0x7FEB352D, 0x846CA68B
_TWO_PI = 2 * np.pi


def _u32(value):
    return ops.convert_to_tensor(np.uint32(value), "uint32")


def _mix(x):
    """lowbias32: a bijection on uint32 with good avalanche."""
    x = ops.bitwise_xor(x, ops.right_shift(x, _u32(16)))
    x = ops.multiply(x, _u32(_MUL1))
    x = ops.bitwise_xor(x, ops.right_shift(x, _u32(15)))
    x = ops.multiply(x, _u32(_MUL2))
    return ops.bitwise_xor(x, ops.right_shift(x, _u32(16)))


def seed_words(seed):
    """The seed as two uint32 words: a Python int (any size), or an integer tensor/array of two elements
    (the [2] seeds the training step carries; negative int32 words are taken bit for bit)."""
    if isinstance(seed, (int, np.integer)):
        seed = int(seed)
        return _u32(seed & 0xFFFFFFFF), _u32((seed >> 32) & 0xFFFFFFFF)
    words = ops.reshape(ops.convert_to_tensor(seed), [-1])
    if "int" not in str(words.dtype) or words.shape[0] != 2:
        raise ValueError(f"an augmentation seed is an int or two integers, not {words.dtype} {tuple(words.shape)}")
    words = ops.cast(words, "uint32")
    return words[0], words[1]


def _stream_key(seed, stream):
    """One uint32 key per (seed, named stream): independent streams for the parameters of one call."""
    w0, w1 = seed_words(seed)
    salt = _u32(zlib.crc32(stream.encode()))
    return _mix(ops.add(w1, _mix(ops.add(w0, _mix(salt)))))


def bits(seed, stream, shape):
    """uint32 hashes of shape `shape` for `stream` under `seed`."""
    count = int(np.prod(shape))
    key = _stream_key(seed, stream)
    counter = ops.cast(ops.arange(count, dtype="int32"), "uint32")
    return ops.reshape(_mix(ops.add(_mix(ops.bitwise_xor(counter, key)), key)), shape)


def uniform(seed, stream, shape):
    """float32 uniform in [0, 1) on a grid of 2^-24, the same on every backend.

    Example:
        >>> u = uniform(7, "xflip", (4,))      # four numbers, identical under TensorFlow and JAX
    """
    return ops.cast(ops.right_shift(bits(seed, stream, shape), _u32(8)), "float32") * np.float32(2.0 ** -24)


def normal(seed, stream, shape):
    """float32 standard normal (Box-Muller on two uniforms of the stream)."""
    pair = uniform(seed, stream, (2,) + tuple(shape))
    radius = ops.sqrt(-2.0 * ops.log(1.0 - pair[0]))          # 1 - u is in (0, 1]: no log(0)
    return radius * ops.cos(np.float32(_TWO_PI) * pair[1])
