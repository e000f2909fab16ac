"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"): three policies
applied to every image D sees, whatever the strength p.

- `color`: brightness + U(-0.5, 0.5); saturation: distance from the per-pixel channel mean times U(0, 2);
  contrast: distance from the image mean times U(0.5, 1.5).
- `translation`: a whole-pixel shift of up to 1/8 of the image size each way, zeros shifted in.
- `cutout`: a square of half the image size set to zero at a random position (may overlap the border).

Split like ADA's pipe into DRAW and APPLY; a pyramid (lowest level first) gets the same shift (rounded to the
level's pixels) and the same cutout rectangle (as fractions of the image) at every level.
"""
import dataclasses

from keras import ops

from stylegan_tf.augment import counter_draws
from stylegan_tf.augment.resample import gather_pixels

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def parse_policy(text):
    """'color,translation,cutout' -> ('color', 'translation', 'cutout'); unknown or no names are refused with
    one line naming the flag."""
    names = tuple(name.strip() for name in str(text).split(",") if name.strip())
    unknown = [name for name in names if name not in POLICIES]
    if unknown or not names:
        raise ValueError(f"--diffaugment {text!r}: {'unknown policy ' + repr(unknown[0]) if unknown else 'no policy'}"
                         f"; choose one or more of {', '.join(POLICIES)}, comma-separated")
    return names


def _size_fraction(size, ratio):
    return int(size * ratio + 0.5)


@dataclasses.dataclass(frozen=True)
class DiffAugment:
    """A DiffAugment policy set, e.g. DiffAugment(('color', 'translation')).

    Example:
        >>> aug = DiffAugment(parse_policy("color,translation,cutout"))
        >>> out = aug.apply(images, aug.draw(8, 32, 32, 3, p=None, seed=3))
    """
    policies: tuple = POLICIES
    name: str = "diffaugment"

    def draw(self, n, height, width, channels, p, seed):
        """Per-sample parameters for `n` images of the full size (`p` is not used: every image is augmented)."""
        del channels, p
        params = {}
        if "color" in self.policies:
            params["brightness"] = counter_draws.uniform(seed, "da.brightness", (n,)) - 0.5
            params["saturation"] = counter_draws.uniform(seed, "da.saturation", (n,)) * 2
            params["contrast"] = counter_draws.uniform(seed, "da.contrast", (n,)) + 0.5
        if "translation" in self.policies:
            # Whole pixels in [-shift, shift] of the full image, as Zhao et al. draw them.
            span = ops.convert_to_tensor([[_size_fraction(width, TRANSLATION_RATIO),
                                           _size_fraction(height, TRANSLATION_RATIO)]], "float32")
            u = counter_draws.uniform(seed, "da.translation", (n, 2))
            params["translation"] = ops.floor(u * (2 * span + 1)) - span
        if "cutout" in self.policies:
            # Zhao et al.'s corner offset: [0, size + (1 - cut % 2)) pixels, the square starting cut // 2 before.
            cut = [_size_fraction(width, CUTOUT_RATIO), _size_fraction(height, CUTOUT_RATIO)]
            room = ops.convert_to_tensor([[width + 1 - cut[0] % 2, height + 1 - cut[1] % 2]], "float32")
            offset = ops.floor(counter_draws.uniform(seed, "da.cutout", (n, 2)) * room)
            start = offset - ops.convert_to_tensor([[cut[0] // 2, cut[1] // 2]], "float32")
            full = ops.convert_to_tensor([[width, height]], "float32")
            params["cutout_start"] = start / full                  # the square, as fractions of the image
            params["cutout_end"] = (start + ops.convert_to_tensor([cut], "float32")) / full
        return params

    def apply(self, images, params):
        """Augment NHWC images or a pyramid (list, lowest first) with drawn `params`."""
        levels = list(images) if isinstance(images, (list, tuple)) else [images]
        full_w = levels[-1].shape[2]
        out = [self._apply_level(x, params, x.shape[2] / full_w) for x in levels]
        return out if isinstance(images, (list, tuple)) else out[0]

    def _apply_level(self, x, params, factor):
        if "brightness" in params:
            x = x + params["brightness"][:, None, None, None]
            mean = ops.mean(x, axis=3, keepdims=True)
            x = (x - mean) * params["saturation"][:, None, None, None] + mean
            mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
            x = (x - mean) * params["contrast"][:, None, None, None] + mean
        if "translation" in params:
            x = _translate(x, ops.cast(ops.round(params["translation"] * factor), "int32"))
        if "cutout_start" in params:
            x = x * _outside_square(x.shape[1], x.shape[2], params["cutout_start"], params["cutout_end"])
        return x


def _translate(x, shift):
    """out[y, x] = in[y + shift_y, x + shift_x], zero outside (`shift` [N, 2] whole pixels, x first)."""
    _, height, width, _ = x.shape
    iy = ops.arange(height, dtype="int32")[None, :, None] + shift[:, 1, None, None]
    ix = ops.arange(width, dtype="int32")[None, None, :] + shift[:, 0, None, None]
    shape = (ops.shape(x)[0], height, width)
    iy, ix = ops.broadcast_to(iy, shape), ops.broadcast_to(ix, shape)
    return gather_pixels(x, iy, ix)


def _outside_square(height, width, start, end):
    """[N, H, W, 1]: 0 for pixels whose centres lie in [start, end) (fractions, x first), else 1."""
    px = (ops.arange(width, dtype="float32") + 0.5) / width
    py = (ops.arange(height, dtype="float32") + 0.5) / height
    in_x = (px[None, None, :] >= start[:, 0, None, None]) & (px[None, None, :] < end[:, 0, None, None])
    in_y = (py[None, :, None] >= start[:, 1, None, None]) & (py[None, :, None] < end[:, 1, None, None])
    return ops.expand_dims(1.0 - ops.cast(in_x & in_y, "float32"), -1)
