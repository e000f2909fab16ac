"""Image conversions and grids shared by dataset_tool, training snapshots and generate.py."""
import numpy as np
from PIL import Image

from stylegan_tf.atomic import atomic_path


def to_uint8(images, drange=(-1.0, 1.0)):
    """Float images in `drange` -> uint8, as NVIDIA's `convert_to_pil_image`: rint then clip."""
    lo, hi = drange
    x = (np.asarray(images, dtype=np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def grid_shape(num, max_cols=None):
    """A near-square (rows, cols) that holds `num` tiles."""
    cols = int(np.ceil(np.sqrt(num))) if max_cols is None else min(max_cols, num)
    return int(np.ceil(num / max(cols, 1))), max(cols, 1)


def make_grid(images, grid=None, pad=0, pad_value=0):
    """Tile uint8 NHWC images row-major into one HWC image of `grid` = (rows, cols)."""
    images = np.asarray(images)
    n, h, w, c = images.shape
    rows, cols = grid if grid is not None else grid_shape(n)
    if rows * cols < n:
        raise ValueError(f"grid {rows}x{cols} is too small for {n} images")
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), pad_value, dtype=images.dtype)
    for i in range(n):
        r, q = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, q * (w + pad):q * (w + pad) + w] = images[i]
    return out


def save_image(image, path):
    """Save one uint8 HWC image (C = 1 or 3) as PNG/JPEG by extension, atomically."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format=Image.registered_extensions().get(
            "." + str(path).rsplit(".", 1)[-1].lower(), "PNG"))
