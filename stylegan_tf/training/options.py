"""Every option of a training run, its validation, the run directory's name and the options fingerprint."""
import dataclasses
import hashlib
import json
import math
import numbers
import os
import re

from stylegan_tf import augment as augment_lib
from stylegan_tf.augment import adaptive
from stylegan_tf.networks.archs import ArchError, arch_names, get_arch
# StyleGAN's Table-1 configurations live with the StyleGAN architecture; re-exported here for the option checks.
from stylegan_tf.networks.stylegan_arch import CONFIGS, stylegan_kwargs
from stylegan_tf.networks.mapping import MAPPINGS, mapping_help, mapping_names
from stylegan_tf.training import loss as loss_lib
from stylegan_tf.training.schedule import BATCH_PRESETS, STYLEGAN_LRATE_DICT, TICK_KIMG_DICT, TrainingSchedule

DEMO_DIRNAME = "demo-faces-{res}"

# The demo (no --data): StyleGAN at 32x32, trained at full resolution for the 160 kimg that fit 10 minutes on a
# 2-core CPU. Every value was chosen by measured SWD: docs/performance.md ("The demo") has why each differs from
# the official one; benchmarks/demo_check.py re-measures them. Flags given still win.
DEMO_OPTIONS = dict(resolution=32, total_kimg=160.0, minibatch=16, lrate=0.008, gamma=50.0,
                    lod_initial_resolution=32, tick_kimg=4.0, fmap_base=256, fmap_max=64, latent_size=64,
                    dlatent_size=64, mapping_layers=4, mapping_fmaps=64, snap_ticks=4, mirror=True,
                    g_smoothing_kimg=3.0, style_mixing_prob=0.2)

# The official FFHQ run is 25000 kimg; anything past 40 times that is a typo (and `inf`/`1e9` would make even
# the --dry-run schedule table endless), so every kimg-valued option stops there.
MAX_KIMG = 1e6
# (lowest, highest, lowest excluded) of every numeric option. The upper bounds are far above any real run and
# only stop numbers that would exhaust memory or time before training could start.
LIMITS = {
    "resolution": (4, 8192, False), "lod_initial_resolution": (4, 8192, False),
    "total_kimg": (0, MAX_KIMG, True), "lod_training_kimg": (0, MAX_KIMG, False),
    "lod_transition_kimg": (0, MAX_KIMG, False), "tick_kimg": (0, MAX_KIMG, True),
    "g_smoothing_kimg": (0, MAX_KIMG, False), "resume_kimg": (0, MAX_KIMG, False),
    "gamma": (0, 1e6, False), "lrate": (0, 1.0, True), "gpus": (1, 64, False), "minibatch": (1, 65536, False),
    "r1_interval": (1, 10 ** 6, False), "style_mixing_prob": (0, 1.0, False),
    "minibatch_repeats": (1, 1000, False), "snap_ticks": (1, 10 ** 6, False), "image_snap_ticks": (1, 10 ** 6, False),
    "snap_minutes": (0, 1e6, True), "keep_snapshots": (1, 10 ** 6, False), "seed": (0, 2 ** 32 - 1, False),
    "fmap_base": (1, 2 ** 20, False), "fmap_max": (1, 2 ** 14, False), "fmap_decay": (0, 10.0, False),
    "latent_size": (1, 2 ** 14, False), "dlatent_size": (1, 2 ** 14, False), "mapping_layers": (0, 64, False),
    "mapping_fmaps": (1, 2 ** 14, False), "width": (1, 2 ** 14, False), "adam_beta1": (0, 1.0, False),
    "adam_beta2": (0, 1.0, False), "adam_epsilon": (0, 1.0, True), "mbstd_group_size": (1, 2 ** 16, False),
    "ada_kimg": (0, MAX_KIMG, True), "ada_interval": (1, 10 ** 6, False), "freeze_d": (0, 64, False),
}
MAX_GRID = 64    # columns and rows of the fakes grid
DEFAULT_DIFFAUGMENT = "color,translation,cutout"
# What only --augment ada or fixed uses; DiffAugment has no p.
ADA_OPTIONS = ("augpipe", "target", "ada_kimg", "ada_interval", "aug_p")
ADAPTIVE_ONLY = ("target", "ada_kimg", "ada_interval")
# Networks up to this many feature maps per layer train faster with one core per op (inter-op) than with each op
# split over the cores: the demo -20 % per kimg on 2 cores, a default-width 64x64 network +16 % (docs/performance.md).
SMALL_FMAP_MAX = 64
CPU_PARALLELISM = ("auto", "intra-op", "inter-op")
# Options whose value is a name or a path: text (a pathlib.Path is taken for the paths), never a list or a number.
TEXT_OPTIONS = ("data", "outdir", "arch", "config", "loss", "batch_preset", "resume", "cpu_parallelism", "mapping",
                "grid", "augment", "augpipe", "diffaugment")
PATH_OPTIONS = ("data", "outdir", "resume")
SWITCH_OPTIONS = ("mirror", "mixed_precision", "dry_run", "progress")


class OptionsError(ValueError):
    """A bad option: the message is one line naming the flag and what to do."""


def _opt(default, help=None, **kw):
    """A field of TrainingOptions; `help` is its train.py --help line (no help: not a command-line flag), or a
    function that makes it (the lines that list a registry's names)."""
    meta = dict(help=help, **kw)
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass
class TrainingOptions:
    """Every option of a training run. The defaults here are the official StyleGAN (FFHQ) ones and the only
    definition of them: train.py builds its flags and --help from these fields (`help`, and `unset` for what
    None means); `DEMO_OPTIONS` lists what the built-in demo changes."""
    data: str = _opt(None, "dataset folder made by dataset_tool.py", metavar="DIR",
                     unset="build and train the demo dataset")
    outdir: str = _opt("results", "where run directories NNNNN-desc are created", metavar="DIR")
    arch: str = _opt("stylegan", lambda: f"architecture: {', '.join(arch_names())} (each brings its own defaults "
                     "for the options you do not give; a resumed network brings its own; docs/architectures.md)",
                     metavar="NAME")
    config: str = _opt("stylegan", lambda: f"StyleGAN generator configuration: {', '.join(CONFIGS)} (stylegan = "
                       "configF; configB..configE of the paper's Table 1; progan: configB with WGAN-GP)",
                       metavar="NAME")
    resolution: int = _opt(None, "train at this resolution of the dataset", unset="the dataset's full resolution")
    total_kimg: float = _opt(25000.0, "length of training in thousands of real images")
    mirror: bool = _opt(False, "augment with random left-right mirroring")
    loss: str = _opt("logistic", lambda: f"GAN loss: {loss_help()}", metavar="NAME")
    gamma: float = _opt(10.0, "R1 weight for the logistic loss")
    r1_interval: int = _opt(1, "lazy R1 (StyleGAN2): the R1 penalty only every K minibatches, with gamma * K; "
                            "1 = every minibatch, as StyleGAN (docs/performance.md has its measured speed-up)",
                            metavar="K")
    style_mixing_prob: float = _opt(None, "probability of style-mixing regularisation per minibatch (StyleGAN's "
                                    "G_args.style_mixing_prob)", metavar="P",
                                    unset="the config's: 0.9, or 0 for configB-E")
    gpus: int = _opt(1, "number of GPUs (MirroredStrategy)")
    batch_preset: str = _opt(None, "official minibatch table: 1gpu, 2gpu, 4gpu or 8gpu", metavar="PRESET",
                             unset="from --gpus")
    minibatch: int = _opt(None, "one global minibatch for every resolution (overrides the preset)",
                          unset="the preset's per-resolution minibatch")
    lrate: float = _opt(None, "one learning rate for every resolution (overrides the official dict)",
                        unset="official per-resolution")
    lod_initial_resolution: int = _opt(8, "resolution training starts at")
    lod_training_kimg: float = _opt(600.0, "kimg per level before fading in the next")
    lod_transition_kimg: float = _opt(600.0, "kimg of each fade-in")
    tick_kimg: float = _opt(None, "one tick length for every resolution", unset="official per-resolution")
    minibatch_repeats: int = _opt(4)
    g_smoothing_kimg: float = _opt(10.0, "half-life of Gs, the running average of G, in kimg")
    snap_ticks: int = _opt(10, "network snapshot every N ticks")
    image_snap_ticks: int = _opt(1, "fakes grid every N ticks")
    snap_minutes: float = _opt(None, "also snapshot at least every M minutes (for Colab)", unset="off")
    keep_snapshots: int = _opt(None, "keep only the N newest snapshots", unset="keep all")
    metrics: list = _opt([], "comma-separated metrics run on every snapshot, e.g. fid50k", metavar="NAMES",
                         unset="none")
    resume: str = _opt(None, "'auto' (newest run with the same data and options), a .keras snapshot or an "
                       "official .pkl", unset="start from scratch", metavar="auto|FILE")
    resume_kimg: float = _opt(None, "where the new schedule starts when fine-tuning (an official .pkl, or a "
                              "snapshot onto other data)", unset="0")
    augment: str = _opt("none", "augment every image D sees (small datasets; docs/small_data.md): none, ada "
                        "(adaptive p, ADA), fixed (p = --aug-p throughout) or diffaugment", metavar="MODE")
    augpipe: str = _opt(None, lambda: f"ADA's augmentation pipe: {', '.join(augment_lib.pipe_names())}",
                        metavar="PIPE", unset=f"{augment_lib.DEFAULT_PIPE}")
    target: float = _opt(None, "ADA's target for r_t = E[sign(D(reals))], in (0, 1)",
                         unset=f"{adaptive.DEFAULT_TARGET}")
    ada_kimg: float = _opt(None, "ADA's speed: kimg for p to move from 0 to 1", unset=f"{adaptive.DEFAULT_KIMG}")
    ada_interval: int = _opt(None, "minibatches between ADA's adjustments of p", metavar="N",
                             unset=f"{adaptive.DEFAULT_INTERVAL}")
    aug_p: float = _opt(None, "augmentation probability p: where --augment ada starts, --augment fixed's p",
                        metavar="P", unset="0 (ada); required for fixed")
    diffaugment: str = _opt(None, lambda: f"DiffAugment's policy, comma-separated: {', '.join(augment_lib.POLICIES)}",
                            metavar="POLICY", unset=DEFAULT_DIFFAUGMENT)
    freeze_d: int = _opt(0, "FreezeD (transfer learning): keep the N highest-resolution blocks of D fixed "
                         "(StyleGAN's discriminator)", metavar="N")
    seed: int = _opt(1000, "random seed")
    mixed_precision: bool = _opt(False, "fp16 with loss scaling on GPU, bf16 on CPU, instead of fp32")
    cpu_parallelism: str = _opt("auto", "how TensorFlow uses the CPU cores: intra-op (each op split over all "
                                "cores, TensorFlow's default), inter-op (one core per op, independent ops side by "
                                "side: faster for small networks), auto (inter-op when --fmap-max <= "
                                f"{SMALL_FMAP_MAX}, else intra-op); docs/performance.md has the measurements",
                                metavar="MODE")
    fmap_base: int = _opt(8192, "feature maps: nf(stage) = min(fmap_base / 2**stage, fmap_max)")
    fmap_max: int = _opt(512, "largest number of feature maps")
    mbstd_group_size: int = _opt(None, "minibatch stddev (D's last block): the feature stddev over groups of G "
                                 "images of a minibatch (official D_args.mbstd_group_size; 1 = off)", metavar="G",
                                 unset="4, the official value")
    width: int = _opt(None, "DCGAN width: maps of G's last and D's first hidden layer (the tutorial's ngf/ndf), "
                      "doubling per halving of resolution up to --fmap-max", unset="the arch's: 64")
    adam_beta1: float = _opt(0.0, "Adam beta1 (DCGAN's default: 0.5)")
    adam_beta2: float = _opt(0.99, "Adam beta2 (DCGAN's default: 0.999)")
    adam_epsilon: float = _opt(1e-8, "Adam epsilon")
    fmap_decay: float = _opt(1.0)
    latent_size: int = _opt(512, "size of z")
    dlatent_size: int = _opt(512, "size of w (--mapping fc; a per-level mapping's styles are --mapping-fmaps wide)")
    mapping: str = _opt("fc", lambda: f"mapping network: {mapping_help()} (docs/mapping_variants.md)",
                        metavar="NAME")
    mapping_layers: int = _opt(8, "layers of the mapping network (a per-level mapping: style levels, one dense layer "
                               "each)")
    mapping_fmaps: int = _opt(512, "width of the mapping network (a per-level mapping: also the style width, "
                              "which replaces --dlatent-size)")
    grid: str = _opt(None, "fakes grid size as COLSxROWS, e.g. 8x4", metavar="COLSxROWS",
                     unset="from the resolution, at most 12x8")
    subset_class: str = _opt(None, "train on one class of a labelled dataset (its name or index); the networks "
                             "are then unconditional", metavar="NAME|INDEX", unset="every image")
    dry_run: bool = _opt(False, "print the resolved options and the schedule table, then exit")
    progress: bool = _opt(True)

    def __post_init__(self):
        # A pathlib.Path names a folder as well as a string does; the options are written as JSON, so keep text.
        for name in PATH_OPTIONS:
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, os.fspath(getattr(self, name)))
        # A per-level mapping's styles are mapping_fmaps wide: that is the dlatent size really trained, and what
        # is recorded, unless --dlatent-size was given (then `validate` checks the two agree).
        if (self.dlatent_size == DEFAULT_DLATENT_SIZE and per_level_mapping(self.mapping)
                and isinstance(self.mapping_fmaps, int) and not isinstance(self.mapping_fmaps, bool)):
            self.dlatent_size = self.mapping_fmaps

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def for_arch(cls, arch="stylegan", demo=False, **given):
        """Options for architecture `arch`: its registered defaults (and, with `demo`, what the built-in demo
        sets for it), under the options in `given`.

        Example:
            >>> TrainingOptions.for_arch("dcgan", data="datasets/wikiart", minibatch=128, latent_size=128,
            ...                          lrate=0.001).adam_beta1
            0.5
        """
        kw = dict(get_arch(arch).defaults) if arch in arch_names() else {}
        if arch in arch_names() and get_arch(arch).gs == "copy":
            kw.setdefault("g_smoothing_kimg", 0.0)       # Gs is a copy of G: no running average
        if demo:
            kw.update(demo_options(arch, given.get("config", "stylegan")))
        kw.update(given)
        if "dlatent_size" not in given and per_level_mapping(kw.get("mapping")):
            kw.pop("dlatent_size", None)        # the styles are mapping_fmaps wide (see __post_init__)
        return cls(arch=arch, **kw)

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


DEFAULT_DLATENT_SIZE = TrainingOptions.__dataclass_fields__["dlatent_size"].default


def per_level_mapping(name):
    """Whether `name` is a registered mapping with one style per level (whose styles are mapping_fmaps wide)."""
    return isinstance(name, str) and name in mapping_names() and MAPPINGS[name].per_level


def help_text(field):
    """The train.py --help line of TrainingOptions field `field` (a dataclasses.Field), None for a non-flag."""
    text = field.metadata.get("help")
    return text() if callable(text) else text


def loss_help():
    """The registered losses with their descriptions, for --loss's help."""
    return "; ".join(f"{name}: {loss_lib.LOSSES[name].description}" if loss_lib.LOSSES[name].description else name
                     for name in loss_lib.loss_names())


# Options that change what is trained (not where it is written or how often it reports): a run
# resumed with `--resume auto` must agree on all of these.
FINGERPRINT_KEYS = ("config", "resolution", "mirror", "loss", "gamma", "gpus", "batch_preset", "minibatch",
                    "lrate", "lod_initial_resolution", "lod_training_kimg", "lod_transition_kimg",
                    "minibatch_repeats", "g_smoothing_kimg", "seed", "mixed_precision", "fmap_base", "fmap_max",
                    "fmap_decay", "latent_size", "dlatent_size", "mapping_layers", "mapping_fmaps")


# Options added after runs existed: fingerprinted only when not at their default, so a StyleGAN run started before
# they existed is still found by `--resume auto`.
LATER_FINGERPRINT_KEYS = ("arch", "width", "adam_beta1", "adam_beta2", "adam_epsilon", "subset_class", "mapping",
                          "r1_interval", "style_mixing_prob", "mbstd_group_size", "augment", "augpipe", "target",
                          "ada_kimg", "ada_interval", "aug_p", "diffaugment", "freeze_d")


def demo_options(arch, config="stylegan"):
    """What the built-in demo (no --data) sets for `arch`: DEMO_OPTIONS for StyleGAN, the arch's `demo` else.
    A Table-1 `config` that defines its own style mixing (configB-E: none) keeps it in the demo too."""
    if arch == "stylegan":
        demo = dict(DEMO_OPTIONS)
        if "style_mixing_prob" in CONFIGS.get(config, {}):
            del demo["style_mixing_prob"]
        return demo
    return dict(get_arch(arch).demo) if arch in arch_names() else {}


def fingerprint(opts, dataset_path):
    d = {k: getattr(opts, k) for k in FINGERPRINT_KEYS}
    if per_level_mapping(opts.mapping):
        # Its styles are mapping_fmaps wide (fingerprinted already); runs started before the dlatent size was
        # recorded as that width were fingerprinted with the default, and --resume auto must still find them.
        d["dlatent_size"] = DEFAULT_DLATENT_SIZE
    defaults = TrainingOptions()
    d.update({k: getattr(opts, k) for k in LATER_FINGERPRINT_KEYS if getattr(opts, k) != getattr(defaults, k)})
    d["data"] = os.path.abspath(dataset_path)
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _pow2(n):
    return isinstance(n, int) and n >= 4 and n & (n - 1) == 0


def flag_name(field):
    return "--" + field.replace("_", "-")


def _fmt(x):
    return str(x) if isinstance(x, numbers.Integral) else f"{x:g}"


def _number_error(name, value, kind):
    """The one-line complaint about numeric option `name`, or None when `value` is fine."""
    lo, hi, lo_open = LIMITS[name]
    lo, hi = (_fmt(v) for v in (lo, hi)) if kind is int else (f"{lo:g}", f"{hi:g}")
    flag = flag_name(name)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return f"{flag} must be a number, got {value!r}"
    if kind is int and not isinstance(value, numbers.Integral):
        return f"{flag} must be a whole number, got {value!r}"
    if not math.isfinite(value):
        return f"{flag} {value} is not a finite number: give one between {lo} and {hi}"
    low, high, low_open = LIMITS[name]
    if value < low or (low_open and value == low) or value > high:
        return f"{flag} {_fmt(value)} is out of range: give one {'above' if low_open else 'from'} {lo} up to {hi}"
    return None


def _mbstd_errors(opts):
    """The minibatch stddev splits each GPU's minibatch into groups: it must divide into them."""
    if opts.minibatch is not None:
        per_gpu = {opts.minibatch // opts.gpus} if opts.minibatch % opts.gpus == 0 else set()
    else:
        preset = opts.batch_preset or ("%dgpu" % opts.gpus)
        per_gpu = {mb // opts.gpus for mb in BATCH_PRESETS[preset][1].values()} if preset in BATCH_PRESETS else set()
    g = opts.mbstd_group_size
    bad = sorted(mb for mb in per_gpu if mb % min(g, mb))
    return [f"--mbstd-group-size {g}: the minibatch per GPU ({', '.join(map(str, bad))}) must be a multiple of it; "
            "give a power of two"] if bad else []


def _type_errors(opts):
    """Values of the wrong kind (a list for --data, a number for --arch): one line each. Checked first: the other
    checks take each value for what its option holds."""
    errs = []
    for name in TEXT_OPTIONS:
        value = getattr(opts, name)
        if value is not None and not isinstance(value, str):
            what = "a path" if name in PATH_OPTIONS else "a name"
            errs.append(f"{flag_name(name)} must be {what} (text), got {type(value).__name__} {value!r:.80}")
    for name in SWITCH_OPTIONS:
        if not isinstance(getattr(opts, name), bool):
            errs.append(f"{flag_name(name)} must be True or False, got {getattr(opts, name)!r:.80}")
    if opts.subset_class is not None and (isinstance(opts.subset_class, bool)
                                          or not isinstance(opts.subset_class, (str, int))):
        errs.append(f"--subset-class must be a class name or index, got {opts.subset_class!r:.80}")
    if not isinstance(opts.metrics, (list, tuple)) or not all(isinstance(m, str) for m in opts.metrics):
        errs.append(f"--metrics must be a list of metric names, got {opts.metrics!r:.80}")
    return errs


def _outdir_errors(outdir):
    """--outdir must be a folder or creatable as one: the first part of it that exists must be a folder."""
    path = os.path.abspath(outdir)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    if os.path.isdir(path):
        return []
    what = "is a file" if path == os.path.abspath(outdir) else f"is inside the file {path}"
    return [f"--outdir {outdir} {what}, not a folder: give a folder (it is created if missing)"]


def validate(opts):
    """All problems with the options, one line each (empty list = fine). Dataset checks come later."""
    errs = _type_errors(opts)
    if errs:
        return errs
    kinds = {f.name: f.type for f in dataclasses.fields(TrainingOptions)}
    bad = set()
    for name in LIMITS:
        value = getattr(opts, name)
        if value is None and TrainingOptions.__dataclass_fields__[name].default is None:
            continue
        err = _number_error(name, value, kinds[name])
        if err:
            errs.append(err)
            bad.add(name)
    if opts.data is not None and not os.path.isdir(opts.data):
        errs.append(f"--data {opts.data}: no such folder (make one with dataset_tool.py, or omit --data for the demo)")
    errs += _outdir_errors(opts.outdir)
    if opts.config not in CONFIGS:
        errs.append(f"--config {opts.config!r} is unknown: choose one of {', '.join(CONFIGS)}")
    if opts.arch not in arch_names():
        errs.append(str(ArchError(f"--arch {opts.arch!r} is unknown: choose one of {', '.join(arch_names())}")))
    else:
        arch = get_arch(opts.arch)
        if opts.config not in ("stylegan", "configF") and not arch.styles:
            errs.append(f"--config {opts.config} is a StyleGAN generator configuration: it does not apply to "
                        f"--arch {opts.arch}")
        if opts.width is not None and arch.sizing != "width":
            errs.append(f"--width applies to DCGAN-style networks; --arch {opts.arch} is sized by "
                        "--fmap-base/--fmap-max")
        if opts.mbstd_group_size is not None and arch.sizing == "width":
            errs.append(f"--mbstd-group-size applies to the discriminators sized by --fmap-base (StyleGAN's, "
                        f"MSG-GAN's), not --arch {opts.arch}")
    if opts.style_mixing_prob is not None and "style_mixing_prob" not in bad:
        errs += _style_errors(opts, "--style-mixing-prob mixes styles")
    if opts.subset_class is not None and not str(opts.subset_class).strip():
        errs.append("--subset-class is empty: give a class name or index")
    if opts.cpu_parallelism not in CPU_PARALLELISM:
        errs.append(f"--cpu-parallelism {opts.cpu_parallelism!r} is unknown: choose one of "
                    f"{', '.join(CPU_PARALLELISM)}")
    if opts.loss not in loss_lib.LOSSES:
        errs.append(f"--loss {opts.loss!r} is unknown: choose one of {', '.join(loss_lib.LOSSES)}")
    elif "r1_interval" not in bad and opts.r1_interval != 1 and (not loss_lib.get_loss(opts.loss).lazy_r1
                                                                 or opts.config == "progan"):
        lazy = [name for name in loss_lib.loss_names() if loss_lib.get_loss(name).lazy_r1]
        what = "--config progan (WGAN-GP)" if opts.loss in lazy else f"--loss {opts.loss}"
        errs.append(f"--r1-interval applies to the R1 penalty of --loss {' or '.join(lazy)}, not {what}")
    errs += _mapping_errors(opts, bad)
    errs += _augment_errors(opts, bad)
    for name in ("resolution", "lod_initial_resolution"):
        value = getattr(opts, name)
        if name not in bad and value is not None and not _pow2(value):
            errs.append(f"{flag_name(name)} {value} must be a power of two >= 4")
    if opts.batch_preset is not None and opts.batch_preset not in BATCH_PRESETS:
        errs.append(f"--batch-preset {opts.batch_preset!r} is unknown: choose one of {', '.join(BATCH_PRESETS)}")
    if opts.minibatch is not None and not bad & {"minibatch", "gpus"} and opts.minibatch % opts.gpus:
        errs.append(f"--minibatch {opts.minibatch} must be divisible by --gpus {opts.gpus}")
    if opts.mbstd_group_size is not None and not bad & {"mbstd_group_size", "minibatch", "gpus"}:
        errs += _mbstd_errors(opts)
    if opts.resume not in (None, "auto"):
        if not os.path.isfile(opts.resume):
            errs.append(f"--resume {opts.resume}: no such file (give a .keras snapshot, an official .pkl or 'auto')")
        elif not opts.resume.lower().endswith((".keras", ".pkl")):
            errs.append(f"--resume {opts.resume}: expected a .keras snapshot or an official .pkl")
    if opts.grid is not None:
        m = re.fullmatch(r"(\d+)x(\d+)", str(opts.grid))
        if not m:
            errs.append(f"--grid {opts.grid!r} must look like 8x6 (columns x rows)")
        elif not all(1 <= int(v) <= MAX_GRID for v in m.groups()):
            errs.append(f"--grid {opts.grid}: columns and rows must each be 1 to {MAX_GRID}")
    if opts.metrics:
        try:
            from stylegan_tf.metrics import metric_base
            metric_base.parse_metric_names(list(opts.metrics))
        except ImportError as e:
            errs.append(f"--metrics needs stylegan_tf.metrics, which failed to import: {e}")
        except metric_base.MetricError as e:      # the metrics module's own one-line error naming the bad name
            errs.append(f"--metrics: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    return errs


def _augment_errors(opts, bad):
    """--augment and its options (one line each): names and ranges, and no option that the mode does not use;
    --freeze-d for a discriminator that has blocks to freeze."""
    errs = []
    try:
        mode = augment_lib.check_mode(opts.augment)
    except ValueError as e:
        return [str(e)]
    given = [name for name in ADA_OPTIONS if getattr(opts, name) is not None]
    if mode in ("none", "diffaugment") and given:
        errs.append(f"{', '.join(map(flag_name, given))}: ADA's option(s), not used by --augment {mode}; "
                    "give --augment ada or fixed, or leave them out")
    elif mode == "fixed" and set(given) & set(ADAPTIVE_ONLY):
        errs.append(f"{', '.join(flag_name(n) for n in given if n in ADAPTIVE_ONLY)}: adjust p, which "
                    "--augment fixed keeps at --aug-p; give --augment ada or leave them out")
    elif mode == "fixed" and opts.aug_p is None:
        errs.append("--augment fixed needs --aug-p P: the augmentation probability, in [0, 1]")
    if opts.diffaugment is not None and mode != "diffaugment":
        errs.append(f"--diffaugment is DiffAugment's policy: give --augment diffaugment, not {mode}")
    checks = [("augpipe", augment_lib.get_pipe), ("target", augment_lib.check_target),
              ("aug_p", augment_lib.check_p), ("diffaugment", augment_lib.parse_policy)]
    for name, check in checks:
        if getattr(opts, name) is not None and name not in bad:
            try:
                check(getattr(opts, name))
            except (ValueError, TypeError) as e:
                errs.append(str(e) if str(e).startswith(flag_name(name)) else f"{flag_name(name)}: {e}")
    if opts.freeze_d and "freeze_d" not in bad and opts.arch != "stylegan":
        errs.append(f"--freeze-d freezes blocks of StyleGAN's progressive discriminator, not --arch {opts.arch}'s")
    return errs


def augment_settings(opts):
    """The model's augmentation settings for `opts` (`StyleGAN.set_augment`'s keyword arguments), the defaults
    filled in; {"mode": "none"} for --augment none."""
    if opts.augment == "none":
        return {"mode": "none"}
    if opts.augment == "diffaugment":
        return {"mode": "diffaugment", "diffaugment": opts.diffaugment or DEFAULT_DIFFAUGMENT}
    pick = lambda value, default: default if value is None else value  # noqa: E731
    return {"mode": opts.augment, "augpipe": pick(opts.augpipe, augment_lib.DEFAULT_PIPE),
            "target": float(pick(opts.target, adaptive.DEFAULT_TARGET)),
            "ada_kimg": float(pick(opts.ada_kimg, adaptive.DEFAULT_KIMG)),
            "ada_interval": int(pick(opts.ada_interval, adaptive.DEFAULT_INTERVAL)),
            "p": float(pick(opts.aug_p, 0.0))}


def _augment_description(opts):
    """The run-dir name's part for the augmentation: 'ada-bgc', 'fixed0.3-bgc', 'diffaug-color-translation'."""
    if opts.augment == "none":
        return []
    if opts.augment == "diffaugment":
        return ["diffaug-" + "-".join(augment_lib.parse_policy(opts.diffaugment or DEFAULT_DIFFAUGMENT))]
    pipe = opts.augpipe or augment_lib.DEFAULT_PIPE
    parts = [f"ada-{pipe}" if opts.augment == "ada" else f"fixed{opts.aug_p:g}-{pipe}"]
    if opts.augment == "ada" and opts.target is not None:
        parts.append(f"target{opts.target:g}")
    return parts


def _style_errors(opts, what):
    """The one-line error for an option (`what` it does) that needs a StyleGAN generator with styles."""
    arch = str(getattr(opts, "arch", "stylegan"))
    if arch in arch_names() and not get_arch(arch).styles:
        with_styles = ", ".join(name for name in arch_names() if get_arch(name).styles)
        return [f"{what}: --arch {arch} has no styles (use --arch {with_styles})"]
    if CONFIGS.get(opts.config, {}).get("use_styles", True) is False:
        return [f"{what}: --config {opts.config} has no styles (use stylegan or configC..configE)"]
    return []


def _mapping_errors(opts, bad):
    """--mapping: a registered name; a per-level variant needs styles and at least one level, and its styles are
    --mapping-fmaps wide (a --dlatent-size that says otherwise is refused, not recorded)."""
    names = mapping_names()
    if opts.mapping not in names:
        return [f"--mapping {opts.mapping!r} is unknown: choose one of {', '.join(names)}"]
    if not MAPPINGS[opts.mapping].per_level:
        return []
    errs = _style_errors(opts, f"--mapping {opts.mapping} gives each level a style")
    if "mapping_layers" not in bad and opts.mapping_layers < 1:
        errs.append(f"--mapping-layers {opts.mapping_layers}: --mapping {opts.mapping} needs at least one level")
    if not bad & {"dlatent_size", "mapping_fmaps"} and opts.dlatent_size != opts.mapping_fmaps:
        errs.append(f"--dlatent-size {opts.dlatent_size}: --mapping {opts.mapping} makes every style --mapping-fmaps "
                    f"wide ({opts.mapping_fmaps}): give --dlatent-size {opts.mapping_fmaps} or leave it out")
    return errs


def make_schedule(opts, resolution):
    """The official schedule for these options at dataset `resolution`."""
    preset = opts.batch_preset or (f"{opts.gpus}gpu" if f"{opts.gpus}gpu" in BATCH_PRESETS else "8gpu")
    base, mb_dict = BATCH_PRESETS[preset]
    if opts.minibatch is not None:
        base, mb_dict = opts.minibatch, {}
    lr_dict = dict(STYLEGAN_LRATE_DICT)
    if opts.config == "progan" or opts.loss == "wgan-gp":
        lr_dict = {k: min(v, 0.002) for k, v in lr_dict.items()}
    lr_base = 0.001
    if opts.lrate is not None:
        lr_base, lr_dict = opts.lrate, {}
    tick_base, tick_dict = 160.0, dict(TICK_KIMG_DICT)
    if opts.tick_kimg is not None:
        tick_base, tick_dict = float(opts.tick_kimg), {}
    # An architecture that does not grow trains one phase at full resolution.
    progressive = get_arch(opts.arch).progressive if opts.arch in arch_names() else True
    initial = min(opts.lod_initial_resolution, resolution) if progressive else resolution
    return TrainingSchedule(
        resolution=resolution, lod_initial_resolution=initial,
        lod_training_kimg=opts.lod_training_kimg, lod_transition_kimg=opts.lod_transition_kimg,
        minibatch_base=base, minibatch_dict=mb_dict, G_lrate_base=lr_base, G_lrate_dict=lr_dict,
        D_lrate_base=lr_base, D_lrate_dict=dict(lr_dict), tick_kimg_base=tick_base, tick_kimg_dict=tick_dict,
        num_gpus=opts.gpus)


def network_kwargs(opts, resolution, num_channels, label_size):
    """StyleGAN's (Generator kwargs, Discriminator kwargs) for `opts` (defined in networks/stylegan_arch.py)."""
    return stylegan_kwargs(opts, resolution, num_channels, label_size)


def loss_settings(opts):
    name = "wgan-gp" if opts.config == "progan" and opts.loss == "logistic" else opts.loss
    kwargs = {"gamma": opts.gamma} if name == "logistic" else {}
    if name == "logistic" and opts.r1_interval != 1:
        # Only a lazy run stores the key: an official run's loss kwargs stay exactly {"gamma": ...}.
        kwargs["r1_interval"] = int(opts.r1_interval)
    return name, kwargs


def run_description(opts, dataset_name, resolution, class_name=None):
    """`sgan-<dataset>-<res>` plus the options that differ from the arch's defaults, as the original's desc.

    Args:
        opts: the options trained (a `TrainingOptions`).
        dataset_name: the dataset folder's name.
        resolution: the training resolution.
        class_name: with --subset-class, the class's name (the dataset's label name; else its index).

    Example:
        >>> run_description(TrainingOptions(mapping="v4", mirror=True), "faces", 64)
        'sgan-faces-64-1gpu-mapv4-mirror'
    """
    defaults = TrainingOptions.for_arch(opts.arch) if opts.arch in arch_names() else TrainingOptions()
    parts = ["sgan" if opts.config in ("stylegan", "configF") else opts.config, dataset_name, str(resolution)]
    if opts.arch != "stylegan":
        parts[0] = opts.arch
    if opts.subset_class is not None:
        parts.insert(2, f"class{opts.subset_class if class_name is None else class_name}")
    parts.append(opts.batch_preset or f"{opts.gpus}gpu")
    if opts.loss != defaults.loss:
        parts.append(opts.loss)
    if opts.gamma != defaults.gamma and opts.loss == "logistic":
        parts.append(f"gamma{opts.gamma:g}")
    if opts.r1_interval != 1:
        parts.append(f"r1every{opts.r1_interval}")
    if opts.style_mixing_prob is not None:
        parts.append(f"mix{opts.style_mixing_prob:g}")
    if opts.mbstd_group_size is not None:
        parts.append(f"mbstd{opts.mbstd_group_size}")
    if opts.mapping != defaults.mapping:
        parts.append(f"map{opts.mapping}")
    if opts.mirror:
        parts.append("mirror")
    if opts.minibatch != defaults.minibatch:
        parts.append(f"mb{opts.minibatch}")
    # The widths by the flags that set them for this architecture (DCGAN has no fmap_base).
    if opts.arch in arch_names() and get_arch(opts.arch).sizing == "width":
        if opts.width != defaults.width or opts.fmap_max != defaults.fmap_max:
            parts.append(f"width{opts.width}-{opts.fmap_max}")
    elif opts.fmap_max != defaults.fmap_max or opts.fmap_base != defaults.fmap_base:
        parts.append(f"fmap{opts.fmap_base}-{opts.fmap_max}")
    parts += _augment_description(opts)
    if opts.freeze_d:
        parts.append(f"freezed{opts.freeze_d}")
    if opts.mixed_precision:
        parts.append("mixed")
    desc = "-".join(parts)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", desc)


def new_run_dir(outdir, desc):
    """results/NNNNN-desc with the next free id (ids are never reused)."""
    os.makedirs(outdir, exist_ok=True)
    ids = [int(m.group(1)) for m in (re.match(r"^(\d+)-", n) for n in os.listdir(outdir)) if m]
    run_id = max(ids, default=-1) + 1
    while True:
        path = os.path.join(outdir, f"{run_id:05d}-{desc}")
        try:
            os.makedirs(path)
            return path
        except FileExistsError:
            run_id += 1


def grid_size(opts, resolution):
    if opts.grid:
        w, h = (int(v) for v in opts.grid.split("x"))
        return w, h
    # The original's "1080p" grid, capped so that CPU runs do not spend their time drawing pictures.
    return int(min(max(1920 // resolution, 3), 12)), int(min(max(1080 // resolution, 2), 8))
