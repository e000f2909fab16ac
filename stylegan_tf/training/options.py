"""Every option of a training run, its validation, the run directory's name and the options fingerprint."""
import dataclasses
import hashlib
import json
import os
import re

from stylegan_tf.training.loss import LOSSES
from stylegan_tf.training.schedule import BATCH_PRESETS, STYLEGAN_LRATE_DICT, TICK_KIMG_DICT, TrainingSchedule

# Generator options of the paper's Table 1 configurations (F = the StyleGAN default).
CONFIGS = {
    "stylegan": {},
    "configF": {},
    "configE": {"style_mixing_prob": 0.0},
    "configD": {"style_mixing_prob": 0.0, "use_noise": False},
    "configC": {"const_input_layer": False, "style_mixing_prob": 0.0, "use_noise": False},
    "configB": {"use_styles": False, "use_pixel_norm": True, "use_instance_norm": False, "mapping_layers": 0,
                "const_input_layer": False, "style_mixing_prob": 0.0, "use_noise": False},
}
# "progan": config B's traditional generator trained with WGAN-GP, ProGAN's loss (lr capped at 0.002 as the
# official "-wgangp" option does). Not NVIDIA's separate ProGAN network code.
CONFIGS["progan"] = dict(CONFIGS["configB"])

DEMO_DIRNAME = "demo-faces-{res}"


class OptionsError(ValueError):
    """A bad option: the message is one line naming the flag and what to do."""


@dataclasses.dataclass
class TrainingOptions:
    data: str = None                 # dataset folder (None = the built-in demo)
    outdir: str = "results"
    config: str = "stylegan"
    resolution: int = None           # train at this level of the dataset (default: its full resolution)
    total_kimg: float = 25000.0
    mirror: bool = False
    loss: str = "logistic"
    gamma: float = 10.0
    gpus: int = 1
    batch_preset: str = None         # 1gpu/2gpu/4gpu/8gpu (default: from --gpus)
    minibatch: int = None            # fixed global minibatch at every resolution (overrides the preset)
    lrate: float = None              # fixed learning rate at every resolution (overrides the lr dict)
    lod_initial_resolution: int = 8
    lod_training_kimg: float = 600.0
    lod_transition_kimg: float = 600.0
    tick_kimg: float = None          # fixed tick length (overrides the per-resolution dict)
    minibatch_repeats: int = 4
    g_smoothing_kimg: float = 10.0
    snap_ticks: int = 10
    image_snap_ticks: int = 1
    snap_minutes: float = None
    keep_snapshots: int = None
    metrics: list = dataclasses.field(default_factory=list)
    resume: str = None               # None, "auto", a .keras snapshot, or an official .pkl
    resume_kimg: float = None
    seed: int = 1000
    mixed_precision: bool = False
    fmap_base: int = 8192
    fmap_max: int = 512
    fmap_decay: float = 1.0
    latent_size: int = 512
    dlatent_size: int = 512
    mapping_layers: int = 8
    mapping_fmaps: int = 512
    grid: str = None                 # "WxH" of the fakes grid (default: from the resolution)
    dry_run: bool = False
    progress: bool = True

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# Options that change what is trained (not where it is written or how often it reports): a run
# resumed with `--resume auto` must agree on all of these.
FINGERPRINT_KEYS = ("config", "resolution", "mirror", "loss", "gamma", "gpus", "batch_preset", "minibatch",
                    "lrate", "lod_initial_resolution", "lod_training_kimg", "lod_transition_kimg",
                    "minibatch_repeats", "g_smoothing_kimg", "seed", "mixed_precision", "fmap_base", "fmap_max",
                    "fmap_decay", "latent_size", "dlatent_size", "mapping_layers", "mapping_fmaps")


def fingerprint(opts, dataset_path):
    d = {k: getattr(opts, k) for k in FINGERPRINT_KEYS}
    d["data"] = os.path.abspath(dataset_path)
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _pow2(n):
    return isinstance(n, int) and n >= 4 and n & (n - 1) == 0


def validate(opts):
    """All problems with the options, one line each (empty list = fine). Dataset checks come later."""
    errs = []
    if opts.data is not None and not os.path.isdir(opts.data):
        errs.append(f"--data {opts.data}: no such folder (make one with dataset_tool.py, or omit --data for the demo)")
    if opts.config not in CONFIGS:
        errs.append(f"--config {opts.config!r} is unknown: choose one of {', '.join(CONFIGS)}")
    if opts.loss not in LOSSES:
        errs.append(f"--loss {opts.loss!r} is unknown: choose one of {', '.join(LOSSES)}")
    if opts.resolution is not None and not _pow2(opts.resolution):
        errs.append(f"--resolution {opts.resolution} must be a power of two >= 4")
    if not _pow2(opts.lod_initial_resolution):
        errs.append(f"--lod-initial-resolution {opts.lod_initial_resolution} must be a power of two >= 4")
    if not opts.total_kimg > 0:
        errs.append(f"--total-kimg must be > 0, got {opts.total_kimg}")
    if opts.gamma < 0:
        errs.append(f"--gamma must be >= 0, got {opts.gamma}")
    if opts.gpus < 1:
        errs.append(f"--gpus must be >= 1, got {opts.gpus}")
    if opts.batch_preset is not None and opts.batch_preset not in BATCH_PRESETS:
        errs.append(f"--batch-preset {opts.batch_preset!r} is unknown: choose one of {', '.join(BATCH_PRESETS)}")
    if opts.minibatch is not None and (opts.minibatch < 1 or opts.minibatch % opts.gpus):
        errs.append(f"--minibatch {opts.minibatch} must be >= 1 and divisible by --gpus {opts.gpus}")
    if opts.lrate is not None and not opts.lrate > 0:
        errs.append(f"--lrate must be > 0, got {opts.lrate}")
    for name in ("lod_training_kimg", "lod_transition_kimg"):
        if getattr(opts, name) < 0:
            errs.append(f"--{name.replace('_', '-')} must be >= 0, got {getattr(opts, name)}")
    if opts.tick_kimg is not None and not opts.tick_kimg > 0:
        errs.append(f"--tick-kimg must be > 0, got {opts.tick_kimg}")
    if opts.g_smoothing_kimg < 0:
        errs.append(f"--g-smoothing-kimg must be >= 0, got {opts.g_smoothing_kimg}")
    if opts.minibatch_repeats < 1:
        errs.append(f"--minibatch-repeats must be >= 1, got {opts.minibatch_repeats}")
    for name in ("snap_ticks", "image_snap_ticks"):
        if getattr(opts, name) < 1:
            errs.append(f"--{name.replace('_', '-')} must be >= 1, got {getattr(opts, name)}")
    if opts.snap_minutes is not None and not opts.snap_minutes > 0:
        errs.append(f"--snap-minutes must be > 0, got {opts.snap_minutes}")
    if opts.keep_snapshots is not None and opts.keep_snapshots < 1:
        errs.append(f"--keep-snapshots must be >= 1, got {opts.keep_snapshots}")
    if opts.resume_kimg is not None and opts.resume_kimg < 0:
        errs.append(f"--resume-kimg must be >= 0, got {opts.resume_kimg}")
    if opts.resume not in (None, "auto"):
        if not os.path.isfile(opts.resume):
            errs.append(f"--resume {opts.resume}: no such file (give a .keras snapshot, an official .pkl or 'auto')")
        elif not opts.resume.lower().endswith((".keras", ".pkl")):
            errs.append(f"--resume {opts.resume}: expected a .keras snapshot or an official .pkl")
    if opts.resume_kimg is not None and opts.resume is not None and str(opts.resume).endswith(".keras"):
        errs.append("--resume-kimg only applies to an official .pkl: a .keras snapshot knows its own kimg")
    for name in ("fmap_base", "fmap_max", "latent_size", "dlatent_size", "mapping_fmaps"):
        if getattr(opts, name) < 1:
            errs.append(f"--{name.replace('_', '-')} must be >= 1, got {getattr(opts, name)}")
    if opts.mapping_layers < 0:
        errs.append(f"--mapping-layers must be >= 0, got {opts.mapping_layers}")
    if opts.grid is not None and not re.fullmatch(r"\d+x\d+", opts.grid):
        errs.append(f"--grid {opts.grid!r} must look like 8x6 (columns x rows)")
    if opts.metrics:
        try:
            from stylegan_tf.metrics import metric_base
            metric_base.parse_metric_names(list(opts.metrics))
        except ImportError as e:
            errs.append(f"--metrics needs stylegan_tf.metrics, which failed to import: {e}")
        except metric_base.MetricError as e:      # the metrics module's own one-line error naming the bad name
            errs.append(f"--metrics: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
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
    return TrainingSchedule(
        resolution=resolution, lod_initial_resolution=min(opts.lod_initial_resolution, resolution),
        lod_training_kimg=opts.lod_training_kimg, lod_transition_kimg=opts.lod_transition_kimg,
        minibatch_base=base, minibatch_dict=mb_dict, G_lrate_base=lr_base, G_lrate_dict=lr_dict,
        D_lrate_base=lr_base, D_lrate_dict=dict(lr_dict), tick_kimg_base=tick_base, tick_kimg_dict=tick_dict,
        num_gpus=opts.gpus)


def network_kwargs(opts, resolution, num_channels, label_size):
    g = dict(resolution=resolution, num_channels=num_channels, label_size=label_size,
             latent_size=opts.latent_size, dlatent_size=opts.dlatent_size, mapping_layers=opts.mapping_layers,
             mapping_fmaps=opts.mapping_fmaps, fmap_base=opts.fmap_base, fmap_max=opts.fmap_max,
             fmap_decay=opts.fmap_decay)
    g.update(CONFIGS[opts.config])
    d = dict(resolution=resolution, num_channels=num_channels, label_size=label_size,
             fmap_base=opts.fmap_base, fmap_max=opts.fmap_max, fmap_decay=opts.fmap_decay)
    return g, d


def loss_settings(opts):
    name = "wgan-gp" if opts.config == "progan" and opts.loss == "logistic" else opts.loss
    kwargs = {"gamma": opts.gamma} if name == "logistic" else {}
    return name, kwargs


def run_description(opts, dataset_name, resolution):
    """`sgan-<dataset>-<res>` plus the options that differ from the defaults, as the original's desc."""
    defaults = TrainingOptions()
    parts = ["sgan" if opts.config in ("stylegan", "configF") else opts.config, dataset_name, str(resolution)]
    parts.append(opts.batch_preset or f"{opts.gpus}gpu")
    if opts.loss != defaults.loss:
        parts.append(opts.loss)
    if opts.gamma != defaults.gamma and opts.loss == "logistic":
        parts.append(f"gamma{opts.gamma:g}")
    if opts.mirror:
        parts.append("mirror")
    if opts.minibatch is not None:
        parts.append(f"mb{opts.minibatch}")
    if opts.fmap_max != defaults.fmap_max or opts.fmap_base != defaults.fmap_base:
        parts.append(f"fmap{opts.fmap_base}-{opts.fmap_max}")
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
