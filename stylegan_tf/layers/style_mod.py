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

    def call(self, x, w):
        # The style is computed in w's precision (float32) and applied in x's (bfloat16 under `computing_in`).
        style = ops.cast(self.bias(self.dense(w)), x.dtype)
        # The first C columns scale, the last C shift (the original's [N, 2, C] reshape).
        scale = style[:, None, None, :self.channels]
        shift = style[:, None, None, self.channels:]
        return x * (scale + 1.0) + shift

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "dlatent_size": self.dlatent_size,
                "use_wscale": self.use_wscale}
