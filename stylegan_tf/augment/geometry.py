"""ADA's geometric augmentations: per-sample 3x3 inverse matrices and their execution on NHWC images.

Matrices act on homogeneous pixel coordinates with the origin at the image centre; `G_inv @ output position ->
input position`. Execution follows ADA (Karras et al. 2020, appendix B.4): reflect-pad, upsample 2x with the
orthogonal 'sym6' low-pass, sample bilinearly at the transformed positions, filter with the same low-pass and
downsample 2x. Because the wavelet is orthogonal, up- then downsampling is the identity, so an identity matrix
(and a flip, a 90-degree rotation, an integer shift) reproduces the pixels to float round-off, and arbitrary
transforms do not alias.

ADA's resampling is exact only up to its filter: 'sym6' is not symmetric, so a mirror or a quarter turn of the
upsampled image does not undo its phase, and ADA's own x-flip differs from the mirrored pixels (by up to 0.02 on
smooth images, 0.28 on pixel noise in [-1, 1]). Here a sample whose matrix only permutes pixels (flips, quarter
turns, whole-pixel shifts: ADA's "pixel blitting" alone) is copied pixel by pixel instead, with the same reflect
padding; every other sample goes through ADA's resampling, which this module reproduces to float round-off.

Unlike ADA, which pads by the margin that the batch's transforms need (a shape that depends on the draws), the
padding here is always the largest ADA uses, the image size minus one: shapes stay static under jit and XLA.
Output pixels are the same, because ADA's margin already keeps every sample clear of the padding's edge (and
where it clips at size - 1, so does this).
"""
import numpy as np
from keras import ops

from stylegan_tf.augment.resample import (bilinear_sample, downsample2x, gather_pixels, mirror, reflect_pad,
                                         upsample2x)

# The orthogonal 'sym6' symlet low-pass (Daubechies' published coefficients, as in PyWavelets).
SYM6 = np.array([0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
                 0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
                 -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148])
GEOM_FILTER = SYM6 / SYM6.sum()
FILTER_PAD = len(SYM6) // 4    # the filter's reach in input pixels (ADA's Hz_pad)


def _stack_matrix(rows, n):
    """3x3 (or 4x4) per-sample matrices from rows of scalars or [N] tensors."""
    entries = [ops.broadcast_to(ops.cast(e, "float32"), (n,)) for row in rows for e in row]
    return ops.reshape(ops.stack(entries, axis=-1), (n, len(rows), len(rows[0])))


def translate(tx, ty, n):
    return _stack_matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], n)


def scale(sx, sy, n):
    return _stack_matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], n)


def rotate(cos, sin, n):
    """Rotation by the angle with this cosine and sine (given, so that quarter turns are exact)."""
    return _stack_matrix([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]], n)


def inverse_matrix(params, height, width, n):
    """The composed inverse matrix [N, 3, 3] of the drawn geometric parameters, in ADA's order.

    Each entry of `params` is ADA's drawn value (identity where the draw said no): `xflip` 0/1, `rotate90`
    quarter turns 0-3, `xint` [N, 2] and `xfrac` [N, 2] translations as fractions of the image size (`xint`
    rounded to whole pixels), `scale` and `aniso` factors, `rotate_pre` / `rotate_post` angles. Missing
    entries are identity.
    """
    g = ops.broadcast_to(ops.eye(3), (n, 3, 3))
    if "xflip" in params:
        g = g @ scale(1 - 2 * params["xflip"], 1, n)
    if "rotate90" in params:
        quarter = ops.cast(params["rotate90"], "int32")
        g = g @ rotate(ops.take(np.float32([1, 0, -1, 0]), quarter), ops.take(np.float32([0, 1, 0, -1]), quarter), n)
    if "xint" in params:
        g = g @ translate(-ops.round(params["xint"][:, 0] * width), -ops.round(params["xint"][:, 1] * height), n)
    if "scale" in params:
        g = g @ scale(1 / params["scale"], 1 / params["scale"], n)
    for key, factor in (("rotate_pre", None), ("aniso", "aniso"), ("rotate_post", None)):
        if key not in params:
            continue
        if factor:
            g = g @ scale(1 / params[key], params[key], n)
        else:
            g = g @ rotate(ops.cos(params[key]), ops.sin(params[key]), n)
    if "xfrac" in params:
        g = g @ translate(-params["xfrac"][:, 0] * width, -params["xfrac"][:, 1] * height, n)
    return g


def at_level(g_inv, factor):
    """The same transform for an image `factor` times the size (pixel translations scale, the rest stays)."""
    n = g_inv.shape[0]
    return scale(factor, factor, n) @ g_inv @ scale(1 / factor, 1 / factor, n)


def apply_geometry(images, g_inv, exact_blits=True):
    """Transform NHWC images by per-sample inverse matrices [N, 3, 3] (pixel units, origin at the centre).

    With `exact_blits`, samples whose matrix permutes pixels are copied exactly; without, every sample goes
    through ADA's resampling (what ADA itself does).

    Example:
        >>> flipped = apply_geometry(images, scale(-1.0, 1.0, n))     # mirror left-right, exactly
    """
    resampled = _resample(images, g_inv)
    if not exact_blits:
        return resampled
    return ops.where(_permutes_pixels(g_inv)[:, None, None, None], _blit(images, g_inv), resampled)


def _output_grid(height, width):
    """[3, H*W] homogeneous output pixel centres, origin at the image centre."""
    oy, ox = np.meshgrid(np.arange(height) - (height - 1) / 2, np.arange(width) - (width - 1) / 2, indexing="ij")
    return np.stack([ox.ravel(), oy.ravel(), np.ones(ox.size)]).astype(np.float32)


def _permutes_pixels(g_inv, tol=1e-4):
    """[N] bool: the matrix maps pixel centres onto pixel centres one to one (entries 0/+-1, one per row,
    |det| 1, whole-pixel translation)."""
    a, t = g_inv[:, :2, :2], g_inv[:, :2, 2]
    whole = ops.all(ops.abs(a - ops.round(a)) < tol, axis=(1, 2)) & ops.all(ops.abs(t - ops.round(t)) < tol, axis=1)
    a = ops.round(a)
    one_per_row = (a[:, 0, 0] * a[:, 0, 1] == 0) & (a[:, 1, 0] * a[:, 1, 1] == 0)
    det = a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]
    return whole & one_per_row & (ops.abs(det) == 1)


def _reflected(index, size):
    """Reflect-padding source of integer positions within size - 1 of the image (ADA's largest padding);
    -1 (a zero pixel) beyond, as ADA's resampling gives zeros there."""
    return ops.where((index > -size) & (index < 2 * size - 1), mirror(index, size), -1)


def _blit(images, g_inv):
    """Copy pixels through a pixel-permuting matrix (rounded: the caller checked it permutes)."""
    n, height, width, _ = images.shape
    src = ops.matmul(g_inv[:, :2, :], _output_grid(height, width))         # [N, 2, H*W]
    ix = ops.cast(ops.round(src[:, 0] + (width - 1) / 2), "int32")
    iy = ops.cast(ops.round(src[:, 1] + (height - 1) / 2), "int32")
    return gather_pixels(images, ops.reshape(_reflected(iy, height), (n, height, width)),
                         ops.reshape(_reflected(ix, width), (n, height, width)))


def _resample(images, g_inv):
    """ADA's resampling: reflect-pad, upsample 2x, bilinear at the transformed positions, downsample 2x."""
    n, height, width, _ = images.shape
    pad_x, pad_y = width - 1, height - 1
    big = upsample2x(reflect_pad(images, pad_y, pad_x), GEOM_FILTER)
    # The matrix in the 2x-upsampled image's pixels, as ADA maps it (scaled, with its half-pixel shift).
    g = translate(-0.5, -0.5, n) @ scale(2, 2, n) @ g_inv @ scale(0.5, 0.5, n) @ translate(0.5, 0.5, n)
    out_h, out_w = 2 * (height + 2 * FILTER_PAD), 2 * (width + 2 * FILTER_PAD)
    # Output pixel centres relative to the output's centre -> input positions -> input pixel indices.
    src = ops.matmul(g[:, :2, :], _output_grid(out_h, out_w))                         # [N, 2, P]
    in_h, in_w = big.shape[1], big.shape[2]
    x = ops.reshape(src[:, 0] + (in_w - 1) / 2, (n, out_h, out_w))
    y = ops.reshape(src[:, 1] + (in_h - 1) / 2, (n, out_h, out_w))
    return downsample2x(bilinear_sample(big, y, x), GEOM_FILTER, crop=2 * FILTER_PAD)
