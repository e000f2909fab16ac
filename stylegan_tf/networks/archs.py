"""The architecture registry: every GAN the pipeline trains (StyleGAN, DCGAN, MSG-GAN, MSG-StyleGAN) declares here
how its networks are built, which data it eats, its own default hyper-parameters and which figures it supports.

An architecture is added by writing its networks in one module of this folder and calling `register_arch` there;
`ARCH_MODULES` lists those modules so that `get_arch`/`arch_names` find every architecture without the caller
importing them. Training (options, model, loop), generate.py and the benchmarks only ask this registry.
"""
import dataclasses
import importlib
import importlib.util

# Every figure of generate.py; an arch lists the ones it supports.
ALL_FIGURES = ("images", "interpolate", "z-walk", "uncurated", "style-mixing", "truncation", "noise-detail",
               "noise-components", "w-walk", "convert")
# Figures that need nothing but G(z) (numpy in, numpy out through `Gs.run`).
COMMON_FIGURES = ("images", "interpolate", "z-walk", "uncurated", "convert")

# Modules that register architectures when imported (imported lazily by `get_arch`/`arch_names`).
ARCH_MODULES = ["stylegan_tf.networks.stylegan_arch", "stylegan_tf.networks.dcgan", "stylegan_tf.networks.msg"]

_ARCHS = {}


class ArchError(ValueError):
    """An unknown architecture, or a figure/option it does not support. One line, naming the flag."""


@dataclasses.dataclass(frozen=True)
class Arch:
    """What one architecture declares.

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
        figures: the generate.py figures it supports (others are refused with one line).
        width_flags: options that set its width (for --help and refusal of the others).
        description: one line for --help and the docs.
    """
    name: str
    build: object
    data: str = "single"
    defaults: dict = dataclasses.field(default_factory=dict)
    demo: dict = dataclasses.field(default_factory=dict)
    progressive: bool = False
    gs: str = "ema"
    figures: tuple = COMMON_FIGURES
    description: str = ""


def register_arch(name, build, data="single", defaults=None, demo=None, progressive=False, gs="ema",
                  figures=COMMON_FIGURES, description=""):
    """Register an architecture under `name` (see `Arch` for the fields). Re-registering a name replaces it.

    Args:
        name: the `--arch` value.
        build: `build(opts, resolution, num_channels, label_size) -> (G, D)`.
        data: "single" or "pyramid".
        defaults: TrainingOptions field -> default for this arch.
        demo: TrainingOptions field -> value for the built-in demo run with this arch.
        progressive: whether it grows progressively.
        gs: "ema" or "copy".
        figures: the generate.py figures it supports.
        description: one line.

    Returns:
        The `Arch`.

    Example:
        >>> register_arch("tiny", build=lambda opts, r, c, l: (MyG(r, c), MyD(r, c)),
        ...               defaults={"lrate": 2e-4, "adam_beta1": 0.5}, figures=COMMON_FIGURES)
    """
    if data not in ("single", "pyramid"):
        raise ValueError(f"register_arch({name!r}): data must be 'single' or 'pyramid', got {data!r}")
    if gs not in ("ema", "copy"):
        raise ValueError(f"register_arch({name!r}): gs must be 'ema' or 'copy', got {gs!r}")
    unknown = set(figures) - set(ALL_FIGURES)
    if unknown:
        raise ValueError(f"register_arch({name!r}): unknown figures {sorted(unknown)}")
    arch = Arch(name=name, build=build, data=data, defaults=dict(defaults or {}), demo=dict(demo or {}),
                progressive=bool(progressive), gs=gs, figures=tuple(figures), description=description)
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
    """Raise ArchError (one line) if the network's architecture does not support generate.py `figure`."""
    name = arch_of(network)
    arch = get_arch(name) if name in arch_names() else None
    if arch is not None and figure not in arch.figures:
        raise ArchError(f"{figure} needs a StyleGAN generator (mapping network, styles, noise inputs); this "
                        f"network is {name}: use one of {', '.join(f for f in arch.figures if f != 'convert')}")
