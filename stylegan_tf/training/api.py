"""The Python API of training, usable without the CLI: `train(**options)` (what train.py does, returning the run
directory) and `fit_dataset` / `add_steps` (a dataset in the form `StyleGAN.fit` takes, for a user's own `fit`).

Defaults have one home, `TrainingOptions` (training/options.py): `train()` resolves its keyword options exactly as
train.py resolves its flags (the architecture's defaults, and the demo's when no `data` is given).
"""
import dataclasses

from stylegan_tf.training import resume as resume_lib
from stylegan_tf.training.options import OptionsError, TrainingOptions
from stylegan_tf.training.training_loop import training_loop


def resolve_options(**options):
    """The `TrainingOptions` that `train(**options)` and `python train.py` (with the same flags) use.

    Args:
        **options: any `TrainingOptions` field (`data`, `resolution`, `total_kimg`, `arch`, ...). `metrics` may be
            a list or a comma-separated string, as on the command line.

    Returns:
        A `TrainingOptions`: the architecture's defaults (and the built-in demo's when `data` is not given) under
        the options given. With `resume` a network file, that file brings its architecture and (a snapshot of a
        training run) the options its run recorded, under the options given; an `arch` that differs from the
        file's is refused (training/resume.py, `resolve_options`).

    Raises:
        OptionsError: an unknown option name, or an `arch` the resumed file contradicts.

    Example:
        >>> resolve_options(data="datasets/mine", mirror=True).gamma
        10.0
    """
    names = {f.name for f in dataclasses.fields(TrainingOptions)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise OptionsError(f"unknown training option(s) {', '.join(unknown)}: see TrainingOptions "
                           "(stylegan_tf/training/options.py) or `python train.py --help`")
    given = {k: v for k, v in options.items() if v is not None}
    if isinstance(given.get("metrics"), str):
        given["metrics"] = [m.strip() for m in given["metrics"].split(",") if m.strip()]
    return resume_lib.resolve_options(given, demo=given.get("data") is None)


def train(callbacks=None, **options):
    """Train as `python train.py` does, from Python; returns the run directory.

    Args:
        callbacks: extra Keras callbacks (TensorBoard, CSVLogger, your own); they see the whole run as one `fit`
            (one epoch per tick), whatever the number of progressive-growing phases.
        **options: `TrainingOptions` fields with train.py's defaults, e.g. `data="datasets/mine"`,
            `total_kimg=1000`, `snap_minutes=20`, `resume="auto"`. Without `data`, the built-in demo.

    Returns:
        The run directory (`results/NNNNN-...`) holding snapshots, fakes grids, stats.jsonl and log.txt; with
        `dry_run=True`, the text `train.py --dry-run` prints (nothing is written).

    Raises:
        OptionsError: a bad option, one line per problem naming the option.

    Example:
        >>> run_dir = train(data="datasets/mine", resolution=16, total_kimg=0.2, minibatch=8,
        ...                 fmap_base=64, fmap_max=32, latent_size=32, dlatent_size=32, outdir="results")
        >>> os.path.exists(os.path.join(run_dir, "log.txt"))
        True
    """
    result = training_loop(resolve_options(**options), callbacks=callbacks)
    return result if isinstance(result, str) else result.run_dir


def add_steps(dataset, first_step=0):
    """Turn a dataset of `(images, labels)` batches into the `(images, labels, step)` batches `StyleGAN.fit` takes.

    Each batch carries its global step (an int64 vector, the step repeated per sample) because the model keys all
    its random draws (latents, mirroring, noise, style mixing) by (seed, step): the same steps give the same
    training, and a `fit` continued with `first_step` = the steps already done draws what an uninterrupted one
    would.

    Args:
        dataset: a `tf.data.Dataset` of `(images [B, r, r, C] float in [-1, 1], labels [B, L])` with a static batch
            size (e.g. `open_dataset(dir).make_tf_dataset(res, B)`, which repeats and has full batches).
        first_step: the step of the first batch.

    Returns:
        A `tf.data.Dataset` of `(images, labels, step)`.

    Example:
        >>> ds = add_steps(open_dataset("datasets/mine").make_tf_dataset(16, batch_size=8))
        >>> [t.shape for t in ds.element_spec]
        [TensorShape([8, 16, 16, 3]), TensorShape([8, 0]), TensorShape([8])]
    """
    import tensorflow as tf
    images_spec = dataset.element_spec[0]
    first = images_spec[0] if isinstance(images_spec, tuple) else images_spec
    batch = first.shape[0]
    if batch is None:
        raise ValueError("add_steps needs batches of a static size: batch with drop_remainder=True "
                         "(make_tf_dataset does when it repeats)")
    steps = tf.data.Dataset.range(int(first_step), 2 ** 62)
    return tf.data.Dataset.zip((dataset, steps)).map(lambda batch_, s: (batch_[0], batch_[1], tf.fill([batch], s)))


def fit_dataset(data, resolution=None, batch_size=32, seed=0, first_step=0, pyramid=False, shuffle_mb=1024):
    """A dataset folder (made by dataset_tool.py) as the endless, shuffled `(images, labels, step)` batches that
    `StyleGAN.fit` takes.

    The images are the full `resolution`: during progressive growing the model box-filters them to the current
    level's resolution itself. Mirroring is the model's (`StyleGAN(..., mirror=True)`), not the dataset's, so
    that it is keyed by the step like every other draw.

    Args:
        data: the dataset folder, or an already opened dataset (`stylegan_tf.data.open_dataset(dir)`).
        resolution: the level to read (default: the dataset's full resolution).
        batch_size: images per batch: the minibatch.
        seed: shuffling seed.
        first_step: the global step of the first batch (the number of steps already trained when continuing);
            the data starts at that batch of the stream too, so a continued fit sees what an uninterrupted one
            would (without reading the batches before it).
        pyramid: every level 4x4 .. `resolution` as a tuple, lowest first (MSG-GAN architectures).
        shuffle_mb: accepted for compatibility, unused (each epoch is a full permutation: docs/dataset.md).

    Returns:
        A repeating `tf.data.Dataset`; give `fit` `steps_per_epoch`.

    Example:
        >>> ds = fit_dataset("datasets/mine", resolution=16, batch_size=8)
        >>> model.fit(ds, epochs=4, steps_per_epoch=50, callbacks=[stylegan_tf.callbacks.FakesGrid("out")])
    """
    from stylegan_tf.data import open_dataset
    info = open_dataset(data) if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__") else data
    ds = info.make_tf_dataset(resolution, batch_size=batch_size, mirror=False, shuffle=True, repeat=True,
                              seed=seed, shuffle_mb=shuffle_mb, pyramid=pyramid, start=first_step)
    return add_steps(ds, first_step)
