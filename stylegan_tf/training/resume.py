"""Where a run starts from: fresh networks, a training snapshot (`--resume FILE.keras` or `--resume auto`), or an
official `.pkl` to fine-tune; and which run directory it writes, locked for this process.

A network file fixes its own architecture, so one rule decides the options of a resumed run (`resolve_options`):
the file's architecture brings its own defaults, and a snapshot brings the options its run recorded (loss, gamma,
learning rates, Adam, ...), for every option not given; an `--arch` other than the file's is refused. After
loading, the options are corrected to what the file holds (feature maps, latent sizes, mapping network, Table-1
config; for a snapshot also seed, mirroring and Gs half-life) and the run records those: `training_options.json`
and the run-dir name say what is really trained, `requested_fingerprint` what was asked for (so `--resume auto`
with the same flags finds the run)."""
import dataclasses
import os
import pickle

import numpy as np

from stylegan_tf.training import options as options_lib
from stylegan_tf.training import snapshot as snap
from stylegan_tf.training.options import OptionsError
from stylegan_tf.training.prepare import new_optimizer
from stylegan_tf.training.rundir import RunDirLock, continue_stats, sweep_stale_temps

ARCH_KEYS = ("latent_size", "dlatent_size", "mapping_layers", "mapping_fmaps", "fmap_base", "fmap_max",
             "fmap_decay", "mapping")
SNAPSHOT_KEYS = ("seed", "mirror", "g_smoothing_kimg")       # stored in a .keras snapshot's training model
TRAINING_DEFAULTS = options_lib.TrainingOptions()
# What a resumed snapshot's run recorded and the resumed run keeps unless given: what is trained (the options
# fingerprinted), not where it is written, how long it runs or how it reports.
RECORDED_KEYS = tuple(k for k in options_lib.FINGERPRINT_KEYS + options_lib.LATER_FINGERPRINT_KEYS if k != "arch")


def resumed_network(path):
    """(architecture, recorded options) of the network file `path`, read before loading it: an official .pkl is
    StyleGAN's; a .keras snapshot says both in its config (the options its run recorded; a snapshot of a user's
    own `fit` records none, and its generator's class names the architecture). (None, {}) when the file cannot
    be read: loading it later says what is wrong."""
    if path.lower().endswith(".pkl"):
        return "stylegan", {}
    config = snap.snapshot_config(path)
    if config is None:
        return None, {}
    options = (config.get("training_state") or {}).get("options") or {}
    recorded = {k: options[k] for k in RECORDED_KEYS if k in options}
    return options.get("arch") or _class_arch(path, config.get("G")), recorded


def _class_arch(path, g_config):
    """The architecture of the generator class a .keras config names (its `arch_name`), None if unknown."""
    import keras

    from stylegan_tf.network_io import register_classes_of
    if not isinstance(g_config, dict) or not g_config.get("registered_name"):
        return None
    register_classes_of(path)
    cls = keras.saving.get_registered_object(g_config["registered_name"])
    return getattr(cls, "arch_name", "stylegan") if cls is not None else None


def arch_conflict(asked, network, path):
    """The one-line refusal of `--arch asked` for a network file whose architecture is `network`."""
    return OptionsError(f"--arch {asked}: --resume {path} holds a {network} network; leave --arch out (the network "
                        f"brings its architecture and its run's options) or give --arch {network}")


def resolve_options(given, demo):
    """The options of a run from the options `given` (field -> value, unset ones left out): the architecture's
    defaults, then the built-in demo's when `demo`, then (with `--resume FILE`) what that file's run recorded,
    then `given`. A resumed network brings its architecture; an `--arch` that differs is refused.

    Example:
        >>> resolve_options({"resume": "results/00003-dcgan-faces-64-1gpu/network-snapshot-000100.keras",
        ...                  "data": "datasets/faces"}, demo=False).gamma      # DCGAN's run: gamma 0
        0.0
    """
    given = dict(given)
    arch = given.pop("arch", None)
    resume = given.get("resume")
    recorded = {}
    if isinstance(resume, str) and resume != "auto" and os.path.isfile(resume):
        network, recorded = resumed_network(resume)
        if network is not None and arch is not None and arch != network:
            raise arch_conflict(arch, network, resume)
        arch = network or arch
    return options_lib.TrainingOptions.for_arch(arch or "stylegan", demo=demo, **{**recorded, **given})


@dataclasses.dataclass
class Start:
    model: object
    run_dir: str
    lock: RunDirLock
    opts: object                  # the options corrected to what the resumed network holds
    fingerprint: str
    loop: dict                    # the snapshot's loop state (empty: start at resume_kimg or 0)
    resumed_from: str = None
    notes: list = dataclasses.field(default_factory=list)     # lines for the log


def _config_name(g_config, asked):
    """The Table-1 config whose generator options `g_config` has: `asked` if it fits, else the first that does."""
    import inspect
    from stylegan_tf.networks import Generator

    # What each config sets, over the Generator's own defaults (config F sets nothing).
    keys = {k for c in options_lib.CONFIGS.values() for k in c if k not in ARCH_KEYS}
    params = inspect.signature(Generator.__init__).parameters
    defaults = {k: params[k].default for k in keys}

    def fits(name):
        implied = dict(defaults, **{k: v for k, v in options_lib.CONFIGS[name].items() if k in keys})
        return all(g_config.get(k, v) == v for k, v in implied.items())
    return asked if fits(asked) else next((n for n in options_lib.CONFIGS if fits(n)), asked)


def actual_options(opts, nets, from_snapshot):
    """`opts` with every value the loaded networks fix replaced by theirs, and {field: asked value} of those
    that differed."""
    from stylegan_tf.networks.archs import arch_of, get_arch
    arch = get_arch(arch_of(nets.G))
    g = nets.G.get_config()
    # The generator's constructor arguments that are options: sizes, mapping, and for a StyleGAN generator the
    # Table-1 config (a config that sets an architecture value itself, config B: no mapping network, overrides
    # the flag anyway).
    used = {"config": _config_name(g, opts.config)} if arch.styles else {}
    by_config = options_lib.CONFIGS.get(used.get("config"), {})
    used.update({k: type(getattr(TRAINING_DEFAULTS, k))(g[k]) for k in ARCH_KEYS if k in g and k not in by_config})
    if arch.sizing == "width" and "width" in g:
        used["width"] = int(g["width"])
    if from_snapshot:
        used.update({k: type(getattr(opts, k))(getattr(nets, k)) for k in SNAPSHOT_KEYS})
    changed = {k: getattr(opts, k) for k, v in used.items() if getattr(opts, k) != v}
    return dataclasses.replace(opts, **used), changed


def _new_model(opts, plan):
    import keras
    from stylegan_tf.networks.archs import get_arch
    from stylegan_tf.training.model import StyleGAN

    info = plan.info
    arch = get_arch(opts.arch)
    keras.utils.set_random_seed(opts.seed)
    # G, D, then Gs (a clone of G's structure): StyleGAN's networks draw their initial weights in this order.
    G, D = arch.build(opts, plan.resolution, info.num_channels, info.label_size)
    Gs = G.__class__.from_config({k: v for k, v in G.get_config().items() if k != "name"})
    z = np.zeros([1, G.latent_size], np.float32)
    lab = np.zeros([1, G.label_size], np.float32) if G.label_size else None
    for net in (G, Gs):
        net(z, labels=lab, training=False)
    if arch.data == "pyramid":
        reals = [np.zeros([1, r, r, info.num_channels], np.float32)
                 for r in (2 ** k for k in range(2, int(np.log2(plan.resolution)) + 1))]
    else:
        reals = np.zeros([1, plan.resolution, plan.resolution, info.num_channels], np.float32)
    D(reals, labels=lab, training=False)
    model = StyleGAN(G, D, Gs, seed=opts.seed, mirror=opts.mirror, g_smoothing_kimg=opts.g_smoothing_kimg)
    model.ema_update_now(0.0)
    return model


def _load_pickle(path, opts):
    import stylegan_tf
    from stylegan_tf.training.model import StyleGAN
    try:
        nets = stylegan_tf.load_network(path)
    except (pickle.UnpicklingError, ValueError, OSError, EOFError) as e:
        # The loaders' messages name the file already (hostile pickles included): one line, no traceback.
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise OptionsError(msg if path in msg else f"--resume {path}: {msg}") from None
    return StyleGAN(nets.G, nets.D, nets.Gs, seed=opts.seed, mirror=opts.mirror,
                    g_smoothing_kimg=opts.g_smoothing_kimg)


def _check_arch(nets, path, opts):
    """A network of another architecture than the options' is refused (`resolve_options` gives options the
    file's architecture; this catches options built by hand)."""
    from stylegan_tf.networks.archs import arch_of
    network = arch_of(nets.G)
    if network != opts.arch:
        raise arch_conflict(opts.arch, network, path)


def _check_compatible(nets, path, plan):
    G, info = nets.G, plan.info
    if G.resolution != plan.resolution or G.num_channels != info.num_channels or G.label_size != info.label_size:
        raise OptionsError(
            f"--resume {path}: network is {G.resolution}x{G.resolution}x{G.num_channels} with "
            f"{G.label_size} labels but the data is {plan.resolution}x{plan.resolution}x"
            f"{info.num_channels} with {info.label_size}: pick a matching --resolution/dataset")


def _auto(opts, plan, notes):
    """(run_dir, lock, model, snapshot path) of the newest snapshot that loads among the runs with these options,
    or Nones when there is no such run. Damaged snapshots are skipped with a line each in `notes`."""
    runs = snap.resume_candidates(opts.outdir, plan.fingerprint)
    if not runs:
        notes.append("--resume auto: no earlier run with these options; starting a new one")
        return None, None, None, None
    skipped = []
    for run_dir, paths in runs:
        lock = RunDirLock(run_dir).acquire()
        for path in paths:
            try:
                model = snap.load_snapshot(path)
            except snap.SnapshotError as e:
                skipped.append(str(e))
                notes.append(f"--resume auto: skipping {e}")
                continue
            return run_dir, lock, model, path
        lock.release()
    raise OptionsError(f"--resume auto: no snapshot of the runs with these options loads ({len(skipped)} damaged, "
                       f"newest: {skipped[0]}); resume from a file with --resume or move them away")


def _auto_shared(opts, plan, notes, collectives):
    """`_auto` for a multi-worker run: the chief picks the newest snapshot that is whole (and locks its run
    directory), every worker learns its path and loads it (the variables are created alike on every worker, which
    TensorFlow's collectives need). Returns (run_dir, lock, path); Nones on the other workers and without one."""
    run_dir = lock = path = None
    if collectives.cluster.is_chief:
        runs = snap.resume_candidates(opts.outdir, plan.fingerprint)
        for candidate, paths in runs:
            damages = [(p, snap.snapshot_damage(p)) for p in paths]
            notes += [f"--resume auto: skipping {p}: {d}" for p, d in damages if d]
            path = next((p for p, d in damages if not d), None)
            if path:
                run_dir, lock = candidate, RunDirLock(candidate).acquire()
                break
        if not runs:
            notes.append("--resume auto: no earlier run with these options; starting a new one")
    # Every worker must read the chief's snapshot at this path (a shared file system): docs/distributed.md.
    path = collectives.broadcast_text(path or "") or None
    if path is not None and not os.path.isfile(path):
        raise OptionsError(f"--resume auto: {collectives.cluster.name(collectives.cluster.index)} cannot read the "
                           f"chief's snapshot {path}: every worker needs the run directory at the same path")
    return run_dir, lock, path


def trained_on(model, path):
    """The dataset folder (absolute) the network file `path` was trained on, as its snapshot records it; None
    when unknown: an official .pkl, a snapshot of a user's own `fit` or of a run from before it was recorded."""
    if not path.lower().endswith(".keras"):
        return None
    return model.training_state.get("dataset")


def _transfer_note(path, source, plan, nimg):
    """The one-line note of a network file trained on other data than this run's (transfer learning)."""
    was = "an official network" if path.lower().endswith(".pkl") else f"trained on {source}"
    return (f"--resume {path}: {was}, now trained on {os.path.abspath(plan.data_path)} (transfer learning: the "
            f"schedule starts at kimg {nimg / 1000:g})")


def _continuing_kimg(path, loop):
    """The one-line refusal of --resume-kimg for a snapshot that continues its own run (its kimg is known)."""
    return OptionsError(f"--resume-kimg: --resume {path} continues its own run on this data at kimg "
                        f"{loop.get('nimg', 0) / 1000:g}; leave --resume-kimg out (it says where a new schedule "
                        f"starts: fine-tuning an official .pkl, or a snapshot onto other data)")


def start(opts, plan, strategy, collectives=None):
    """The model, run directory (locked) and loop state this run starts from. In a multi-worker run
    (`collectives`: training/distributed.py) the chief decides where to start, and the other workers get a
    scratch folder in place of the run directory."""
    from stylegan_tf.training.model import StyleGAN  # noqa: F401  (registers the class for load_model)

    run_dir = lock = path = None
    loop, notes = {}, []
    with strategy.scope():
        if collectives is not None:
            # Every worker draws the same values for the variables a loaded network starts with: on JAX,
            # DataParallel's replicated variables must be created from equal values on every process.
            import keras
            keras.utils.set_random_seed(opts.seed)
        if opts.resume == "auto" and collectives is not None:
            run_dir, lock, path = _auto_shared(opts, plan, notes, collectives)
            model = snap.load_snapshot(path) if path else None
        elif opts.resume == "auto":
            run_dir, lock, model, path = _auto(opts, plan, notes)
        elif opts.resume and opts.resume.lower().endswith(".keras"):
            path, model = opts.resume, snap.load_snapshot(opts.resume)
        elif opts.resume:
            path, model = opts.resume, _load_pickle(opts.resume, opts)
        if path is None:
            model = _new_model(opts, plan)
        try:
            if path is not None:
                _check_arch(model, path, opts)
                _check_compatible(model, path, plan)
            if model.g_optimizer is None or model.d_optimizer is None:
                betas = dict(beta_1=opts.adam_beta1, beta_2=opts.adam_beta2, epsilon=opts.adam_epsilon)
                model.g_optimizer, model.d_optimizer = new_optimizer(0.001, **betas), new_optimizer(0.001, **betas)
            # The options say how D's inputs are augmented and what of D is frozen, also for a resumed network
            # (a snapshot's p continues: `set_augment` keeps an existing aug_p).
            model.set_augment(**options_lib.augment_settings(opts))
            model.set_freeze_d(opts.freeze_d)
            loss_name, loss_kwargs = options_lib.loss_settings(opts)
            model.label_pool = plan.info.labels if plan.info.label_size else None
            model.compile(loss=loss_name, loss_kwargs=loss_kwargs)
        except BaseException:
            if lock:
                lock.release()
            raise
    used, fingerprint = opts, plan.fingerprint
    if path is not None:
        is_snapshot = path.lower().endswith(".keras")
        used, changed = actual_options(opts, model, is_snapshot)
        if changed:
            fingerprint = options_lib.fingerprint(used, plan.data_path)
            notes.append(f"--resume {path}: the network fixes " + ", ".join(
                f"{options_lib.flag_name(k)} {getattr(used, k)} (not {v})" for k, v in changed.items()) +
                "; recorded as such")
        source = trained_on(model, path)
        # A snapshot of this data continues its run; onto other data (or from a .pkl) the schedule starts anew.
        transfer = not is_snapshot or (source is not None and source != os.path.abspath(plan.data_path))
        if not transfer:
            loop = dict(model.training_state.get("loop", {}))
            if opts.resume_kimg is not None:
                if lock:
                    lock.release()
                raise _continuing_kimg(path, loop)
        else:
            nimg = int(round((opts.resume_kimg or 0.0) * 1000))
            loop = dict(nimg=nimg, phase_start_nimg=nimg, tick_start_nimg=nimg)
            notes.append(_transfer_note(path, source, plan, nimg))
    if collectives is not None and not collectives.cluster.is_chief:
        from stylegan_tf.training import distributed
        run_dir = distributed.scratch_dir(collectives.cluster)
        lock = RunDirLock(run_dir).acquire()
        return Start(model=model, run_dir=run_dir, lock=lock, opts=used, fingerprint=fingerprint, loop=loop,
                     resumed_from=path, notes=notes)
    if run_dir is None:
        desc = options_lib.run_description(used, plan.dataset_name, plan.resolution,
                                           getattr(plan.info, "class_name", None))
        run_dir = options_lib.new_run_dir(opts.outdir, desc)
        lock = RunDirLock(run_dir).acquire()
    else:
        try:
            dropped = continue_stats(run_dir, int(loop.get("tick", 0)))
        except BaseException:
            lock.release()
            raise
        if dropped:
            notes.append(f"{os.path.basename(run_dir)}: dropped {dropped} stats.jsonl row(s) after tick "
                         f"{loop.get('tick', 0)}: the resumed run trains those ticks again")
    notes += [f"removed {p}, left by a killed snapshot write" for p in sweep_stale_temps(opts.outdir)]
    return Start(model=model, run_dir=run_dir, lock=lock, opts=used, fingerprint=fingerprint, loop=loop,
                 resumed_from=path, notes=notes)
