"""ADA's augmentation pipeline (Karras et al. 2020, "Training Generative Adversarial Networks with Limited
Data"): the transforms, their ranges, and the pipes that switch them on, split into DRAW (per-sample parameters
from a seed) and APPLY (images + parameters -> augmented images).

Every transform of a pipe happens to each image independently with probability `multiplier * p` (the two
arbitrary rotations each with 1 - sqrt(1 - p), so that one of them happens with probability p). The ranges are
ADA's published defaults (`AugmentPipe`'s constructor), the pipes its `augpipe_specs`.
"""
import dataclasses
import math

import numpy as np
from keras import ops

from stylegan_tf.augment import colour, corruption, counter_draws, filtering, geometry

# ADA's ranges: translations and cutout as fractions of the image size, rotations as fractions of a full turn,
# scalings and amplifications as log2 standard deviations.
RANGES = dict(xint_max=0.125, scale_std=0.2, rotate_max=1.0, aniso_std=0.2, xfrac_std=0.125, brightness_std=0.2,
              contrast_std=0.5, hue_max=1.0, saturation_std=1.0, imgfilter_bands=(1, 1, 1, 1), imgfilter_std=1.0,
              noise_std=0.1, cutout_size=0.5)
GEOMETRIC = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOUR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
TRANSFORMS = GEOMETRIC + COLOUR + ("imgfilter", "noise", "cutout")
# Parameter names of the geometric draws (rotate draws two angles) and of the colour draws.
GEOMETRIC_PARAMS = ("xflip", "rotate90", "xint", "scale", "rotate_pre", "aniso", "rotate_post", "xfrac")


@dataclasses.dataclass(frozen=True)
class AdaPipe:
    """One ADA pipe: each transform's probability multiplier (absent: off), and the ranges.

    Example:
        >>> pipe = AdaPipe("bg", {t: 1.0 for t in GEOMETRIC})
        >>> params = pipe.draw(8, 32, 32, 3, p=0.3, seed=5)
        >>> out = pipe.apply(images, params)
    """
    name: str
    multipliers: dict
    ranges: dict = dataclasses.field(default_factory=lambda: dict(RANGES))

    def __post_init__(self):
        unknown = sorted(set(self.multipliers) - set(TRANSFORMS))
        if unknown:
            raise ValueError(f"augment pipe {self.name!r}: unknown transforms {unknown}; "
                             f"known: {', '.join(TRANSFORMS)}")

    def on(self, transform):
        return self.multipliers.get(transform, 0) > 0

    def draw(self, n, height, width, channels, p, seed):
        """The per-sample parameters for `n` images of the full size, at strength `p` (float or scalar tensor):
        ADA's values where a transform happens, identity values (0 or 1) where it does not. `seed` is an int or a
        [2] integer tensor; the same seed draws the same numbers on TensorFlow and JAX."""
        d = _Drawer(n, seed, ops.cast(ops.convert_to_tensor(p), "float32"), self.multipliers)
        r = self.ranges
        params = {}
        if self.on("xflip"):
            params["xflip"] = d.gated("xflip", ops.floor(d.uniform("xflip") * 2), 0.0)
        if self.on("rotate90"):
            params["rotate90"] = d.gated("rotate90", ops.floor(d.uniform("rotate90") * 4), 0.0)
        if self.on("xint"):
            params["xint"] = d.gated("xint", (d.uniform("xint", 2) * 2 - 1) * r["xint_max"], 0.0)
        if self.on("scale"):
            params["scale"] = d.gated("scale", ops.power(2.0, d.normal("scale") * r["scale_std"]), 1.0)
        if self.on("rotate"):
            # Two chances so that P(pre or post) = rotate * p.
            p_rot = 1 - ops.sqrt(ops.clip(1 - self.multipliers["rotate"] * d.p, 0, 1))
            for key in ("rotate_pre", "rotate_post"):
                angle = (d.uniform(key) * 2 - 1) * np.pi * r["rotate_max"]
                params[key] = ops.where(d.uniform(key + ".gate") < p_rot, angle, 0.0)
        if self.on("aniso"):
            params["aniso"] = d.gated("aniso", ops.power(2.0, d.normal("aniso") * r["aniso_std"]), 1.0)
        if self.on("xfrac"):
            params["xfrac"] = d.gated("xfrac", d.normal("xfrac", 2) * r["xfrac_std"], 0.0)
        params.update(self._draw_colour(d, channels))
        if self.on("imgfilter"):
            bands = [d.gated("imgfilter", ops.power(2.0, d.normal(f"imgfilter{b}") * r["imgfilter_std"]), 1.0,
                             stream=f"imgfilter{b}", strength=s) for b, s in enumerate(r["imgfilter_bands"])]
            params["imgfilter"] = ops.stack(bands, axis=1)
        if self.on("noise"):
            params["noise"] = d.gated("noise", ops.abs(d.normal("noise")) * r["noise_std"], 0.0)
            params["noise_field"] = counter_draws.normal(d.seed, "noise_field", (n, height, width, channels))
        if self.on("cutout"):
            params["cutout"] = d.gated("cutout", ops.full((n, 2), r["cutout_size"]), 0.0)
            params["cutout_centre"] = d.uniform("cutout_centre", 2)
        return params

    def _draw_colour(self, d, channels):
        r = self.ranges
        params = {}
        if self.on("brightness"):
            params["brightness"] = d.gated("brightness", d.normal("brightness") * r["brightness_std"], 0.0)
        if self.on("contrast"):
            params["contrast"] = d.gated("contrast", ops.power(2.0, d.normal("contrast") * r["contrast_std"]), 1.0)
        if self.on("lumaflip"):
            params["lumaflip"] = d.gated("lumaflip", ops.floor(d.uniform("lumaflip") * 2), 0.0)
        if channels > 1 and self.on("hue"):          # ADA: hue and saturation mean nothing for grey images
            params["hue"] = d.gated("hue", (d.uniform("hue") * 2 - 1) * np.pi * r["hue_max"], 0.0)
        if channels > 1 and self.on("saturation"):
            params["saturation"] = d.gated("saturation",
                                           ops.power(2.0, d.normal("saturation") * r["saturation_std"]), 1.0)
        return params

    def apply(self, images, params):
        """Augment NHWC images, or a pyramid (list of levels, lowest first, the last one full size), with drawn
        `params` (from `draw` for the full size). Every level gets the same transform: translations scale with
        the level's size, the filter's bands move down an octave per level, the noise is the full-size noise
        box-averaged, the cutout covers the same fraction."""
        levels = list(images) if isinstance(images, (list, tuple)) else [images]
        full_h, full_w = levels[-1].shape[1], levels[-1].shape[2]
        n = levels[-1].shape[0]
        g_inv = (geometry.inverse_matrix(params, full_h, full_w, n)
                 if any(k in params for k in GEOMETRIC_PARAMS) else None)
        c = colour.colour_matrix(params, n) if any(k in params for k in COLOUR) else None
        gains = (filtering.band_gains([params["imgfilter"][:, b] for b in range(4)], n)
                 if "imgfilter" in params else None)
        out = []
        for x in levels:
            factor = full_w // x.shape[2]
            if g_inv is not None:
                x = geometry.apply_geometry(x, geometry.at_level(g_inv, 1 / factor))
            if c is not None:
                x = colour.apply_colour(x, c)
            if gains is not None:
                x = filtering.apply_filter(x, filtering.at_level(gains, int(round(math.log2(factor)))))
            if "noise" in params:
                x = corruption.add_noise(x, params["noise"], _box_down(params["noise_field"], factor))
            if "cutout" in params:
                x = corruption.apply_cutout(x, params["cutout_centre"], params["cutout"])
            out.append(x)
        return out if isinstance(images, (list, tuple)) else out[0]


def _box_down(field, factor):
    """Average `factor` x `factor` blocks (the pyramid's own downsampling)."""
    if factor == 1:
        return field
    n, h, w, c = field.shape
    return ops.mean(ops.reshape(field, (n, h // factor, factor, w // factor, factor, c)), axis=(2, 4))


class _Drawer:
    """Named streams of one draw call: each parameter and each yes/no gate has its own."""

    def __init__(self, n, seed, p, multipliers):
        self.n, self.seed, self.p, self.multipliers = n, seed, p, multipliers

    def uniform(self, stream, width=None):
        return counter_draws.uniform(self.seed, stream, (self.n,) if width is None else (self.n, width))

    def normal(self, stream, width=None):
        return counter_draws.normal(self.seed, stream, (self.n,) if width is None else (self.n, width))

    def gated(self, transform, value, identity, stream=None, strength=1.0):
        """`value` where this sample's gate opens (probability multiplier * p * strength), else `identity`."""
        happens = self.uniform((stream or transform) + ".gate") < self.multipliers[transform] * self.p * strength
        if len(value.shape) > 1:
            happens = ops.expand_dims(happens, -1)
        return ops.where(happens, value, identity)
