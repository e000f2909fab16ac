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

    # Set (per layer) by networks.inference.computing_in for the numpy inference API: on TensorFlow, a layer
    # with a large activation runs this elementwise chain as one XLA cluster (one pass over memory instead of
    # ~11; 1.7x faster at 256^2x64 on CPU). Under JAX the whole inference function is one XLA program already.
    fuse_elementwise = False
    FUSE_MIN_ELEMENTS = 2 ** 20       # per image (H*W*C): below it the compile time is not repaid

    def call(self, x, w=None, noise=None):
        if self.fuse_elementwise and keras.backend.backend() == "tensorflow" and \
                x.shape[1] is not None and x.shape[1] * x.shape[2] * x.shape[3] >= self.FUSE_MIN_ELEMENTS:
            import tensorflow as tf
            if getattr(self, "_fused_chain", None) is None:
                # A closure, not the bound method: tf.function would try to trace the layer as an argument.
                self._fused_chain = tf.function(lambda x, w, noise: self._chain(x, w, noise), jit_compile=True,
                                                autograph=False)
            # A stored noise buffer is a Keras variable: tf.function takes its value as a tensor.
            return self._fused_chain(x, w, None if noise is None else tf.convert_to_tensor(noise))
        return self._chain(x, w, noise)

    def _chain(self, x, w=None, noise=None):
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
