"""The end of every synthesis layer: + noise*weight -> + bias -> act -> [PixelNorm] -> [InstanceNorm] -> StyleMod."""
import keras
from keras import ops

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
        # Training in bfloat16 on TensorFlow (CPU), the chain runs in float32: instance norm needs float32
        # statistics anyway, and casting once after the convolution instead of before the norm moves noise, bias
        # and lrelu to float32, whose elementwise kernels are ~2x faster than bfloat16's there (a bf16 demo step
        # 44 -> 39 ms, docs/performance.md). Its sub-layers are float32 so that Keras does not cast their inputs
        # back. (XLA, on JAX, fuses the chain whatever its dtype; float16 on a GPU keeps it as it was.)
        self.chain_in_float32 = (self.use_instance_norm and self.dtype_policy.compute_dtype == "bfloat16"
                                 and keras.backend.backend() == "tensorflow")
        sub = {"dtype": "float32"} if self.chain_in_float32 else {}
        # Sub-layers are named as the original's variable scopes: Noise, (bias), StyleMod.
        self.noise = NoiseInjection(self.channels, name="Noise", **sub) if self.use_noise else None
        self.bias = Bias(self.channels, name="bias", **sub)
        self.style_mod = (StyleMod(self.channels, self.dlatent_size, use_wscale=self.use_wscale, name="StyleMod",
                                   **sub) if self.use_styles else None)
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
        dtype = x.dtype
        if self.chain_in_float32:
            x = ops.cast(x, "float32")
        if self.noise is not None:
            x = self.noise(x, noise)
        x = apply_activation(self.bias(x), self.nonlinearity)
        if self.use_pixel_norm:
            x = pixel_norm(x)
        if self.use_instance_norm:
            # With styles, AdaIN as one multiply-add (see instance_norm), in float32 as the statistics.
            scale, shift = self.style_mod.scale_shift(w, "float32") if self.style_mod is not None else (None, None)
            x = instance_norm(x, scale=scale, shift=shift)
        elif self.style_mod is not None:
            x = self.style_mod(x, w)
        return ops.cast(x, dtype)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "dlatent_size": self.dlatent_size,
                "use_noise": self.use_noise, "use_pixel_norm": self.use_pixel_norm,
                "use_instance_norm": self.use_instance_norm, "use_styles": self.use_styles,
                "nonlinearity": self.nonlinearity, "use_wscale": self.use_wscale}
