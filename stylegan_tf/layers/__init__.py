"""Keras layers of the StyleGAN networks (NHWC, equalized learning rate, twice differentiable)."""
from stylegan_tf.layers.activation import activation_gain, apply_activation
from stylegan_tf.layers.blur import Blur
from stylegan_tf.layers.const import ConstInput
from stylegan_tf.layers.epilogue import LayerEpilogue
from stylegan_tf.layers.equalized import Bias, EqualizedConv2D, EqualizedDense
from stylegan_tf.layers.label_concat import LabelConcat
from stylegan_tf.layers.minibatch_stddev import MinibatchStddev, minibatch_stddev
from stylegan_tf.layers.noise import NoiseInjection
from stylegan_tf.layers.normalization import InstanceNorm, PixelNorm, instance_norm, pixel_norm
from stylegan_tf.layers.resample import (DownConv2D, UpConv2D, downscale2d, lerp, lerp_clip, upscale2d)
from stylegan_tf.layers.rgb import FromRGB, ToRGB
from stylegan_tf.layers.style_mod import StyleMod

__all__ = [
    "activation_gain", "apply_activation", "Blur", "ConstInput", "LayerEpilogue", "Bias", "EqualizedConv2D",
    "EqualizedDense", "LabelConcat", "MinibatchStddev", "minibatch_stddev", "NoiseInjection", "InstanceNorm",
    "PixelNorm", "instance_norm", "pixel_norm", "DownConv2D", "UpConv2D", "downscale2d", "upscale2d", "lerp",
    "lerp_clip", "FromRGB", "ToRGB", "StyleMod",
]
