"""Mapping-network variants v1..v4 with one style per resolution level ("Art Creation"'s proposal).

StyleGAN's mapping (`fc`) maps z through `mapping_layers` dense layers to one w that every synthesis layer
shares. Here the mapping has N = `mapping_layers` *levels*, one dense layer each, and the output of level i is
the style s_i of its own synthesis levels:

- v1: s_1 = f(z), s_i = f(s_{i-1}): level i's layer drives level i's style (a chain).
- v2: s_i = f([z, s_1, ..., s_{i-1}]): DenseNet links, each level sees z and every lower style.
- v3: v2 with one extra dense layer on every link, right before a lower style is concatenated into a higher
  level: s_i = f([z, g_1i(s_1), ..., g_(i-1)i(s_{i-1})]); links, and so parameters, grow quadratically in N.
- v4: the extra dense layer sits right after the concatenation instead, and the concatenation is kept W
  wide: s_i = f([z, s_{i-1}]) with s_0 a learned W-wide start vector; the previous style already carries all
  lower ones, so parameters grow linearly in N.

Every f and g is an equalized dense layer of width W = `mapping_fmaps` + bias + the mapping nonlinearity, with
StyleGAN's mapping learning-rate multiplier; z is pixel-normalised (and label-embedded) as in `fc`. The styles
are W wide, so `dlatent_size` must equal `mapping_fmaps`: the synthesis' style affines (StyleMod, "A") take W
inputs. With z 512 wide and W = 128 the weight matrices count exactly Art Creation's table: v3 x5 = 655,360,
v4 x5 = 409,600, v4 x6 = 491,520 (docs/mapping_variants.md has the derivation and the readings tried).

Levels -> synthesis rows: the synthesis has R = log2(resolution) - 1 resolution levels of two style rows each.
Resolution level k takes style ceil((k+1) N / R) - 1: with N = R that is style k; with N > R the last style
drives the finest level and the skipped styles still feed the later ones; with N < R neighbouring levels share
a style. `style_of_row` gives the row -> style map that truncation, `dlatent_avg` and style mixing use.
"""
import numpy as np
from keras import ops

from stylegan_tf.layers import Bias, EqualizedDense, activation_gain, apply_activation
from stylegan_tf.layers.serialization import register
from stylegan_tf.networks.mapping import MappingBase, mapping_input, register_mapping


def style_of_row(num_rows, num_styles):
    """int32 [num_rows]: which of `num_styles` per-level styles drives each synthesis style row.

    Args:
        num_rows: the synthesis' style rows (2 per resolution level: `SynthesisNetwork.num_styles`).
        num_styles: N, the mapping's levels.

    Example:
        >>> style_of_row(8, 4).tolist(), style_of_row(8, 5).tolist()
        ([0, 0, 1, 1, 2, 2, 3, 3], [1, 1, 2, 2, 3, 3, 4, 4])
    """
    levels = max(1, -(-int(num_rows) // 2))
    n = int(num_styles)
    return np.array([-(-(r // 2 + 1) * n // levels) - 1 for r in range(int(num_rows))], np.int32)


def level_boundaries(num_rows, num_styles):
    """The rows r > 0 where a new style starts: the only cut points of style mixing for a per-level mapping."""
    rows = style_of_row(num_rows, num_styles)
    return [r for r in range(1, len(rows)) if rows[r] != rows[r - 1]]


class LevelMapping(MappingBase):
    """Base of v1..v4: z (+labels) -> pixel norm -> N level styles -> [batch, rows, W] (or [batch, N, W] without
    `dlatent_broadcast`). Subclasses define `_make_layers(z_width)` and `_styles(x)`.

    Args: as `MappingNetwork`; `mapping_layers` is N, the number of levels (styles), `mapping_fmaps` W.
    """
    per_level = True

    def __init__(self, latent_size=512, label_size=0, dlatent_size=128, dlatent_broadcast=None, mapping_layers=5,
                 mapping_fmaps=128, mapping_lrmul=0.01, mapping_nonlinearity="lrelu", use_wscale=True,
                 normalize_latents=True, **kwargs):
        super().__init__(latent_size, label_size, dlatent_size, dlatent_broadcast, mapping_layers, mapping_fmaps,
                         mapping_lrmul, mapping_nonlinearity, use_wscale, normalize_latents, **kwargs)
        if self.mapping_layers < 1:
            raise ValueError(f"--mapping {self.kind} needs --mapping-layers >= 1 (one per style level), "
                             f"got {self.mapping_layers}")
        if self.dlatent_size != self.mapping_fmaps:
            raise ValueError(f"--mapping {self.kind}: the styles are --mapping-fmaps ({self.mapping_fmaps}) wide, "
                             f"so dlatent_size must equal it, got {self.dlatent_size}")
        self.gain = activation_gain(mapping_nonlinearity)
        self._make_layers(self.latent_size * (2 if self.label_size else 1))
        self.rows = (None if self.dlatent_broadcast is None
                     else style_of_row(self.dlatent_broadcast, self.mapping_layers))
        self.built = True

    def _dense(self, units, width, name):
        """f: an equalized dense layer and its bias (applied by `_f`)."""
        return (EqualizedDense(units, width, gain=self.gain, lrmul=self.mapping_lrmul, use_wscale=self.use_wscale,
                               name=name), Bias(units, lrmul=self.mapping_lrmul, name=f"{name}_bias"))

    def _f(self, pair, x):
        dense, bias = pair
        return apply_activation(bias(dense(x)), self.mapping_nonlinearity)

    def style_of_row(self):
        """int32 [rows]: the style each synthesis row takes (see the module docstring)."""
        return self.rows

    def call(self, z, labels=None):
        x = mapping_input(self, z, labels)
        styles = ops.stack(self._styles(x), axis=1)         # [batch, N, W]
        if self.rows is None:
            return styles
        return ops.take(styles, self.rows, axis=1)


@register_mapping("v1", per_level=True, description="one style per level, a chain of dense layers")
@register
class MappingV1(LevelMapping):
    """v1: a chain, the output of level i's layer is level i's style. Weights: Z*W + (N-1)*W*W."""

    def _make_layers(self, z_width):
        W = self.mapping_fmaps
        self.levels = [self._dense(W, z_width if i == 0 else W, f"Level{i}") for i in range(self.mapping_layers)]

    def _styles(self, x):
        styles = []
        for level in self.levels:
            x = self._f(level, x)
            styles.append(x)
        return styles


@register_mapping("v2", per_level=True, description="level i reads z and every earlier style")
@register
class MappingV2(LevelMapping):
    """v2: level i's layer takes [z, s_1, ..., s_{i-1}]. Weights: N*Z*W + N(N-1)/2 * W*W."""

    def _make_layers(self, z_width):
        W = self.mapping_fmaps
        self.levels = [self._dense(W, z_width + i * W, f"Level{i}") for i in range(self.mapping_layers)]

    def _styles(self, x):
        styles = []
        for level in self.levels:
            styles.append(self._f(level, ops.concatenate([x] + styles, axis=-1) if styles else x))
        return styles


@register_mapping("v3", per_level=True, description="v2 with a dense layer on every link")
@register
class MappingV3(LevelMapping):
    """v3: v2 with an extra dense layer g_ji on every link j -> i, before s_j is concatenated into level i.
    Weights: N*Z*W + N(N-1) * W*W (v3(128)x5 with Z = 512: 655,360)."""

    def _make_layers(self, z_width):
        W = self.mapping_fmaps
        self.levels = [self._dense(W, z_width + i * W, f"Level{i}") for i in range(self.mapping_layers)]
        self.links = [[self._dense(W, W, f"Link{j}to{i}") for j in range(i)] for i in range(self.mapping_layers)]

    def _styles(self, x):
        styles = []
        for level, links in zip(self.levels, self.links):
            inputs = [x] + [self._f(link, s) for link, s in zip(links, styles)]
            styles.append(self._f(level, ops.concatenate(inputs, axis=-1) if len(inputs) > 1 else x))
        return styles


@register_mapping("v4", per_level=True, description="level i reads z and the previous style")
@register
class MappingV4(LevelMapping):
    """v4: one dense layer right after the concatenation [z, s_{i-1}] (s_0: a learned start vector), so the
    concatenation stays Z + W wide. Weights: N*(Z+W)*W (v4(128)x5: 409,600, x6: 491,520 with Z = 512)."""

    def _make_layers(self, z_width):
        W = self.mapping_fmaps
        # A learned vector (zero at the start), not a weight matrix: level 1 has the same input as every level.
        self.start = Bias(W, lrmul=self.mapping_lrmul, name="Start")
        self.levels = [self._dense(W, z_width + W, f"Level{i}") for i in range(self.mapping_layers)]

    def _styles(self, x):
        prev = self.start(ops.zeros_like(x[:, :1]))          # [batch, 1] + [W] -> [batch, W]
        styles = []
        for level in self.levels:
            prev = self._f(level, ops.concatenate([x, prev], axis=-1))
            styles.append(prev)
        return styles


def weight_count(kind, latent_width, fmaps, levels):
    """The weight-matrix parameters (no biases) of mapping `kind` by formula, without building it.

    Args:
        kind: "fc" (latent_width -> fmaps ... -> fmaps, `levels` layers) or "v1".."v4".
        latent_width: Z, the width of the (label-concatenated) z.
        fmaps: W.
        levels: N (`mapping_layers`).

    Example:
        >>> weight_count("fc", 512, 512, 8), weight_count("v3", 512, 128, 5), weight_count("v4", 512, 128, 6)
        (2097152, 655360, 491520)
    """
    Z, W, N = int(latent_width), int(fmaps), int(levels)
    if kind == "fc" or kind == "v1":
        return Z * W + (N - 1) * W * W if N else 0
    if kind == "v2":
        return N * Z * W + N * (N - 1) // 2 * W * W
    if kind == "v3":
        return N * Z * W + N * (N - 1) * W * W
    if kind == "v4":
        return N * (Z + W) * W
    raise ValueError(f"unknown mapping {kind!r}")
