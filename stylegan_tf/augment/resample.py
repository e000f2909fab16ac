"""Resampling pieces the augmentations share (keras.ops, NHWC): mirror padding of any width, FIR upsampling and
downsampling along both axes, per-pixel gathers with zeros outside, and bilinear sampling at given positions."""
import numpy as np
from keras import ops


def mirror(index, size):
    """Source positions of reflect padding (edge pixel not repeated) for integer positions of any distance: the
    mirror repeats with period 2(size - 1), so a 4-pixel level can be padded by 21 as the full image is."""
    if size == 1:
        return ops.zeros_like(index)
    period = 2 * (size - 1)
    folded = ops.mod(index, period)
    return ops.where(folded < size, folded, period - folded)


def reflect_pad(images, pad_y, pad_x):
    """Reflect-pad NHWC images by pad_y rows and pad_x columns on each side."""
    _, height, width, _ = images.shape
    images = ops.take(images, mirror(np.arange(-pad_y, height + pad_y), height), axis=1)
    return ops.take(images, mirror(np.arange(-pad_x, width + pad_x), width), axis=2)


def _correlate_axis(images, taps, axis):
    """Correlate along `axis` (1 = rows, 2 = columns) with a fixed 1-D filter, no padding ('valid')."""
    channels = images.shape[-1]
    shape = (len(taps), 1) if axis == 1 else (1, len(taps))
    kernel = np.tile(np.asarray(taps, np.float32).reshape(shape + (1, 1)), (1, 1, channels, 1))
    return ops.depthwise_conv(images, kernel, strides=1, padding="valid")


def _window(images, start, length, axis, step=1):
    """images[start:start + length:step] along axis 1 or 2."""
    cut = slice(start, start + length, step)
    return images[:, cut] if axis == 1 else images[:, :, cut]


def _zero_stuff(images, axis):
    """Insert a zero after every sample along `axis` (the first step of 2x upsampling)."""
    stacked = ops.stack([images, ops.zeros_like(images)], axis=axis + 1)
    shape = list(images.shape)
    shape[0] = -1
    shape[axis] *= 2
    return ops.reshape(stacked, shape)


def upsample2x(images, taps):
    """2x upsampling with the 1-D filter `taps` (normalised to sum 1) as a true convolution with gain 2 per axis,
    padded so that output pixel 2x + 1/2 sits on input pixel x: ADA's upsample2d(f, up=2) on NHWC."""
    taps = 2.0 * np.asarray(taps, np.float64)[::-1]
    before, after = (len(taps) + 1) // 2, (len(taps) - 2) // 2
    for axis in (1, 2):
        images = _zero_stuff(images, axis)
        pads = [(0, 0)] * 4
        pads[axis] = (before, after)
        images = _correlate_axis(ops.pad(images, pads), taps, axis)
    return images


def downsample2x(images, taps, crop):
    """Correlate with `taps` and keep every second sample, cropping `crop` samples of the input on each side
    first: ADA's downsample2d(f, down=2, padding=-crop, flip_filter=True) on NHWC."""
    taps = np.asarray(taps, np.float64)
    trim = crop - (len(taps) - 1) // 2           # the filter's own padding, taken off the crop
    for axis in (1, 2):
        n = images.shape[axis]
        images = _window(images, trim, n - 2 * trim, axis)
        images = _correlate_axis(images, taps, axis)
        images = _window(images, 0, images.shape[axis], axis, step=2)
    return images


def gather_pixels(images, iy, ix):
    """images [N, H, W, C] at integer positions iy, ix [N, ...] (one position set per sample) -> [N, ..., C];
    zero where a position falls outside the image."""
    n, height, width, channels = images.shape
    inside = (iy >= 0) & (iy < height) & (ix >= 0) & (ix < width)
    flat = ops.reshape(images, [-1, channels])
    batch = ops.reshape(ops.arange(ops.shape(iy)[0], dtype="int32"), [-1] + [1] * (len(iy.shape) - 1))
    index = (batch * height + ops.clip(iy, 0, height - 1)) * width + ops.clip(ix, 0, width - 1)
    return ops.take(flat, index, axis=0) * ops.expand_dims(ops.cast(inside, images.dtype), -1)


def bilinear_sample(images, y, x):
    """Bilinear samples of images [N, H, W, C] at float pixel positions y, x [N, Ho, Wo] (pixel centres at
    integers), zeros outside: grid_sample(mode='bilinear', padding_mode='zeros') on pixel coordinates."""
    y0, x0 = ops.floor(y), ops.floor(x)
    wy, wx = ops.expand_dims(y - y0, -1), ops.expand_dims(x - x0, -1)
    y0, x0 = ops.cast(y0, "int32"), ops.cast(x0, "int32")
    top = gather_pixels(images, y0, x0) * (1 - wx) + gather_pixels(images, y0, x0 + 1) * wx
    bottom = gather_pixels(images, y0 + 1, x0) * (1 - wx) + gather_pixels(images, y0 + 1, x0 + 1) * wx
    return top * (1 - wy) + bottom * wy
