"""Nearest upscale, box downscale, and the resampling convolutions (plain and fused) of StyleGAN.

The fused forms are what the original uses at 128x128 and above. The fused up-conv is a stride-2 transposed
conv with a 4x4 kernel made by summing the four shifted copies of the 3x3 kernel; it equals nearest-up followed
by a conv with the spatially *flipped* 3x3 kernel. The fused down-conv is a stride-2 conv with the shifted sum
times 1/4 and equals conv followed by 2x2 box averaging, with no flip.
"""
from keras import ops

from stylegan_tf.layers.equalized import EqualizedConv2D
from stylegan_tf.layers.serialization import register


def upscale2d(x, factor=2):
    """Nearest-neighbour upscaling of NHWC `x` by an integer factor (reshape+tile: exact, twice differentiable)."""
    factor = int(factor)
    if factor == 1:
        return x
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    x = ops.reshape(x, [-1, h, 1, w, 1, c])
    x = ops.tile(x, [1, 1, factor, 1, factor, 1])
    return ops.reshape(x, [-1, h * factor, w * factor, c])


def downscale2d(x, factor=2):
    """Box-average downscaling of NHWC `x` by an integer factor."""
    factor = int(factor)
    if factor == 1:
        return x
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    if factor == 2:
        # The original's 2x path is a [0.5, 0.5] x [0.5, 0.5] filter, i.e. four products by 0.25 then summed.
        x = ops.reshape(x, [-1, h // 2, 2, w // 2, 2, c])
        return ops.sum(x * 0.25, axis=[2, 4])
    x = ops.reshape(x, [-1, h // factor, factor, w // factor, factor, c])
    return ops.mean(x, axis=[2, 4])


def lerp(a, b, t):
    # t (the lod fade) stays float32 when mixed precision computes a and b in a lower precision.
    return a + (b - a) * ops.cast(t, a.dtype)


def lerp_clip(a, b, t):
    return lerp(a, b, ops.clip(t, 0.0, 1.0))


def _shifted_sum(w):
    """3x3 (k x k) HWIO kernel -> (k+1)x(k+1) sum of its four one-pixel shifts."""
    w = ops.pad(w, [[1, 1], [1, 1], [0, 0], [0, 0]])
    return w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]


def resolve_fused(fused_scale, out_res):
    if fused_scale == "auto":
        return out_res >= 128
    if fused_scale in (True, False):
        return bool(fused_scale)
    raise ValueError(f"fused_scale must be True, False or 'auto', got {fused_scale!r}")


class _ResampleConv2D(EqualizedConv2D):
    """An equalized 3x3 conv tied to a 2x resampling; `fused` picks the original's one-op form."""

    def __init__(self, filters, in_channels, kernel=3, fused=False, **kwargs):
        super().__init__(filters, in_channels, kernel=kernel, **kwargs)
        self.fused = bool(fused)

    def get_config(self):
        return {**super().get_config(), "fused": self.fused}


@register
class UpConv2D(_ResampleConv2D):
    """2x nearest upscale + conv; `fused=True` uses the transposed-conv form of the original (>= 128 output)."""

    def call(self, x):
        w = self.scaled_kernel()
        if not self.fused:
            return ops.conv(upscale2d(x), w, strides=1, padding="same")
        w = _shifted_sum(ops.transpose(w, [0, 1, 3, 2]))  # conv_transpose wants [k, k, out, in]
        return ops.conv_transpose(x, w, strides=2, padding="same")


@register
class DownConv2D(_ResampleConv2D):
    """conv + 2x box downscale; `fused=True` uses one stride-2 conv (the original's form at >= 128 input)."""

    def call(self, x):
        w = self.scaled_kernel()
        if not self.fused:
            return downscale2d(ops.conv(x, w, strides=1, padding="same"))
        return ops.conv(x, _shifted_sum(w) * 0.25, strides=2, padding="same")
