"""The level-of-detail pyramid stored in a dataset: exact 2x2 box means down to 4x4 (no TensorFlow here)."""
import numpy as np


def build_pyramid(image_chw):
    """uint8 [C, R, R] -> list of uint8 [C, r, r] for r = R, R/2, ..., 4.

    Each level is the mean of 2x2 blocks of the *unrounded* level above, kept in float32 and rounded
    half-to-even only when stored, as the official exporter does. Sums of up to 4**8 uint8 values scaled
    by powers of 1/4 are exact in float32, so every level equals the exact box mean of the full image.
    """
    image_chw = np.asarray(image_chw)
    if image_chw.dtype != np.uint8 or image_chw.ndim != 3:
        raise ValueError(f"expected a uint8 [C, H, W] image, got {image_chw.dtype} {image_chw.shape}")
    res = image_chw.shape[1]
    if image_chw.shape[2] != res or res < 4 or res & (res - 1):
        raise ValueError(f"expected a square power-of-two image >= 4, got {image_chw.shape[1:]}")
    levels = [image_chw]
    x = image_chw.astype(np.float32)
    while x.shape[1] > 4:
        # The same summation order as the original, so the float32 results agree bit for bit.
        x = (x[:, 0::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 0::2] + x[:, 1::2, 1::2]) * np.float32(0.25)
        levels.append(np.rint(x).clip(0, 255).astype(np.uint8))
    return levels
