"""Equalized learning rate: raw N(0, 1/lrmul) weights scaled at run time by gain/sqrt(fan_in)*lrmul."""
import keras
import numpy as np
from keras import ops

from stylegan_tf.layers.serialization import register


def runtime_coef(fan_in, gain, use_wscale, lrmul):
    if use_wscale:
        return float(gain / np.sqrt(fan_in) * lrmul), 1.0 / lrmul
    return float(lrmul), float(gain / np.sqrt(fan_in) / lrmul)


@register
class EqualizedDense(keras.layers.Layer):
    """x @ (w * coef), without bias (the original adds bias separately, after noise in G)."""

    def __init__(self, units, in_features, gain=float(np.sqrt(2)), lrmul=1.0, use_wscale=True, **kwargs):
        super().__init__(**kwargs)
        self.units, self.in_features = int(units), int(in_features)
        self.gain, self.lrmul, self.use_wscale = float(gain), float(lrmul), bool(use_wscale)
        self.coef, init_std = runtime_coef(self.in_features, self.gain, self.use_wscale, self.lrmul)
        self.weight = self.add_weight(name="weight", shape=(self.in_features, self.units),
                                      initializer=keras.initializers.RandomNormal(0.0, init_std))
        self.built = True

    def call(self, x):
        if len(x.shape) > 2:
            x = ops.reshape(x, [-1, self.in_features])
        # Weights follow the input's dtype: a bfloat16 inference (networks.inference.computing_in) feeds bf16.
        return ops.matmul(x, ops.cast(self.weight * self.coef, x.dtype))

    def get_config(self):
        return {**super().get_config(), "units": self.units, "in_features": self.in_features, "gain": self.gain,
                "lrmul": self.lrmul, "use_wscale": self.use_wscale}


@register
class EqualizedConv2D(keras.layers.Layer):
    """Stride-1 SAME conv with an HWIO kernel (same layout as the original), no bias."""

    def __init__(self, filters, in_channels, kernel=3, gain=float(np.sqrt(2)), lrmul=1.0, use_wscale=True,
                 **kwargs):
        super().__init__(**kwargs)
        if kernel < 1 or kernel % 2 != 1:
            raise ValueError(f"kernel must be a positive odd size, got {kernel}")
        self.filters, self.in_channels, self.kernel = int(filters), int(in_channels), int(kernel)
        self.gain, self.lrmul, self.use_wscale = float(gain), float(lrmul), bool(use_wscale)
        self.coef, init_std = runtime_coef(self.kernel * self.kernel * self.in_channels, self.gain,
                                           self.use_wscale, self.lrmul)
        self.weight = self.add_weight(name="weight", shape=(self.kernel, self.kernel, self.in_channels,
                                                            self.filters),
                                      initializer=keras.initializers.RandomNormal(0.0, init_std))
        self.built = True

    def scaled_kernel(self, dtype=None):
        w = self.weight * self.coef
        return w if dtype is None else ops.cast(w, dtype)

    def call(self, x):
        return ops.conv(x, self.scaled_kernel(x.dtype), strides=1, padding="same")

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "in_channels": self.in_channels,
                "kernel": self.kernel, "gain": self.gain, "lrmul": self.lrmul, "use_wscale": self.use_wscale}


@register
class Bias(keras.layers.Layer):
    """Per-channel bias (last axis), zero-initialised, multiplied by lrmul at run time."""

    def __init__(self, channels, lrmul=1.0, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.lrmul = int(channels), float(lrmul)
        self.bias = self.add_weight(name="bias", shape=(self.channels,), initializer="zeros")
        self.built = True

    def call(self, x):
        b = self.bias * self.lrmul if self.lrmul != 1.0 else self.bias
        return x + ops.cast(b, x.dtype)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "lrmul": self.lrmul}
