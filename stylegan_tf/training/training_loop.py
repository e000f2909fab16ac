"""What `train.py` calls: the official StyleGAN training run, with `fit` as the engine.

One `fit` per phase (a constant (floor, ceil) of lod: one static structure, one trace of train_step); one Keras
epoch per tick. Progress (images, steps, ticks, phase, data position) lives in `LoopState` and is stored in
every snapshot, so `--resume` continues bit-for-bit where the snapshot was taken.

The loop is here; its helpers have homes of their own: `prepare` (options, dataset, schedule, strategy,
precision), `resume` (fresh / snapshot / .pkl start and the locked run directory), `reporting` (log, stats,
TensorBoard, picture grids), `snapshot` (snapshot files), `callbacks` (what runs inside `fit`).
"""
import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time

import numpy as np

from stylegan_tf.atomic import atomic_path
from stylegan_tf.data.interrupts import quiet_swallowed_interrupts
from stylegan_tf.networks.archs import get_arch
from stylegan_tf.training import distributed
from stylegan_tf.training import options as options_lib
from stylegan_tf.training import prepare as prep
from stylegan_tf.training import resume as resume_lib
from stylegan_tf.training import snapshot as snap
from stylegan_tf.training.callbacks import (ContinuousCallbacks, ProgressiveGrowing, ProgressLine, ScheduleDriver,
                                            TickEnd)
from stylegan_tf.training.reporting import PictureGrids, Reporter
from stylegan_tf.training.schedule import format_table, plan_phase


@dataclasses.dataclass
class LoopState:
    nimg: int = 0
    step: int = 0                 # global minibatch counter: keys every random draw of a step
    tick: int = 0
    phase_index: int = 0
    phase_start_nimg: int = 0
    phase_step: int = 0           # steps done in the current phase: the data iterator's position
    total_time: float = 0.0
    tick_start_nimg: int = 0
    tick_start_time: float = 0.0

    def to_dict(self):
        d = dataclasses.asdict(self)
        d.pop("tick_start_time")
        return d

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclasses.dataclass
class TrainingResult:
    run_dir: str                  # on a worker other than the chief: the chief's (on its machine), where files are
    model: object
    history: object
    state: LoopState
    stopped_by: str               # "done", "abort", "interrupt", "callback"
    snapshots: list
    last_fakes: str = None


class _SigintFlag:
    """The first Ctrl-C or SIGTERM (what `kill`, a batch scheduler or a closing notebook sends) stops cleanly after
    the current group of minibatches, with a snapshot; a second one aborts without it.

    The second one's KeyboardInterrupt can land in code that swallows it (JAX's garbage-collector callback, a
    `__del__`): it is recorded, and `check()` (asked between groups) raises it again."""

    SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}

    def __init__(self):
        self.hit = self.aborted = False
        self._old = {}
        self._hook = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = {sig: signal.signal(sig, self._handler) for sig in self.SIGNALS}
            self._hook = sys.unraisablehook
            sys.unraisablehook = quiet_swallowed_interrupts(self._hook, lambda: self.aborted)
        return self

    def _handler(self, signum, frame):
        if self.hit:
            self.aborted = True
            raise KeyboardInterrupt
        self.hit = True
        print(f"\n{self.SIGNALS[signum]}: stopping after this group of minibatches and writing a snapshot "
              "(press Ctrl-C or send SIGTERM again to abort without one)", file=sys.stderr, flush=True)

    def check(self):
        """Raise KeyboardInterrupt if a second signal came (its first KeyboardInterrupt may have been swallowed)."""
        if self.aborted:
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        if self._hook is not None:
            sys.unraisablehook = self._hook
        self._old, self._hook = {}, None


class TrainingRun:
    """prepare() -> build() -> train(). The loop over phases and ticks, snapshots and the stop conditions."""

    def __init__(self, opts, callbacks=None, strategy=None, log_file=True):
        self.opts = opts
        self.user_callbacks = ContinuousCallbacks(callbacks)
        self.strategy = strategy
        self.report = Reporter(log_file=log_file)
        self.stopped_by = None
        self.snapshots = []
        self._sigint = _SigintFlag()
        self._last_snapshot_time = time.time()
        self._maintenance = 0.0
        self._growing = None
        self._cpu_note = self._precision_note = None
        # A multi-worker run (training/distributed.py): its cluster, the exchanges between workers, and on a
        # worker other than the chief the scratch folder it writes to instead of the run directory.
        self.cluster = self.collectives = self._scratch = self.chief_run_dir = None

    def log(self, msg=""):
        self.report.log(msg)

    # ------------------------------------------------------------------ before the run directory exists
    def prepare(self):
        # Before anything runs a TensorFlow op: thread settings are fixed from then on.
        self._cpu_note = prep.set_cpu_parallelism(self.opts)
        if self.strategy is None:
            self.cluster = distributed.Cluster.from_env(backend=_backend())
        if self.cluster is not None and not self.opts.dry_run and _backend() == "jax":
            distributed.connect_jax(self.cluster)      # before JAX computes anything
        self.plan = prep.plan(self.opts)
        if self.opts.dry_run:
            return
        if self.cluster is None or self.cluster.is_chief:
            prep.prepare_metrics(self.opts)            # only the chief computes them
        self.strategy = prep.make_strategy(self.opts, self.strategy, self.cluster)
        if self.cluster is not None:
            self.collectives = distributed.Collectives(self.cluster, self.strategy)
            self.collectives.check_same("the options or the dataset", distributed.run_identity(self.opts, self.plan),
                                        "start every worker with the same flags and a copy of the same dataset")
        self._precision_note = prep.set_precision(self.opts)

    def dry_run_text(self):
        d = self.opts.to_dict()
        d["resolved_resolution"] = self.plan.resolution
        d["fingerprint"] = self.plan.fingerprint
        rows = self.plan.schedule.table(self.opts.total_kimg, self.opts.resume_kimg or 0.0)
        g_params, d_params = self.parameter_counts()
        return ("Training options:\n" + json.dumps(d, indent=2, sort_keys=True) +
                f"\n\nNetworks ({self.opts.arch}): G {g_params:,} and D {d_params:,} trainable parameters" +
                self.mapping_line() +
                "\n\nSchedule (kimg -> lod, resolution, minibatch, lr):\n" + format_table(rows))

    def mapping_line(self):
        """The mapping network's weight-matrix and full parameter counts (architectures that have one)."""
        if not get_arch(self.opts.arch).styles:
            return ""
        from stylegan_tf.networks.mapping import mapping_generator_kwargs, mapping_summary
        kw = mapping_generator_kwargs(self.opts)
        # A Table-1 config may set the mapping depth itself (config B: none).
        kw["mapping_layers"] = options_lib.CONFIGS.get(self.opts.config, {}).get("mapping_layers",
                                                                                kw["mapping_layers"])
        if kw["mapping_layers"] == 0 and kw["mapping"] == "fc":
            return "\nMapping network: none (z is the dlatent)"
        labels = self.plan.info.label_size if self.plan.info is not None else 0
        return "\n" + mapping_summary(label_size=labels, **kw)

    def parameter_counts(self):
        """(G, D) trainable parameter counts of the networks these options build (built here, then dropped)."""
        import numpy as np

        from stylegan_tf.networks.archs import get_arch
        info = self.plan.info
        channels, labels = (info.num_channels, info.label_size) if info is not None else (3, 0)
        G, D = get_arch(self.opts.arch).build(self.opts, self.plan.resolution, channels, labels)
        return tuple(int(sum(np.prod(v.shape) for v in net.trainable_weights)) for net in (G, D))

    def build(self):
        """Model, run directory (locked for this process) and progress: fresh, resumed, or fine-tuning a .pkl."""
        start = resume_lib.start(self.opts, self.plan, self.strategy, self.collectives)
        self.model, self.run_dir, self._lock = start.model, start.run_dir, start.lock
        if self.collectives is not None:
            self._scratch = None if self.cluster.is_chief else self.run_dir
            try:
                self.collectives.check_same("the networks and the position in the schedule at the start",
                                            distributed.state_digest(self.model, start.loop),
                                            "every worker must read the same snapshot (docs/distributed.md)")
                # What the other workers name as the run's directory (on the chief's machine): theirs is scratch.
                self.chief_run_dir = self.collectives.broadcast_text(os.path.abspath(self.run_dir))
            except BaseException:
                self._release()
                raise
        self.opts, self.fingerprint, self.resumed_from = start.opts, start.fingerprint, start.resumed_from
        self.requested_fingerprint = self.plan.fingerprint
        self.state = LoopState.from_dict(start.loop)
        self.report.open(self.run_dir)
        self._notes = start.notes

    # ------------------------------------------------------------------ stop conditions (asked between groups)
    STOPS = (None, "interrupt", "abort")        # agreed between workers: the larger code wins

    def stop_requested(self):
        self._sigint.check()
        if self.stopped_by:
            return True
        if os.path.exists(os.path.join(self.run_dir, "abort.txt")):
            self.stopped_by = "abort"
            self.log("abort.txt found: stopping with a snapshot")
        elif self._sigint.hit:
            self.stopped_by = "interrupt"
        if self.collectives is not None:
            # The chief's abort.txt or any worker's Ctrl-C stops every worker at the same step.
            local = self.STOPS.index(self.stopped_by) if self.stopped_by in self.STOPS else 0
            self.stopped_by = self.STOPS[self.collectives.agree(local)] or self.stopped_by
        return bool(self.stopped_by)

    def snapshot_due(self):
        m = self.opts.snap_minutes
        due = bool(m) and time.time() - self._last_snapshot_time >= m * 60.0
        if self.collectives is not None and m:
            due = bool(self.collectives.agree(int(due)))     # clocks differ: every worker snapshots alike
        return due

    # ------------------------------------------------------------------ files of the run
    def write_options(self):
        d = self.opts.to_dict()
        d.update(fingerprint=self.fingerprint, requested_fingerprint=self.requested_fingerprint,
                 resolved_resolution=self.plan.resolution, dataset=os.path.abspath(self.plan.data_path),
                 resumed_from=self.resumed_from, backend=_backend())
        with atomic_path(os.path.join(self.run_dir, snap.OPTIONS_FILE)) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(d, f, indent=2, sort_keys=True)

    def save_snapshot(self):
        self.model.training_state = {"loop": self.state.to_dict(), "options": self.opts.to_dict(),
                                     "fingerprint": self.fingerprint, "resolution": self.plan.resolution,
                                     "dataset": os.path.abspath(self.plan.data_path)}
        path = snap.save_snapshot(self.model, snap.new_snapshot_path(self.run_dir, self.state.nimg))
        self._last_snapshot_time = time.time()
        if self._scratch:
            # Not the chief: the save took part in what saving needs of every worker; the chief's is the file.
            os.remove(path)
            return None
        self.snapshots.append(path)
        for gone in snap.apply_retention(self.run_dir, self.opts.keep_snapshots):
            if gone in self.snapshots:
                self.snapshots.remove(gone)
        if self.opts.metrics:
            from stylegan_tf.metrics import metric_base
            results = metric_base.calc_metrics(path, list(self.opts.metrics), self.plan.metrics_data,
                                               mirror=self.opts.mirror, snapshot=os.path.basename(path),
                                               report_dir=self.run_dir, progress=self.opts.progress)
            for r in results:
                self.log(f"{r.get('metric')}: {json.dumps(r.get('results'))} ({r.get('total_time', 0):.1f}s)")
        return path

    def end_tick(self, logs):
        st, opts = self.state, self.opts
        t0 = time.time()
        done = st.nimg >= int(round(opts.total_kimg * 1000))
        tick_time = t0 - st.tick_start_time
        st.total_time += tick_time
        st.tick += 1
        lod = self._growing.lod
        stats = self.report.tick(st.tick, st.nimg, (st.nimg - st.tick_start_nimg) / 1000.0, lod,
                                 self.phase.resolution, self.phase.minibatch, tick_time, st.total_time,
                                 self._maintenance, logs)
        for k, v in stats.items():
            if k != "timestamp":
                self.history.history.setdefault(k, []).append(v)
        self.history.epoch.append(st.tick - 1)

        stopping = bool(self.stopped_by) or done
        if st.tick % opts.image_snap_ticks == 0 or stopping:
            self.grids.save_fakes(self.model.Gs, st.nimg)
        if st.tick % opts.snap_ticks == 0 or stopping or self.snapshot_due() or self._growing.cut:
            # A tick cut short by --snap-minutes still starts the next tick at this snapshot.
            self.save_snapshot()
        st.tick_start_nimg = st.nimg
        st.tick_start_time = time.time()
        self._maintenance = st.tick_start_time - t0

    # ------------------------------------------------------------------ the loop
    def _phase_dataset(self, phase):
        st, mb = self.state, phase.minibatch
        seed = int((self.opts.seed * 1000003 + phase.index * 7919) % (2 ** 31 - 1))
        if _backend() != "tensorflow":
            return self._numpy_phase_dataset(phase, seed)
        import tensorflow as tf
        # A pyramid architecture (MSG) reads every level file: a tuple of images, lowest first.
        pyramid = {"pyramid": True} if get_arch(self.opts.arch).data == "pyramid" else {}

        def batches(shard=(0, 1), replicas=1):
            # A run resumed mid-phase starts at batch `phase_step` directly: batch k depends on (seed, k) alone.
            # Each worker reads its share of every global batch, cut into one batch per local replica.
            ds = self.plan.info.make_tf_dataset(phase.resolution, batch_size=mb, mirror=False, shuffle=True,
                                                repeat=True, seed=seed, start=st.phase_step, shard=shard, **pyramid)
            share = mb // shard[1]
            steps = tf.data.Dataset.range(st.step, 2 ** 62)
            ds = tf.data.Dataset.zip((ds, steps)).map(lambda batch, s: (batch[0], batch[1], tf.fill([share], s)))
            return ds if replicas == 1 else ds.unbatch().batch(share // replicas, drop_remainder=True)

        if self.cluster is None:
            return batches()
        workers = self.cluster.num_workers
        return self.strategy.distribute_datasets_from_function(
            lambda ctx: batches((ctx.input_pipeline_id, workers), self.strategy.num_replicas_in_sync // workers))

    def _start_phase(self, phase):
        """A driver of the schedule for `phase`, with the phase entered: fresh Adam states, except when resumed
        mid-phase (the snapshot's Adam state is the one to continue with)."""
        st = self.state
        # Only progressively grown networks have a `lod` to follow the schedule.
        faded = tuple(net for net in (self.model.G, self.model.D) if getattr(net, "lod", None) is not None)
        driver = ScheduleDriver(self.plan.schedule, faded)
        with self.strategy.scope():
            driver.enter(self.model, self.plan.schedule.at(st.nimg / 1000.0), reset=st.phase_step == 0)
        return driver

    def _fit_phase(self, phase, driver):
        st, R = self.state, self.opts.minibatch_repeats
        tick_steps = int(math.ceil(phase.tick_kimg * 1000.0 / (phase.minibatch * R))) * R
        remaining = phase.num_steps - st.phase_step
        self._growing = ProgressiveGrowing(st, driver, phase, R, lambda: self.stop_requested() or self.snapshot_due())
        callbacks = [self._growing, TickEnd(self.end_tick), self.user_callbacks]
        # On JAX, fit makes its batches global arrays (each process's rows its share) only under the distribution.
        distribution = self.strategy.scope() if _backend() == "jax" else contextlib.nullcontext()
        with self._data_errors(phase.resolution), distribution:
            self.model.fit(
                self._phase_dataset(phase), epochs=st.tick + int(math.ceil(remaining / tick_steps)),
                initial_epoch=st.tick, steps_per_epoch=tick_steps, verbose=1 if self.opts.progress else 0,
                shuffle=False, callbacks=callbacks + ([ProgressLine()] if self.opts.progress else []))
        return self._growing

    def _numpy_phase_dataset(self, phase, seed):
        """The phase's batches without tf.data (JAX backend): data/numpy_reader.py, the batches tf.data would give,
        starting at the phase's step, each batch with its global step."""
        import itertools

        from stylegan_tf.data.batches import BatchStream
        st, mb = self.state, phase.minibatch
        # Each process brings its share of every global batch (Keras assembles the global array from them).
        shard = getattr(self.strategy, "shard", (0, 1))
        stream = BatchStream(self.plan.info, phase.resolution, batch_size=mb, mirror=False, shuffle=True,
                             repeat=True, seed=seed, pyramid=get_arch(self.opts.arch).data == "pyramid",
                             shard=shard)
        return ((images, labels, np.full([stream.share], step, np.int64))
                for (images, labels), step in zip(stream.numpy_batches(start=st.phase_step), itertools.count(st.step)))

    @contextlib.contextmanager
    def _data_errors(self, resolution):
        """A damaged level file fails training with one line naming the file (and the record, found by reading
        every record of it); an InvalidArgumentError that the data does not explain is not ours to rename."""
        from stylegan_tf.data.tfrecords import DatasetError
        if _backend() != "tensorflow":
            yield       # the numpy reader names the file and record itself
            return
        import tensorflow as tf

        try:
            yield
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
            caught = error
        else:
            return
        info = self.plan.info
        path = info.level_path(resolution)
        try:
            from stylegan_tf.data.tfrecords import verify_level
        except ImportError:
            verify_level = None
        if verify_level is not None:
            try:
                verify_level(path, (info.num_channels, resolution, resolution))
            except DatasetError as e:
                raise DatasetError(f"training stopped: {e}") from None
        if isinstance(caught, tf.errors.DataLossError):
            detail = (caught.message or "").split(" [Op:")[0].splitlines()[0] if caught.message else "data loss"
            raise DatasetError(f"training stopped: {path}: damaged ({detail}); recreate the dataset") from None
        raise caught

    def train(self):
        try:
            return self._train()
        except Exception as e:
            # A collective that failed because another worker is gone: one line naming it.
            lost = distributed.lost_worker(self.cluster, e) if self.cluster is not None else None
            error = lost or e
            # The caller prints the error; log.txt keeps it too, for whoever reads the run directory later
            # (unless the disk is what failed: then the caller's message is the one that matters).
            with contextlib.suppress(OSError):
                self.report.write_log(f"Training failed: {(str(error).strip().splitlines() or [type(e).__name__])[0]}")
            if lost is not None:
                raise lost from None
            raise
        finally:
            self._release()

    def _release(self):
        self.report.close()
        self._lock.release()
        if self._scratch:
            distributed.remove_scratch(self._scratch)

    def _train(self):
        import keras

        opts, st = self.opts, self.state
        total = int(round(opts.total_kimg * 1000))
        self.history = keras.callbacks.History()
        self.history.set_model(self.model)
        self.history.on_train_begin()
        if self._scratch:
            self.log(f"Run directory: {self.chief_run_dir} on {self.cluster.name(0)}, which writes the snapshots, "
                     f"images and logs (this worker's scratch folder: {self.run_dir})")
        else:
            self.log(f"Run directory: {self.run_dir}")
        for note in filter(None, [self._cpu_note, self._precision_note, *self._notes]):
            self.log(note)
        if self.resumed_from:
            self.log(f"Resuming from {self.resumed_from} at kimg {st.nimg / 1000:.1f}, tick {st.tick}")
        self.write_options()
        gw, gh = options_lib.grid_size(opts, self.plan.resolution)
        with self._data_errors(self.plan.resolution):
            self.grids = PictureGrids(self.run_dir, self.plan.info, self.plan.resolution, (gw, gh),
                                      self.model.G.latent_size, opts.seed)
        self.grids.save_reals()
        self.grids.save_fakes(self.model.Gs, st.nimg)
        st.tick_start_time = time.time()
        st.tick_start_nimg = st.nimg
        R = opts.minibatch_repeats
        with self._sigint:
            while st.nimg < total and not self.stopped_by:
                phase = plan_phase(self.plan.schedule, st.phase_start_nimg, opts.total_kimg, R, st.phase_index)
                if phase is None or st.phase_step >= phase.num_steps:
                    # The previous phase is complete: the next one starts here.
                    st.phase_index += 1 if phase is not None else 0
                    st.phase_start_nimg, st.phase_step = st.nimg, 0
                    continue
                self.phase = phase
                growing = self._fit_phase(phase, self._start_phase(phase))
                if not (growing.finished or growing.cut or self.stopped_by or st.nimg >= total):
                    self.stopped_by = "callback"
                    self.log("A callback stopped training; writing a final snapshot")
                    self.save_snapshot()
        self.stopped_by = self.stopped_by or "done"
        self.user_callbacks.finish({k: v[-1] for k, v in self.history.history.items() if v})
        if self._scratch:       # the files are the chief's: name them where it wrote them
            run_dir, where = self.chief_run_dir, f"snapshots in {self.chief_run_dir} on {self.cluster.name(0)}"
            last_fakes = self.grids.last_fakes and os.path.join(run_dir, os.path.basename(self.grids.last_fakes))
        else:
            run_dir, last_fakes = self.run_dir, self.grids.last_fakes
            where = f"latest snapshot {self.snapshots[-1] if self.snapshots else None}"
        self.log(f"Training stopped ({self.stopped_by}) at kimg {st.nimg / 1000:.1f}; {where}")
        return TrainingResult(run_dir, self.model, self.history, st, self.stopped_by, list(self.snapshots), last_fakes)


def _backend():
    import keras
    return keras.backend.backend()


def training_loop(opts=None, callbacks=None, strategy=None, **kwargs):
    """Train a GAN (`opts.arch`: StyleGAN by default) with `opts` (a TrainingOptions, or keyword options: then
    the architecture's defaults apply to what is not given). Returns a TrainingResult, or the dry-run text when
    `dry_run` is set. `callbacks`: extra Keras callbacks, fed as if by one `fit`.

    Example:
        >>> result = training_loop(arch="dcgan", data="datasets/wikiart", resolution=64, minibatch=128,
        ...                        latent_size=128, lrate=0.001, total_kimg=1600)
    """
    if opts is None:
        opts = resume_lib.resolve_options(kwargs, demo=False)
    elif kwargs:
        opts = dataclasses.replace(opts, **kwargs)
    import keras
    # Mixed precision is Keras' process-wide policy: restored afterwards, so that networks a caller builds later
    # in the same process (a notebook, a test) are not silently bfloat16.
    policy = keras.mixed_precision.global_policy()
    try:
        run = TrainingRun(opts, callbacks=callbacks, strategy=strategy)
        run.prepare()
        if opts.dry_run:
            return run.dry_run_text()
        run.build()
        return run.train()
    finally:
        keras.mixed_precision.set_global_policy(policy)
