"""PixelNorm (on z) and InstanceNorm (no affine), epsilon 1e-8 as in the original."""
import keras
from keras import ops

from stylegan_tf.layers.serialization import register


def pixel_norm(x, epsilon=1e-8, axis=-1):
    return x * ops.rsqrt(ops.mean(ops.square(x), axis=axis, keepdims=True) + epsilon)


def instance_norm(x, epsilon=1e-8, scale=None, shift=None):
    """Normalise each feature map of each sample to mean 0, variance 1; then `* scale + shift` if given.

    With AdaIN's `scale` and `shift` ([N, 1, 1, C], StyleMod.scale_shift) the normalisation and the modulation are
    one multiply-add: `(x - mean) * (rsqrt(var + eps) * scale) + shift`, the original's two multiplies folded
    into one per-channel factor (the same function; the float rounding of one product differs), which saves a
    full-size multiply forward and backward in every synthesis layer.
    """
    if keras.backend.standardize_dtype(x.dtype) in ("bfloat16", "float16"):
        # A bfloat16 mean over a large map keeps ~3 significant digits; the statistics (and the normalised
        # values) are computed in float32 and rounded once at the end.
        return ops.cast(instance_norm(ops.cast(x, "float32"), epsilon, scale, shift), x.dtype)
    x = x - ops.mean(x, axis=[1, 2], keepdims=True)
    factor = ops.rsqrt(ops.mean(ops.square(x), axis=[1, 2], keepdims=True) + epsilon)
    if scale is not None:
        factor = factor * ops.cast(scale, x.dtype)
    x = x * factor
    return x if shift is None else x + ops.cast(shift, x.dtype)


@register
class PixelNorm(keras.layers.Layer):
    def __init__(self, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.built = True

    def call(self, x):
        return pixel_norm(x, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@register
class InstanceNorm(keras.layers.Layer):
    def __init__(self, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.built = True

    def call(self, x):
        return instance_norm(x, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
