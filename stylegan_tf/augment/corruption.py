"""ADA's image-space corruptions: additive Gaussian RGB noise of a drawn strength, and cutout (a rectangle of a
fixed fraction of the image set to zero at a drawn centre)."""
import numpy as np
from keras import ops


def add_noise(images, sigma, field):
    """images + field * sigma: `sigma` [N] per sample (0: unchanged), `field` standard normal, image-shaped."""
    return images + field * ops.reshape(sigma, (-1, 1, 1, 1))


def cutout_mask(height, width, centre, size):
    """[N, H, W, 1] mask, 0 inside the rectangle: `centre` [N, 2] and `size` [N, 2] (x, y) as fractions of the
    image; a pixel is cut when its centre lies within half the size of the rectangle's centre on both axes."""
    x = (np.arange(width, dtype=np.float32) + 0.5) / width
    y = (np.arange(height, dtype=np.float32) + 0.5) / height
    keep_x = ops.abs(x[None, None, :] - centre[:, 0, None, None]) >= size[:, 0, None, None] / 2
    keep_y = ops.abs(y[None, :, None] - centre[:, 1, None, None]) >= size[:, 1, None, None] / 2
    return ops.expand_dims(ops.cast(ops.logical_or(keep_x, keep_y), "float32"), -1)


def apply_cutout(images, centre, size):
    """Zero a rectangle of each NHWC image (`size` 0: unchanged).

    Example:
        >>> cut = apply_cutout(images, centre=ops.full((n, 2), 0.5), size=ops.full((n, 2), 0.5))
    """
    _, height, width, _ = images.shape
    return images * cutout_mask(height, width, centre, size)
