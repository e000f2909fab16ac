"""Keras callbacks for training `stylegan_tf.training.StyleGAN` in your own `model.fit`.

`train.py` (and `stylegan_tf.training.train`) run the official loop, which drives these same steps itself. In
your own `fit`, on a `stylegan_tf.training.fit_dataset(...)` pipeline, these callbacks add what that loop adds:

* `ProgressiveGrowing`: the official lod schedule (start at 8x8, fade in each resolution), learning rates per
  resolution and the Adam reset at each new resolution; logs `kimg`, `lod`, `resolution`.
* `Snapshots`: `network-snapshot-KKKKKK.keras` files (G, D, Gs and both optimizers), as the CLI writes them, so
  `stylegan_tf.load_network`, `generate.py` and the metrics read them.
* `FakesGrid`: `fakesKKKKKK.png` grids of Gs on fixed latents, named as the CLI's (`generate.py timelapse` and
  `curves` read the folder).
* `Metrics`: FID / KID / SWD on Gs, logged (`fid50k` -> `logs["fid50k"]`) and appended to `metric-<name>.jsonl`.

Every callback counts the images trained from `model.global_batch` (the dataset's batch) and keeps the count in
`model.training_state["nimg"]`, so a saved model continues its numbering. Defaults are train.py's
(`TrainingOptions`, stylegan_tf/training/options.py).

Example:
    >>> from stylegan_tf import callbacks
    >>> model.fit(fit_dataset("datasets/mine", batch_size=16), epochs=10, steps_per_epoch=100,
    ...           callbacks=[callbacks.ProgressiveGrowing(), callbacks.FakesGrid("run"),
    ...                      callbacks.Snapshots("run", every_epochs=5), keras.callbacks.CSVLogger("run/log.csv")])
"""
import dataclasses
import math
import os
import re
import time

import keras
import numpy as np

from stylegan_tf.image_grid import make_grid, save_image, to_uint8
from stylegan_tf.training import options as options_lib
from stylegan_tf.training import snapshot as snapshot_lib
from stylegan_tf.training.callbacks import ScheduleDriver, sync_variables
from stylegan_tf.training.options import TrainingOptions

__all__ = ["FakesGrid", "Metrics", "ProgressiveGrowing", "Snapshots"]

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainingOptions)}


class _Counting(keras.callbacks.Callback):
    """Counts the images trained: `self.nimg` (continued from `model.training_state["nimg"]`)."""

    def __init__(self, every_epochs=1):
        super().__init__()
        if every_epochs is not None and (not isinstance(every_epochs, int) or every_epochs < 1):
            raise ValueError(f"every_epochs must be a whole number >= 1, got {every_epochs!r}")
        self.every_epochs = every_epochs
        self.nimg = 0

    def _batch(self):
        batch = getattr(self.model, "global_batch", None)
        if not batch:
            raise ValueError(f"{type(self).__name__}: the model has no minibatch size: fit a dataset with a static "
                             "batch size (stylegan_tf.training.fit_dataset) or call model.configure_phase first")
        return batch

    def on_train_begin(self, logs=None):
        self.nimg = int(self.model.training_state.get("nimg", 0))

    def on_train_batch_end(self, batch, logs=None):
        self.nimg += self._batch()
        self.model.training_state["nimg"] = self.nimg

    def _due(self, epoch):
        return self.every_epochs is not None and (epoch + 1) % self.every_epochs == 0

    def get_config(self):
        return {"every_epochs": self.every_epochs}


class ProgressiveGrowing(_Counting):
    """The official progressive growing inside one `fit`: the schedule's lod before every batch, a new traced
    structure and fresh Adam states at each new resolution, and the schedule's learning rates.

    Feed full-resolution images (`fit_dataset`): the model box-filters them to the current level. The minibatch
    is the dataset's batch (one `fit` cannot change it; train.py's loop follows the official per-resolution
    table). A network without a `lod` variable (DCGAN, MSG-GAN) is left as it is.

    Args:
        lod_initial_resolution: resolution training starts at (train.py's `--lod-initial-resolution`, 8).
        lod_training_kimg: thousands of images per resolution before fading in the next (600).
        lod_transition_kimg: thousands of images of each fade-in (600).
        lrate: one learning rate for G and D; None: the official per-resolution ones (0.001 up to 64x64,
            then 0.0015, 0.002, 0.003 from 128x128).
        minibatch_repeats: batches per schedule update, as the original (4).
        reset_optimizers: zero both Adam states when a resolution starts fading in or becomes stable (the
            original's `reset_opt_for_new_lod`).

    Example:
        >>> model.fit(fit_dataset("datasets/mine", batch_size=16), epochs=20, steps_per_epoch=250,
        ...           callbacks=[ProgressiveGrowing(lod_training_kimg=30, lod_transition_kimg=30)])
    """

    def __init__(self, lod_initial_resolution=_DEFAULTS["lod_initial_resolution"],
                 lod_training_kimg=_DEFAULTS["lod_training_kimg"], lod_transition_kimg=_DEFAULTS["lod_transition_kimg"],
                 lrate=_DEFAULTS["lrate"], minibatch_repeats=_DEFAULTS["minibatch_repeats"], reset_optimizers=True):
        super().__init__(every_epochs=None)
        self.lod_initial_resolution = lod_initial_resolution
        self.lod_training_kimg = lod_training_kimg
        self.lod_transition_kimg = lod_transition_kimg
        self.lrate = lrate
        self.minibatch_repeats = minibatch_repeats
        self.reset_optimizers = reset_optimizers
        self.schedule = None
        self.state = None
        self._steps = 0

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        G = self.model.G
        opts = TrainingOptions(minibatch=self._batch(), lod_initial_resolution=self.lod_initial_resolution,
                               lod_training_kimg=self.lod_training_kimg, lod_transition_kimg=self.lod_transition_kimg,
                               lrate=self.lrate, minibatch_repeats=self.minibatch_repeats)
        errs = options_lib.validate(opts)
        if errs:
            raise ValueError("ProgressiveGrowing: " + "; ".join(errs))
        self.schedule = options_lib.make_schedule(opts, G.resolution)
        faded = [net for net in (self.model.G, self.model.D) if getattr(net, "lod", None) is not None]
        # The minibatch is the dataset's: one `fit` cannot change it.
        self._driver = ScheduleDriver(self.schedule, faded, minibatch=self._batch(),
                                      reset_optimizers=self.reset_optimizers) if faded else None
        self.state = None
        self._steps = 0

    def on_train_batch_begin(self, batch, logs=None):
        # The schedule is read between groups of minibatches, as the official loop does.
        if self._driver is not None and self._steps % self.minibatch_repeats == 0:
            self.state = self._driver.follow(self.model, self.nimg)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        self._steps += 1
        if logs is not None and self.state is not None:
            logs.update(kimg=self.nimg / 1000.0, lod=float(self.state.lod), resolution=float(self.state.resolution))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.state is not None:
            logs.update(kimg=self.nimg / 1000.0, lod=float(self.state.lod), resolution=float(self.state.resolution))

    def get_config(self):
        return {"lod_initial_resolution": self.lod_initial_resolution, "lod_training_kimg": self.lod_training_kimg,
                "lod_transition_kimg": self.lod_transition_kimg, "lrate": self.lrate,
                "minibatch_repeats": self.minibatch_repeats, "reset_optimizers": self.reset_optimizers}


class Snapshots(_Counting):
    """Save the training model as `network-snapshot-KKKKKK.keras` (G, D, Gs, both optimizers): every
    `every_epochs` epochs, every `every_minutes` minutes, and at the end of training.

    The files are what train.py writes: `stylegan_tf.load_network`, `generate.py` and the metrics read them, and
    `keras.saving.load_model` returns the `StyleGAN` model, compiled, to continue `fit` with. A file is written
    atomically and never replaces an existing one.

    Args:
        directory: folder for the snapshots (created if missing).
        every_epochs: epochs between snapshots; None: only by time and at the end.
        every_minutes: also snapshot when this many minutes have passed since the last (Colab's disconnects);
            None: off (train.py's `--snap-minutes`).
        keep: keep only the newest `keep` snapshots of the folder; None keeps all (`--keep-snapshots`).

    Example:
        >>> model.fit(ds, epochs=50, steps_per_epoch=100, callbacks=[Snapshots("run", every_epochs=10)])
        >>> nets = stylegan_tf.load_network(Snapshots.latest("run"))
    """

    def __init__(self, directory, every_epochs=1, every_minutes=None, keep=None):
        super().__init__(every_epochs)
        self.directory = os.fspath(directory)
        self.every_minutes = every_minutes
        self.keep = keep
        self.saved = []
        self._saved_nimg = None
        self._last = time.time()

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        os.makedirs(self.directory, exist_ok=True)
        self._last = time.time()

    def on_epoch_end(self, epoch, logs=None):
        late = self.every_minutes is not None and time.time() - self._last >= self.every_minutes * 60.0
        if self._due(epoch) or late:
            self.save()

    def on_train_end(self, logs=None):
        if self._saved_nimg != self.nimg:
            self.save()

    def save(self):
        """Write a snapshot now; returns its path."""
        path = snapshot_lib.save_snapshot(self.model, snapshot_lib.new_snapshot_path(self.directory, self.nimg))
        self.saved.append(path)
        self._saved_nimg = self.nimg
        self._last = time.time()
        if self.keep:
            for gone in snapshot_lib.apply_retention(self.directory, self.keep):
                if gone in self.saved:
                    self.saved.remove(gone)
        return path

    @staticmethod
    def latest(directory):
        """The newest snapshot in `directory` (None if there is none)."""
        found = snapshot_lib.list_snapshots(directory)
        return found[-1][1] if found else None

    def get_config(self):
        return {"directory": self.directory, "every_epochs": self.every_epochs, "every_minutes": self.every_minutes,
                "keep": self.keep}


def _parse_grid(grid):
    if isinstance(grid, str):
        m = re.fullmatch(r"(\d+)x(\d+)", grid)
        if not m:
            raise ValueError(f"grid {grid!r} must look like 8x4 (columns x rows)")
        grid = tuple(int(v) for v in m.groups())
    cols, rows = (int(v) for v in grid)
    if not (1 <= cols <= options_lib.MAX_GRID and 1 <= rows <= options_lib.MAX_GRID):
        raise ValueError(f"grid {cols}x{rows}: columns and rows must each be 1 to {options_lib.MAX_GRID}")
    return cols, rows


class FakesGrid(_Counting):
    """Save a grid of Gs's images on fixed latents as `fakesKKKKKK.png` (at the start and every `every_epochs`
    epochs), so successive grids differ only by training, as train.py's.

    Args:
        directory: folder for the pictures (created if missing).
        grid: columns x rows, as `(8, 4)` or `"8x4"`.
        every_epochs: epochs between grids.
        seed: seed of the fixed latents (train.py uses its `--seed`, 1000).
        truncation_psi: 1.0 = no truncation (what train.py's grids show).

    After each save, `last_path` is the picture's path.

    Example:
        >>> grids = FakesGrid("run", grid="6x4")
        >>> model.fit(ds, epochs=5, steps_per_epoch=100, callbacks=[grids])
        >>> grids.last_path
        'run/fakes000008.png'
    """

    def __init__(self, directory, grid=(8, 4), every_epochs=1, seed=_DEFAULTS["seed"], truncation_psi=1.0):
        super().__init__(every_epochs)
        self.directory = os.fspath(directory)
        self.grid = _parse_grid(grid)
        self.seed = int(seed)
        self.truncation_psi = float(truncation_psi)
        self.last_path = None
        self._latents = self._labels = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        os.makedirs(self.directory, exist_ok=True)
        cols, rows = self.grid
        Gs = self.model.Gs
        self._latents = np.random.RandomState(self.seed).randn(cols * rows, Gs.latent_size).astype(np.float32)
        pool = getattr(self.model, "label_pool", None)
        self._labels = None
        if Gs.label_size:
            if pool is None or not len(pool):
                raise ValueError("FakesGrid: a conditional model needs label_pool (the dataset's labels)")
            self._labels = np.asarray(pool, np.float32)[np.arange(cols * rows) % len(pool)]
        self.save()

    def on_epoch_end(self, epoch, logs=None):
        if self._due(epoch):
            self.save()

    def save(self):
        """Draw the grid now; returns its path."""
        sync_variables(self.model)
        images = self.model.Gs.run(self._latents, labels=self._labels, truncation_psi=self.truncation_psi,
                                   noise_mode="const")
        cols, rows = self.grid
        path = snapshot_lib.unused_path(self.directory, "fakes", self.nimg, ".png")
        save_image(make_grid(to_uint8(images), (rows, cols)), path)
        self.last_path = path
        return path

    def get_config(self):
        return {"directory": self.directory, "grid": list(self.grid), "every_epochs": self.every_epochs,
                "seed": self.seed, "truncation_psi": self.truncation_psi}


class Metrics(_Counting):
    """Evaluate metrics on Gs every `every_epochs` epochs: each result goes into the epoch's logs (so
    TensorBoard, CSVLogger, EarlyStopping see it) and, with `directory`, into `metric-<name>.jsonl` as train.py's
    `--metrics` writes it.

    Args:
        metrics: names or a comma-separated string: fid50k, kid50k, swd16k, ... (`python -m stylegan_tf.metrics
            --help`). FID/KID download the FID-Inception weights on first use.
        data: the dataset folder the reals come from.
        every_epochs: epochs between evaluations.
        directory: where to append `metric-<name>.jsonl`; None: logs only.
        num_images: override each metric's image count (a quick look; such numbers are marked not comparable).
        mirror: the reals' statistics include mirrored images (as with `--mirror` training).
        batch_size: images per Inception / Gs batch.

    Example:
        >>> model.fit(ds, epochs=20, steps_per_epoch=500,
        ...           callbacks=[Metrics("fid50k", data="datasets/mine", every_epochs=5, directory="run"),
        ...                      keras.callbacks.EarlyStopping("fid50k", patience=2)])
    """

    def __init__(self, metrics, data, every_epochs=1, directory=None, num_images=None, mirror=False, batch_size=64):
        super().__init__(every_epochs)
        from stylegan_tf.metrics import metric_base
        self.metrics = metric_base.parse_metric_names(metrics)
        self.data = os.fspath(data)
        self.directory = None if directory is None else os.fspath(directory)
        self.num_images = num_images
        self.mirror = bool(mirror)
        self.batch_size = int(batch_size)
        self.results = []

    def on_epoch_end(self, epoch, logs=None):
        if not self._due(epoch):
            return
        from stylegan_tf.metrics import metric_base
        sync_variables(self.model)
        records = metric_base.calc_metrics(self.model, self.metrics, self.data, mirror=self.mirror,
                                           snapshot=f"kimg{self.nimg / 1000.0:.3f}", batch_size=self.batch_size,
                                           report_dir=self.directory, progress=False, num_images=self.num_images)
        for record in records:
            self.results.append(record)
            if logs is not None:
                for key, value in record["results"].items():
                    if math.isfinite(value):
                        logs[key] = value

    def get_config(self):
        return {"metrics": list(self.metrics), "data": self.data, "every_epochs": self.every_epochs,
                "directory": self.directory, "num_images": self.num_images, "mirror": self.mirror,
                "batch_size": self.batch_size}
