"""Mapping network: z (+ embedded labels) -> PixelNorm -> `mapping_layers` dense layers -> w, broadcast.

Also the mapping registry: `fc` is this module's official network; the per-level variants v1..v4
(networks/mapping_variants.py) register themselves by name, and every generator builds its mapping through
`make_mapping(kind, ...)`, so a new variant touches its own module and this registry only.
"""
import importlib

import keras
import numpy as np
from keras import ops

from stylegan_tf.layers import Bias, EqualizedDense, LabelConcat, activation_gain, apply_activation, pixel_norm
from stylegan_tf.layers.serialization import register


# name -> mapping class; each class has `kind` (its name), `per_level` (True: its styles differ per level, and
# are `mapping_fmaps` wide) and `description` (one line for --help)
MAPPINGS = {}
# Modules that register mapping variants when imported (imported on first use of the registry).
MAPPING_MODULES = ("stylegan_tf.networks.mapping_variants",)


def register_mapping(name, per_level=False, description=""):
    """Class decorator: make a mapping layer buildable as `make_mapping(name, ...)` and trainable as
    `train.py --mapping name` (its --help line comes from here).

    Args:
        name: the `--mapping` value.
        per_level: True if the mapping gives each synthesis level its own style (dlatent_avg is then kept per
            level and style mixing cuts only at level boundaries; see the class's `style_of_row`). Its styles are
            then `mapping_fmaps` wide: that is the dlatent size, and `--dlatent-size` does not apply.
        description: one line for `--help` and the docs.

    Example:
        >>> @register_mapping("mine", per_level=True, description="one dense layer per level")
        ... class MyMapping(MappingBase): ...
    """
    def wrap(cls):
        cls.kind, cls.per_level, cls.description = name, bool(per_level), description
        MAPPINGS[name] = cls
        return cls
    return wrap


def _load_variants():
    for module in MAPPING_MODULES:
        importlib.import_module(module)


def mapping_names():
    """The registered mapping names, `fc` first."""
    _load_variants()
    return list(MAPPINGS)


def get_mapping(name):
    """The mapping class registered as `name`; ValueError (one line naming --mapping and the choices) otherwise."""
    _load_variants()
    try:
        return MAPPINGS[name]
    except KeyError:
        raise ValueError(f"--mapping {name!r} is unknown: choose one of {', '.join(MAPPINGS)}") from None


def mapping_help():
    """The `--mapping` help: every registered mapping with its one-line description."""
    return "; ".join(f"{name}: {cls.description}" if cls.description else name
                     for name, cls in ((n, get_mapping(n)) for n in mapping_names()))


def make_mapping(kind="fc", **kwargs):
    """Build the mapping network `kind` with MappingNetwork's arguments.

    Args:
        kind: a registered name (`mapping_names()`): "fc" (official) or "v1".."v4".
        **kwargs: latent_size, label_size, dlatent_size, dlatent_broadcast (the synthesis' number of style
            rows), mapping_layers, mapping_fmaps, mapping_lrmul, mapping_nonlinearity, use_wscale,
            normalize_latents, name.

    Returns:
        A Keras layer `mapping(z, labels=None) -> [N, dlatent_broadcast, dlatent_size]`.

    Example:
        >>> m = make_mapping("v4", latent_size=32, dlatent_size=16, mapping_fmaps=16, mapping_layers=3,
        ...                  dlatent_broadcast=6)
        >>> m(np.zeros([2, 32], "float32")).shape
        (2, 6, 16)
    """
    return get_mapping(kind)(**kwargs)


def mapping_generator_kwargs(opts):
    """The Generator arguments that training options `opts` (anything with `mapping`, `latent_size`,
    `dlatent_size`, `mapping_layers`, `mapping_fmaps`) set for the mapping network. For a per-level variant the
    styles are `mapping_fmaps` wide, so that is the dlatent size the synthesis' style affines take.

    Example:
        >>> mapping_generator_kwargs(TrainingOptions(mapping="v4", mapping_fmaps=128, mapping_layers=5))
        {'mapping': 'v4', 'latent_size': 512, 'dlatent_size': 128, 'mapping_layers': 5, 'mapping_fmaps': 128}
    """
    kind = getattr(opts, "mapping", "fc") or "fc"
    per_level = get_mapping(kind).per_level
    return {"mapping": kind, "latent_size": opts.latent_size,
            "dlatent_size": opts.mapping_fmaps if per_level else opts.dlatent_size,
            "mapping_layers": opts.mapping_layers, "mapping_fmaps": opts.mapping_fmaps}


def mapping_summary(mapping="fc", latent_size=512, label_size=0, dlatent_size=512, mapping_layers=8,
                    mapping_fmaps=512):
    """One line for `train.py --dry-run`: the mapping network and its weight-matrix / full parameter counts
    (the mapping alone is built for it: the counts are the real network's).

    Example:
        >>> mapping_summary("fc", 512, 0, 512, 8, 512)
        'Mapping network fc: 8 layers, width 512 -> 2,097,152 weight-matrix parameters (2,101,248 with biases)'
    """
    net = make_mapping(mapping, latent_size=latent_size, label_size=label_size, dlatent_size=dlatent_size,
                       mapping_layers=mapping_layers, mapping_fmaps=mapping_fmaps)
    weights, total = count_parameters(net)
    what = (f"{mapping_layers} style levels, style width {mapping_fmaps}" if get_mapping(mapping).per_level
            else f"{mapping_layers} layers, width {mapping_fmaps}")
    return (f"Mapping network {mapping}: {what} -> {weights:,} weight-matrix parameters ({total:,} with biases)")


def mapping_input(mapping, z, labels):
    """What every mapping's first layer sees: z, with the embedded labels concatenated for a conditional
    network, pixel-normalised unless `normalize_latents` is off (the official order)."""
    x = ops.convert_to_tensor(z, "float32")
    if mapping.label_concat is not None:
        if labels is None:
            raise ValueError(f"this network is conditional: pass labels of shape [N, {mapping.label_size}]")
        x = mapping.label_concat(x, ops.convert_to_tensor(labels, "float32"))
    return pixel_norm(x) if mapping.normalize_latents else x


def count_parameters(layer):
    """(weight-matrix parameters, all parameters) of a built layer: the first counts only dense weight
    matrices (variables named `weight`: the layers' `W`, the label embedding), as the mapping-variant
    comparison's table does; the second adds biases and learned vectors.

    Example:
        >>> count_parameters(make_mapping("fc", latent_size=512, dlatent_size=512))
        (2097152, 2101248)
    """
    # `weights`, not `trainable_weights`: Gs (frozen, trainable=False) counts the same as G.
    weights = sum(int(np.prod(v.shape)) for v in layer.weights if v.path.split("/")[-1] == "weight")
    total = sum(int(np.prod(v.shape)) for v in layer.weights)
    return weights, total


class MappingBase(keras.layers.Layer):
    """What every mapping network takes and saves: z (+labels) in, styles [N, dlatent_broadcast, dlatent_size]
    out. Subclasses build their layers after `super().__init__` and define `call(z, labels=None)`."""

    def __init__(self, latent_size=512, label_size=0, dlatent_size=512, dlatent_broadcast=None,
                 mapping_layers=8, mapping_fmaps=512, mapping_lrmul=0.01, mapping_nonlinearity="lrelu",
                 use_wscale=True, normalize_latents=True, **kwargs):
        super().__init__(**kwargs)
        self.latent_size, self.label_size, self.dlatent_size = int(latent_size), int(label_size), int(dlatent_size)
        self.dlatent_broadcast = None if dlatent_broadcast is None else int(dlatent_broadcast)
        self.mapping_layers, self.mapping_fmaps = int(mapping_layers), int(mapping_fmaps)
        self.mapping_lrmul, self.mapping_nonlinearity = float(mapping_lrmul), mapping_nonlinearity
        self.use_wscale, self.normalize_latents = bool(use_wscale), bool(normalize_latents)
        self.label_concat = (LabelConcat(self.label_size, self.latent_size, name="LabelConcat")
                             if self.label_size else None)

    def get_config(self):
        return {**super().get_config(), "latent_size": self.latent_size, "label_size": self.label_size,
                "dlatent_size": self.dlatent_size, "dlatent_broadcast": self.dlatent_broadcast,
                "mapping_layers": self.mapping_layers, "mapping_fmaps": self.mapping_fmaps,
                "mapping_lrmul": self.mapping_lrmul, "mapping_nonlinearity": self.mapping_nonlinearity,
                "use_wscale": self.use_wscale, "normalize_latents": self.normalize_latents}


@register_mapping("fc", description="StyleGAN's (--mapping-layers dense layers, one w for every level)")
@register
class MappingNetwork(MappingBase):
    def __init__(self, latent_size=512, label_size=0, dlatent_size=512, dlatent_broadcast=None,
                 mapping_layers=8, mapping_fmaps=512, mapping_lrmul=0.01, mapping_nonlinearity="lrelu",
                 use_wscale=True, normalize_latents=True, **kwargs):
        super().__init__(latent_size, label_size, dlatent_size, dlatent_broadcast, mapping_layers, mapping_fmaps,
                         mapping_lrmul, mapping_nonlinearity, use_wscale, normalize_latents, **kwargs)
        gain = activation_gain(mapping_nonlinearity)
        width = self.latent_size * (2 if self.label_size else 1)
        if self.mapping_layers == 0 and width != self.dlatent_size:
            raise ValueError(f"mapping_layers=0 needs dlatent_size == {width} (z width), got {self.dlatent_size}")
        self.dense_layers, self.biases = [], []
        for i in range(self.mapping_layers):
            fmaps = self.dlatent_size if i == self.mapping_layers - 1 else self.mapping_fmaps
            self.dense_layers.append(EqualizedDense(fmaps, width, gain=gain, lrmul=self.mapping_lrmul,
                                                    use_wscale=self.use_wscale, name=f"Dense{i}"))
            self.biases.append(Bias(fmaps, lrmul=self.mapping_lrmul, name=f"Dense{i}_bias"))
            width = fmaps
        self.built = True

    def call(self, z, labels=None):
        x = mapping_input(self, z, labels)
        for dense, bias in zip(self.dense_layers, self.biases):
            x = apply_activation(bias(dense(x)), self.mapping_nonlinearity)
        if self.dlatent_broadcast is not None:
            x = ops.tile(x[:, None, :], [1, self.dlatent_broadcast, 1])
        return x
