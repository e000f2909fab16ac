"""PixelNorm (on z) and InstanceNorm (no affine), epsilon 1e-8 as in the original."""
import keras
from keras import ops

from stylegan_tf.layers.serialization import register


def pixel_norm(x, epsilon=1e-8, axis=-1):
    return x * ops.rsqrt(ops.mean(ops.square(x), axis=axis, keepdims=True) + epsilon)


def instance_norm(x, epsilon=1e-8):
    if keras.backend.standardize_dtype(x.dtype) in ("bfloat16", "float16"):
        # A bfloat16 mean over a large map keeps ~3 significant digits; the statistics (and the normalised
        # values) are computed in float32 and rounded once at the end.
        return ops.cast(instance_norm(ops.cast(x, "float32"), epsilon), x.dtype)
    x = x - ops.mean(x, axis=[1, 2], keepdims=True)
    return x * ops.rsqrt(ops.mean(ops.square(x), axis=[1, 2], keepdims=True) + epsilon)


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
