"""The architecture registry: every GAN the pipeline trains (StyleGAN, DCGAN, MSG-GAN, MSG-StyleGAN) declares here
how its networks are built, which data it eats, its own default hyper-parameters, whether it has StyleGAN's
styles (and so the style figures), how it is sized and the lowest resolution it trains at.

An architecture is added by writing its networks in one module of this folder and calling `register_arch` there;
`ARCH_MODULES` lists those modules so that `get_arch`/`arch_names` find every architecture without the caller
importing them; `register_arch` called anywhere else (a user's module, a test) adds one too. Training (options,
model, loop, resume), generate.py and the benchmarks only ask this registry, never an architecture's name.
"""
import dataclasses
import importlib
import importlib.util

# Every figure of generate.py that needs more than G(z): a mapping network, styles (W), noise inputs. An
# architecture with `styles` supports them; every other figure (images, interpolate, z-walk, uncurated, convert,
# and any figure added later) needs only G(z) (numpy in, numpy out through `Gs.run`) and runs on every arch.
STYLE_FIGURES = ("style-mixing", "truncation", "noise-detail", "noise-components", "w-walk")
# The G(z) figures of generate.py, for messages and docs.
COMMON_FIGURES = ("images", "interpolate", "z-walk", "uncurated", "convert")
ALL_FIGURES = COMMON_FIGURES[:-1] + STYLE_FIGURES + COMMON_FIGURES[-1:]

# Modules that register architectures when imported (imported lazily by `get_arch`/`arch_names`).
ARCH_MODULES = ["stylegan_tf.networks.stylegan_arch", "stylegan_tf.networks.dcgan", "stylegan_tf.networks.msg"]
# How an architecture's widths are set: "fmap" (--fmap-base/--fmap-max/--fmap-decay, StyleGAN's nf(stage), with
# the minibatch-stddev layer of StyleGAN's D) or "width" (--width/--fmap-max, DCGAN's doubling widths).
SIZINGS = ("fmap", "width")

_ARCHS = {}


class ArchError(ValueError):
    """An unknown architecture, or a figure/option it does not support. One line, naming the flag."""


@dataclasses.dataclass(frozen=True)
class Arch:
    """What one architecture declares: everything training, generate.py and the docs ask of it.

    Attributes:
        name: the `--arch` value.
        build: `build(opts, resolution, num_channels, label_size) -> (G, D)`, fresh unbuilt-or-built Keras models.
            `opts` is anything with the training options as attributes (a `TrainingOptions`). Gs is made by the
            training model as `G.__class__.from_config(G.get_config())`, so G must round-trip its config.
        data: "single" (reals at the training resolution, [N, r, r, C]) or "pyramid" (a list of reals, one per
            level 4x4 .. r, lowest first, read from the dataset's level files).
        defaults: TrainingOptions field -> this arch's default, used where the user gave no value (e.g. DCGAN's
            lrate 2e-4, adam_beta1 0.5, minibatch 128, gamma 0).
        demo: what the built-in demo (train.py without --data) sets for this arch, over `defaults`.
        progressive: grows from `lod_initial_resolution` (StyleGAN); False: one phase at full resolution.
        gs: "ema" (Gs is the running average of G, half-life --g-smoothing-kimg) or "copy" (Gs = G as it was
            before the iteration's G step: g_smoothing_kimg is 0).
        styles: G is StyleGAN's (mapping network, styles, noise inputs): it takes --config, --mapping,
            --style-mixing-prob and supports the STYLE_FIGURES of generate.py.
        sizing: "fmap" or "width" (see SIZINGS): which flags set its widths.
        min_resolution: the lowest training resolution it builds at (a power of two).
        description: one line for --help and the docs.
    """
    name: str
    build: object
    data: str = "single"
    defaults: dict = dataclasses.field(default_factory=dict)
    demo: dict = dataclasses.field(default_factory=dict)
    progressive: bool = False
    gs: str = "ema"
    styles: bool = False
    sizing: str = "fmap"
    min_resolution: int = 4
    description: str = ""

    @property
    def figures(self):
        """The generate.py figures (of ALL_FIGURES) it supports."""
        return ALL_FIGURES if self.styles else COMMON_FIGURES


def register_arch(name, build, data="single", defaults=None, demo=None, progressive=False, gs="ema",
                  styles=False, sizing="fmap", min_resolution=4, description=""):
    """Register an architecture under `name` (see `Arch` for the fields). Re-registering a name replaces it.

    Args:
        name: the `--arch` value.
        build: `build(opts, resolution, num_channels, label_size) -> (G, D)`.
        data: "single" or "pyramid".
        defaults: TrainingOptions field -> default for this arch.
        demo: TrainingOptions field -> value for the built-in demo run with this arch.
        progressive: whether it grows progressively.
        gs: "ema" or "copy".
        styles: whether G is StyleGAN's (styles, mapping network, noise inputs).
        sizing: "fmap" or "width".
        min_resolution: the lowest resolution it trains at.
        description: one line.

    Returns:
        The `Arch`.

    Example:
        >>> register_arch("tiny", build=lambda opts, r, c, l: (MyG(r, c), MyD(r, c)),
        ...               defaults={"lrate": 2e-4, "adam_beta1": 0.5}, min_resolution=8)
    """
    if data not in ("single", "pyramid"):
        raise ValueError(f"register_arch({name!r}): data must be 'single' or 'pyramid', got {data!r}")
    if gs not in ("ema", "copy"):
        raise ValueError(f"register_arch({name!r}): gs must be 'ema' or 'copy', got {gs!r}")
    if sizing not in SIZINGS:
        raise ValueError(f"register_arch({name!r}): sizing must be one of {', '.join(SIZINGS)}, got {sizing!r}")
    if not (isinstance(min_resolution, int) and min_resolution >= 4 and min_resolution & (min_resolution - 1) == 0):
        raise ValueError(f"register_arch({name!r}): min_resolution must be a power of two >= 4, "
                         f"got {min_resolution!r}")
    arch = Arch(name=name, build=build, data=data, defaults=dict(defaults or {}), demo=dict(demo or {}),
                progressive=bool(progressive), gs=gs, styles=bool(styles), sizing=sizing,
                min_resolution=min_resolution, description=description)
    _ARCHS[name] = arch
    return arch


def _load_all():
    for module in ARCH_MODULES:
        # A listed module missing from this checkout (an architecture not installed) is skipped; one that
        # exists and fails to import fails loudly.
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


def arch_names():
    """The registered architecture names, in registration order (stylegan first)."""
    _load_all()
    return list(_ARCHS)


def get_arch(name):
    """The `Arch` registered as `name`; ArchError (one line naming --arch and the choices) otherwise."""
    _load_all()
    try:
        return _ARCHS[name]
    except KeyError:
        raise ArchError(f"--arch {name!r} is unknown: choose one of {', '.join(_ARCHS)}") from None


def arch_of(network):
    """The architecture name of a network (G, Gs, D or a container with .Gs): its `arch_name` attribute, which
    every registered network class sets; StyleGAN's (and an official .pkl's) networks are "stylegan"."""
    net = getattr(network, "Gs", network)
    return getattr(net, "arch_name", "stylegan")


def check_figure(network, figure):
    """Raise ArchError (one line) if generate.py `figure` needs styles (one of STYLE_FIGURES) and the network's
    architecture has none. Every other figure, including one this registry has never heard of, needs only
    G(z) and passes.

    Example:
        >>> check_figure(dcgan_Gs, "images")          # fine
        >>> check_figure(dcgan_Gs, "style-mixing")    # ArchError: ... needs a StyleGAN generator ...
    """
    if figure not in STYLE_FIGURES:
        return
    name = arch_of(network)
    arch = get_arch(name) if name in arch_names() else None
    if arch is not None and not arch.styles:
        raise ArchError(f"{figure} needs a StyleGAN generator (mapping network, styles, noise inputs); this "
                        f"network is {name}: use one of {', '.join(f for f in arch.figures if f != 'convert')}")

