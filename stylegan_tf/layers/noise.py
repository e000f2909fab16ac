"""Noise inputs: a per-sample N(0,1) map [N,H,W,1] times a learned per-channel weight (init 0)."""
import keras
from keras import ops

from stylegan_tf.layers.serialization import register

# What the generator does for noise: use its stored buffers, draw fresh maps, or add none. The only list of
# them; generate.py offers the same choices.
NOISE_MODES = ("const", "random", "none")


def check_noise_mode(noise_mode):
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
    return noise_mode


@register
class NoiseInjection(keras.layers.Layer):
    """x + noise * weight. `noise` is given by the caller: a fresh draw, a stored buffer, or None for none."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.weight = self.add_weight(name="weight", shape=(self.channels,), initializer="zeros")
        self.built = True

    def call(self, x, noise=None):
        if noise is None:
            return x
        return x + ops.cast(noise, x.dtype) * ops.cast(self.weight, x.dtype)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}
