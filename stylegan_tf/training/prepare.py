"""Everything a run settles before it creates its run directory: validated options, the dataset (the demo's
built on first use), the resolution and schedule, the distribution strategy and the precision policy. Bad
options fail here, with one line each, so a refused run leaves nothing behind."""
import dataclasses
import os

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
    full_res = info.resolution if info is not None else DEMO_DATA_RESOLUTION
    res = opts.resolution or full_res
    if res > full_res:
        raise OptionsError(f"--resolution {res} is larger than the dataset's {full_res}: lower it")
    if info is not None and res not in info.levels:
        raise OptionsError(f"--resolution {res}: the dataset has no {res}x{res} level file")
    return Plan(info=info, data_path=data_path, dataset_name=os.path.basename(os.path.normpath(data_path)),
                resolution=res, schedule=options_lib.make_schedule(opts, res),
                fingerprint=options_lib.fingerprint(opts, data_path),
                metrics_data=data_path if opts.data is None else opts.data)


def prepare_metrics(opts):
    """Fetch what the metrics need now (e.g. Inception weights): fail at start, not hours later."""
    if opts.metrics:
        from stylegan_tf.metrics import metric_base
        metric_base.prepare_metrics(list(opts.metrics), progress=opts.progress)


def make_strategy(opts, strategy=None):
    """`strategy` if given, else MirroredStrategy over --gpus devices (GPUs, or CPUs for tests), else the
    default strategy."""
    import tensorflow as tf
    if strategy is not None:
        return strategy
    if opts.gpus > 1:
        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus if len(gpus) >= opts.gpus else tf.config.list_logical_devices("CPU")
        if len(devices) < opts.gpus:
            raise OptionsError(f"--gpus {opts.gpus}: only {len(gpus)} GPU(s) visible; lower --gpus")
        return tf.distribute.MirroredStrategy([d.name for d in devices[:opts.gpus]])
    return tf.distribute.get_strategy()


def set_precision(opts):
    if opts.mixed_precision:
        import keras
        import tensorflow as tf
        keras.mixed_precision.set_global_policy(
            "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16")


def new_optimizer(lr):
    import keras
    opt = keras.optimizers.Adam(learning_rate=lr, beta_1=0.0, beta_2=0.99, epsilon=1e-8)
    if keras.mixed_precision.global_policy().name == "mixed_float16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt
