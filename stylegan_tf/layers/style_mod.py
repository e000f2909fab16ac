"""AdaIN style modulation: style = dense(w, 2C, gain 1) + bias; x * (scale + 1) + shift."""
import keras
from keras import ops

from stylegan_tf.layers.equalized import Bias, EqualizedDense
from stylegan_tf.layers.serialization import register


@register
class StyleMod(keras.layers.Layer):
    def __init__(self, channels, dlatent_size, use_wscale=True, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.dlatent_size, self.use_wscale = int(channels), int(dlatent_size), bool(use_wscale)
        self.dense = EqualizedDense(2 * self.channels, self.dlatent_size, gain=1.0, use_wscale=self.use_wscale,
                                    name="dense")
        self.bias = Bias(2 * self.channels, name="bias")
        self.built = True

    def scale_shift(self, w, dtype):
        """The style of `w` as AdaIN's per-channel (scale + 1, shift), each [N, 1, 1, C] in `dtype`."""
        # The style is computed in the dense layer's compute dtype and cast once to `dtype`.
        style = ops.cast(self.bias(self.dense(w)), dtype)
        # The first C columns scale, the last C shift (the original's [N, 2, C] reshape).
        return style[:, None, None, :self.channels] + 1.0, style[:, None, None, self.channels:]

    def call(self, x, w):
        scale, shift = self.scale_shift(w, x.dtype)
        return x * scale + shift

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "dlatent_size": self.dlatent_size,
                "use_wscale": self.use_wscale}
