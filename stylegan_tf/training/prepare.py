"""Everything a run settles before it creates its run directory: validated options, the dataset (the demo's
built on first use), the resolution and schedule, the CPU thread layout, the distribution strategy and the
precision policy. Bad options fail here, with one line each, so a refused run leaves nothing behind."""
import dataclasses
import os

from stylegan_tf.networks.archs import get_arch
from stylegan_tf.paths import cache_root
from stylegan_tf.training import options as options_lib
from stylegan_tf.training.options import OptionsError

DEMO_DATA_RESOLUTION = 64


def demo_dataset_dir(resolution=DEMO_DATA_RESOLUTION):
    return os.path.join(cache_root(), options_lib.DEMO_DIRNAME.format(res=resolution))


def ensure_demo_dataset(resolution=DEMO_DATA_RESOLUTION, count=10000, progress=True):
    """The built-in demo dataset in the cache folder, created on first use."""
    from stylegan_tf.data import create_demo, open_dataset
    path = demo_dataset_dir(resolution)
    if not os.path.isdir(path):
        print(f"Creating the demo dataset ({count} faces, {resolution}x{resolution}) in {path} ...", flush=True)
        create_demo(path, count=count, resolution=resolution, seed=0, progress=progress)
    return open_dataset(path)


@dataclasses.dataclass
class Plan:
    """What the options resolve to against the dataset."""
    info: object                  # the opened dataset (None for a demo dry run that has not built it yet)
    data_path: str
    dataset_name: str
    resolution: int
    schedule: object
    fingerprint: str
    metrics_data: str


def plan(opts):
    """Validate `opts` and resolve them against the dataset. Raises OptionsError (one line per problem)."""
    errs = options_lib.validate(opts)
    if errs:
        raise OptionsError("\n".join(errs))
    if opts.data is None:
        info = ensure_demo_dataset(progress=opts.progress) if not opts.dry_run else None
        data_path = demo_dataset_dir()
    else:
        from stylegan_tf.data import open_dataset
        info = open_dataset(opts.data)
        data_path = opts.data
    if opts.subset_class is not None and info is not None:
        info = subset_class(info, opts.subset_class, data_path)
    full_res = info.resolution if info is not None else DEMO_DATA_RESOLUTION
    res = opts.resolution or full_res
    if res > full_res:
        raise OptionsError(f"--resolution {res} is larger than the dataset's {full_res}: lower it")
    if info is not None and res not in info.levels:
        raise OptionsError(f"--resolution {res}: the dataset has no {res}x{res} level file")
    blocks = res.bit_length() - 3       # D's blocks above its 4x4 one
    if opts.freeze_d > blocks:
        raise OptionsError(f"--freeze-d {opts.freeze_d}: D has {blocks} blocks above 4x4 at {res}x{res}: give 0 to "
                           f"{blocks}")
    lowest = get_arch(opts.arch).min_resolution
    if res < lowest:
        raise OptionsError(f"--resolution {res}: --arch {opts.arch} needs {lowest}x{lowest} or more")
    return Plan(info=info, data_path=data_path, dataset_name=os.path.basename(os.path.normpath(data_path)),
                resolution=res, schedule=options_lib.make_schedule(opts, res),
                fingerprint=options_lib.fingerprint(opts, data_path),
                metrics_data=data_path if opts.data is None else opts.data)


def prepare_metrics(opts):
    """Fetch what the metrics need now (e.g. Inception weights): fail at start, not hours later."""
    if opts.metrics:
        from stylegan_tf.metrics import metric_base
        metric_base.prepare_metrics(list(opts.metrics), progress=opts.progress)


class JaxDistribution:
    """The JAX backend's counterpart of a tf.distribute strategy, for the loop's `strategy.scope()`: with several
    devices, `keras.distribution.DataParallel` (variables replicated, each batch split over the devices; the
    jitted step sees the global batch); with one, nothing. `shard` is (this process's index, the number of
    processes): each process brings that share of every global batch."""

    def __init__(self, distribution=None, shard=(0, 1)):
        self.distribution = distribution
        self.num_replicas_in_sync = len(distribution.device_mesh.devices.flatten()) if distribution else 1
        self.shard = shard

    def scope(self):
        import contextlib
        return self.distribution.scope() if self.distribution is not None else contextlib.nullcontext()


def make_strategy(opts, strategy=None, cluster=None):
    """`strategy` if given; for a multi-worker `cluster` (training/distributed.py) MultiWorkerMirroredStrategy over
    every worker's --gpus devices (JAX: DataParallel over every process's); else MirroredStrategy over --gpus
    devices (GPUs, or CPUs for tests), else the default strategy. On Keras' JAX backend: a `JaxDistribution`
    (DataParallel over --gpus devices: GPUs, or CPU devices made with
    XLA_FLAGS=--xla_force_host_platform_device_count=N for tests)."""
    if strategy is not None:
        return strategy
    import keras

    from stylegan_tf.training import distributed
    if keras.backend.backend() == "jax":
        if cluster is not None:
            devices = distributed.jax_devices(cluster, opts.gpus)
            return JaxDistribution(keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False),
                                   shard=(cluster.index, cluster.num_workers))
        if opts.gpus <= 1:
            return JaxDistribution()
        import jax
        devices = jax.devices()
        if len(devices) < opts.gpus:
            raise OptionsError(f"--gpus {opts.gpus}: only {len(devices)} JAX device(s) visible; lower --gpus")
        names = [f"{d.platform}:{d.id}" for d in devices[:opts.gpus]]
        return JaxDistribution(keras.distribution.DataParallel(devices=names))
    if cluster is not None:
        return distributed.tf_strategy(cluster, opts.gpus)
    import tensorflow as tf
    if opts.gpus > 1:
        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus if len(gpus) >= opts.gpus else tf.config.list_logical_devices("CPU")
        if len(devices) < opts.gpus:
            raise OptionsError(f"--gpus {opts.gpus}: only {len(gpus)} GPU(s) visible; lower --gpus")
        return tf.distribute.MirroredStrategy([d.name for d in devices[:opts.gpus]])
    return tf.distribute.get_strategy()


def cpu_parallelism_mode(opts):
    """The thread layout `opts.cpu_parallelism` resolves to: "intra-op" or "inter-op"."""
    if opts.cpu_parallelism != "auto":
        return opts.cpu_parallelism
    return "inter-op" if (opts.fmap_max or 0) <= options_lib.SMALL_FMAP_MAX else "intra-op"


def set_cpu_parallelism(opts):
    """Lay TensorFlow's CPU threads out as `opts.cpu_parallelism` says, before TensorFlow starts its runtime.

    inter-op: one thread per op (intra) and as many ops at once as there are cores (inter). The demo's small
    convolutions gain nothing from being split over cores, while D's, R1's and G's independent ops can run side by
    side. Only on the TensorFlow backend and, for "auto", only without a GPU (the GPU runs the ops there).
    Returns a line for the log, or None when nothing was changed or worth saying.

    Example:
        >>> set_cpu_parallelism(TrainingOptions(cpu_parallelism="inter-op"))   # before any TensorFlow op
    """
    import keras
    if keras.backend.backend() != "tensorflow" or opts.cpu_parallelism not in options_lib.CPU_PARALLELISM:
        return None
    import tensorflow as tf
    mode = cpu_parallelism_mode(opts)
    if mode == "intra-op" or (opts.cpu_parallelism == "auto" and tf.config.list_physical_devices("GPU")):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threading = tf.config.threading
    if (threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads()) == (1, cores):
        return None
    try:
        threading.set_intra_op_parallelism_threads(1)
        threading.set_inter_op_parallelism_threads(cores)
    except RuntimeError:    # TensorFlow already ran in this process (a notebook): its threads are fixed now.
        if opts.cpu_parallelism == "auto":
            return None
        return (f"--cpu-parallelism {mode}: TensorFlow was already running in this process, so it keeps its "
                "thread settings (start a fresh process to change them)")
    return f"CPU threads: inter-op parallelism (1 thread per op, up to {cores} ops at once; --cpu-parallelism)"


def cpu_has_amx():
    """True when the CPU has AMX-BF16 (Linux /proc/cpuinfo), None where that cannot be told."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " amx_bf16" in line for line in f)
    except OSError:
        return None


def set_precision(opts):
    """Set Keras' policy for `opts.mixed_precision`; returns a line for the log when bf16 will be slow here."""
    if opts.mixed_precision:
        import keras
        if keras.backend.backend() == "jax":
            # bf16 needs no loss scaling; it is what JAX's GPUs and TPUs run fast.
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
            return None
        import tensorflow as tf
        if tf.config.list_physical_devices("GPU"):
            keras.mixed_precision.set_global_policy("mixed_float16")
            return None
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        if cpu_has_amx() is False:
            return ("--mixed-precision: this CPU has no AMX, so bf16 is emulated and likely slower than fp32 "
                    "(docs/training.md, 'Speed on a CPU')")
    return None


def new_optimizer(lr, beta_1=0.0, beta_2=0.99, epsilon=1e-8):
    """Adam (the official StyleGAN settings by default; an architecture's own through the options), wrapped for
    loss scaling under fp16."""
    import keras
    opt = keras.optimizers.Adam(learning_rate=lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    if keras.mixed_precision.global_policy().name == "mixed_float16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


def subset_class(info, value, data_path):
    """`info` restricted to the class `value` (a name from the dataset's label_names, or an index); OptionsError
    (one line) for an unlabelled dataset or an unknown class."""
    if not info.label_size:
        raise OptionsError(f"--subset-class {value}: {data_path} has no labels (make it with dataset_tool.py "
                           "--labels-from-subdirs)")
    names = list(info.label_names or [])
    text = str(value).strip()
    if text in names:
        index = names.index(text)
    elif text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < info.label_size:
            raise OptionsError(f"--subset-class {text}: {data_path} has classes 0..{info.label_size - 1}")
    else:
        known = f"one of {', '.join(names)}" if names else f"an index 0..{info.label_size - 1}"
        raise OptionsError(f"--subset-class {text!r} is not a class of {data_path}: give {known}")
    from stylegan_tf.data.subset import SubsetView
    view = SubsetView(info, index, names[index] if names else str(index))
    if view.num_images == 0:
        raise OptionsError(f"--subset-class {text}: {data_path} has no images of that class")
    return view
