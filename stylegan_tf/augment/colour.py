"""ADA's colour augmentations: one per-sample 4x4 homogeneous colour matrix (`C @ [r, g, b, 1]`), applied to NHWC
images. Brightness adds along the grey axis, contrast scales, luma flip mirrors across the plane orthogonal to
the luma axis v = (1, 1, 1)/sqrt(3) (a Householder reflection), hue rotates about v and saturation scales away
from it; one-channel images take the mean of the matrix's three colour rows, as ADA does."""
import numpy as np
from keras import ops

LUMA = np.array([1, 1, 1, 0], np.float32) / np.sqrt(3)
_LUMA_OUTER = np.outer(LUMA, LUMA).astype(np.float32)
_I4 = np.eye(4, dtype=np.float32)


def _per_sample(value, n):
    return ops.reshape(ops.broadcast_to(ops.cast(value, "float32"), (n,)), (n, 1, 1))


def _hue_rotation(theta, n):
    """Rotation by theta about the luma axis (Rodrigues' formula: cos I + sin [v]x + (1 - cos) v v^T)."""
    v = LUMA[:3]
    cross = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]], np.float32)
    cross4 = np.zeros((4, 4), np.float32)
    cross4[:3, :3] = cross
    diag = np.diag([1, 1, 1, 0]).astype(np.float32)
    c, s = _per_sample(ops.cos(theta), n), _per_sample(ops.sin(theta), n)
    return c * diag + s * cross4 + (1 - c) * _LUMA_OUTER + (_I4 - diag)


def colour_matrix(params, n):
    """The composed colour matrix [N, 4, 4] from ADA's drawn values (identity where absent): `brightness`
    offset, `contrast` factor, `lumaflip` 0/1, `hue` angle, `saturation` factor; applied in that order."""
    c = ops.broadcast_to(ops.convert_to_tensor(_I4), (n, 4, 4))
    if "brightness" in params:
        b = _per_sample(params["brightness"], n)
        c = (_I4 + b * np.pad(np.ones((3, 1), np.float32), ((0, 1), (3, 0)))) @ c
    if "contrast" in params:
        c = (_per_sample(params["contrast"], n) * np.diag([1, 1, 1, 0]).astype(np.float32)
             + np.diag([0, 0, 0, 1]).astype(np.float32)) @ c
    if "lumaflip" in params:
        c = (_I4 - 2 * _LUMA_OUTER * _per_sample(params["lumaflip"], n)) @ c
    if "hue" in params:
        c = _hue_rotation(params["hue"], n) @ c
    if "saturation" in params:
        c = (_LUMA_OUTER + (_I4 - _LUMA_OUTER) * _per_sample(params["saturation"], n)) @ c
    return c


def apply_colour(images, c):
    """NHWC images (3 or 1 channels) through per-sample colour matrices [N, 4, 4].

    Example:
        >>> darker = apply_colour(images, colour_matrix({"brightness": -0.2 * ops.ones((n,))}, n))
    """
    channels = images.shape[-1]
    if channels == 3:
        linear = ops.einsum("nhwj,nij->nhwi", images, c[:, :3, :3])
        return linear + c[:, None, None, :3, 3]
    if channels == 1:
        rows = ops.mean(c[:, :3, :], axis=1)                        # [N, 4]
        return images * ops.sum(rows[:, :3], axis=1)[:, None, None, None] + rows[:, 3][:, None, None, None]
    raise ValueError(f"colour augmentation needs RGB (3 channels) or grey (1 channel) images, not {channels}")
