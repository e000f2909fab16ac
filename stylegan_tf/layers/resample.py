"""Nearest upscale, box downscale, and the resampling convolutions (plain and fused) of StyleGAN.

The fused forms are what the original uses at 128x128 and above. The fused up-conv is a stride-2 transposed
conv with a 4x4 kernel made by summing the four shifted copies of the 3x3 kernel; it equals nearest-up followed
by a conv with the spatially *flipped* 3x3 kernel. So UpConv2D computes its unfused form (nearest-up + conv) as
the same transposed conv with the kernel flipped back: the same function at 4/9 of the multiply-adds. The fused
down-conv is a stride-2 conv with the shifted sum times 1/4 and equals conv followed by 2x2 box averaging, with
no flip; DownConv2D runs that form at every resolution (4/9 of the multiply-adds again).
"""
import numpy as np
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


def shifted_sum_matrix(k, flip=False, scale=1.0):
    """[(k+1)^2, k^2] matrix T: T @ w.reshape(k*k, -1) is the (k+1)x(k+1) sum of the four one-pixel shifts of the
    k x k kernel w (flipped in both spatial axes if `flip`) times `scale`, flattened. One small matmul instead of
    pad + slices + adds + flip: the kernel of a 512-channel up-conv is rebuilt on every call, and the slicing form
    cost more than the conv in bf16."""
    t = np.zeros([k + 1, k + 1, k, k], np.float64)
    for i in range(k):
        for j in range(k):
            si, sj = (k - 1 - i, k - 1 - j) if flip else (i, j)
            t[si:si + 2, sj:sj + 2, i, j] = scale
    return t.reshape((k + 1) ** 2, k * k)


def _shifted_kernel(weight, coef, flip, transpose, dtype):
    """The (k+1)x(k+1) shifted-sum kernel of an HWIO `weight` times `coef` (flipped if `flip`), as
    [k+1, k+1, out, in] if `transpose` (conv_transpose's layout) else HWIO, in `dtype`."""
    k = weight.shape[0]
    if transpose:
        weight = ops.transpose(weight, [0, 1, 3, 2])
    shape = weight.shape[2:]
    t = ops.cast(shifted_sum_matrix(k, flip, coef), weight.dtype)
    w = ops.matmul(t, ops.reshape(weight, [k * k, -1]))
    return ops.cast(ops.reshape(w, [k + 1, k + 1, *shape]), dtype)


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
    """2x nearest upscale + conv; `fused=True` uses the transposed-conv form of the original (>= 128 output).

    Both forms run as one stride-2 transposed conv (the unfused one with its kernel flipped, see `call`)."""

    def call(self, x):
        # Nearest-up + conv(w) is the transposed conv with the flipped kernel: the same function with 4
        # multiply-adds per output pixel instead of 9 (2x faster on CPU at 8^2-64^2, where the original
        # upscales first). Only the float summation order differs (~3e-6 relative).
        w = _shifted_kernel(self.weight, self.coef, flip=not self.fused, transpose=True, dtype=x.dtype)
        return ops.conv_transpose(x, w, strides=2, padding="same")


@register
class DownConv2D(_ResampleConv2D):
    """conv + 2x box downscale; `fused=True` uses one stride-2 conv (the original's form at >= 128 input).

    Both forms run as that stride-2 conv (see `call`)."""

    def call(self, x):
        # Conv(w) then 2x2 box averaging is the stride-2 conv with the shifted-sum kernel / 4, which the original
        # runs from 128^2 on: the same function with 16 multiply-adds per output pixel instead of 36, and no
        # 6-D box reduction (a slow strided Sum in TensorFlow, and again in each gradient). Only the float
        # summation order differs.
        w = _shifted_kernel(self.weight, self.coef * 0.25, flip=False, transpose=False, dtype=x.dtype)
        return ops.conv(x, w, strides=2, padding="same")
