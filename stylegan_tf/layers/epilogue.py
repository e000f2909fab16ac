"""The end of every synthesis layer: + noise*weight -> + bias -> act -> [PixelNorm] -> [InstanceNorm] -> StyleMod."""
import keras

from stylegan_tf.layers.activation import apply_activation
from stylegan_tf.layers.equalized import Bias
from stylegan_tf.layers.noise import NoiseInjection
from stylegan_tf.layers.normalization import instance_norm, pixel_norm
from stylegan_tf.layers.serialization import register
from stylegan_tf.layers.style_mod import StyleMod


@register
class LayerEpilogue(keras.layers.Layer):
    def __init__(self, channels, dlatent_size, use_noise=True, use_pixel_norm=False, use_instance_norm=True,
                 use_styles=True, nonlinearity="lrelu", use_wscale=True, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.dlatent_size = int(channels), int(dlatent_size)
        self.use_noise, self.use_pixel_norm = bool(use_noise), bool(use_pixel_norm)
        self.use_instance_norm, self.use_styles = bool(use_instance_norm), bool(use_styles)
        self.nonlinearity, self.use_wscale = nonlinearity, bool(use_wscale)
        # Sub-layers are named as the original's variable scopes: Noise, (bias), StyleMod.
        self.noise = NoiseInjection(self.channels, name="Noise") if self.use_noise else None
        self.bias = Bias(self.channels, name="bias")
        self.style_mod = (StyleMod(self.channels, self.dlatent_size, use_wscale=self.use_wscale, name="StyleMod")
                          if self.use_styles else None)
        self.built = True

    def call(self, x, w=None, noise=None):
        if self.noise is not None:
            x = self.noise(x, noise)
        x = apply_activation(self.bias(x), self.nonlinearity)
        if self.use_pixel_norm:
            x = pixel_norm(x)
        if self.use_instance_norm:
            x = instance_norm(x)
        if self.style_mod is not None:
            x = self.style_mod(x, w)
        return x

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "dlatent_size": self.dlatent_size,
                "use_noise": self.use_noise, "use_pixel_norm": self.use_pixel_norm,
                "use_instance_norm": self.use_instance_norm, "use_styles": self.use_styles,
                "nonlinearity": self.nonlinearity, "use_wscale": self.use_wscale}
