"""What `train.py` calls: the official StyleGAN training run, with `fit` as the engine.

One `fit` per phase (a constant (floor, ceil) of lod: one static structure, one trace of train_step); one Keras
epoch per tick. Progress (images, steps, ticks, phase, data position) lives in `LoopState` and is stored in
every snapshot, so `--resume` continues bit-for-bit where the snapshot was taken.
"""
import dataclasses
import json
import math
import os
import resource
import signal
import sys
import threading
import time

import numpy as np

from stylegan_tf.atomic import atomic_path
from stylegan_tf.image_grid import make_grid, save_image, to_uint8
from stylegan_tf.training import options as options_lib
from stylegan_tf.training import snapshot as snap
from stylegan_tf.training.callbacks import ContinuousCallbacks, ProgressiveGrowing, TickMaintenance
from stylegan_tf.training.options import OptionsError, TrainingOptions
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
    run_dir: str
    model: object
    history: object
    state: LoopState
    stopped_by: str               # "done", "abort", "interrupt", "callback"
    snapshots: list
    last_fakes: str = None


def format_time(seconds):
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {(s // 60) % 60:02d}m {s % 60:02d}s"
    return f"{s // 86400}d {(s // 3600) % 24:02d}h {(s // 60) % 60:02d}m"


def demo_dataset_dir(resolution):
    root = os.environ.get("STYLEGAN_TF_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "stylegan_tf")
    return os.path.join(root, options_lib.DEMO_DIRNAME.format(res=resolution))


def ensure_demo_dataset(resolution=64, count=10000, progress=True):
    """The built-in demo dataset in the cache folder, created on first use."""
    from stylegan_tf.data import create_demo, open_dataset
    path = demo_dataset_dir(resolution)
    if not os.path.isdir(path):
        print(f"Creating the demo dataset ({count} faces, {resolution}x{resolution}) in {path} ...", flush=True)
        create_demo(path, count=count, resolution=resolution, seed=0, progress=progress)
    return open_dataset(path)


class _SigintFlag:
    """First Ctrl-C: stop cleanly after the current group of minibatches (with a snapshot); second: abort."""

    def __init__(self):
        self.hit = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True
        print("\nCtrl-C: stopping after this group of minibatches and writing a snapshot "
              "(press again to abort without one)", file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


class TrainingRun:
    def __init__(self, opts, callbacks=None, strategy=None, log_file=True):
        self.opts = opts
        self.user_callbacks = ContinuousCallbacks(callbacks)
        self.strategy = strategy
        self.log_file = log_file
        self.phase_finished = False
        self.cut_tick = False
        self.stopped_by = None
        self.snapshots = []
        self._sigint = _SigintFlag()
        self._last_snapshot_time = time.time()
        self._maintenance = 0.0

    # ------------------------------------------------------------------ logging
    def log(self, msg=""):
        print(msg, flush=True)
        if self.log_file and getattr(self, "run_dir", None):
            with open(os.path.join(self.run_dir, "log.txt"), "a", encoding="utf-8") as f:
                f.write(msg + "\n")

    # ------------------------------------------------------------------ hooks used by the callbacks
    def set_lod(self, lod):
        for net in (self.model.G, self.model.D):
            net.lod.assign(float(lod))
        self.current_lod = float(lod)

    def stop_requested(self):
        if self.stopped_by:
            return True
        if os.path.exists(os.path.join(self.run_dir, "abort.txt")):
            self.stopped_by = "abort"
            self.log("abort.txt found: stopping with a snapshot")
        elif self._sigint.hit:
            self.stopped_by = "interrupt"
        return bool(self.stopped_by)

    def snapshot_due(self):
        m = self.opts.snap_minutes
        return bool(m) and time.time() - self._last_snapshot_time >= m * 60.0

    # ------------------------------------------------------------------ setup
    def prepare(self):
        import tensorflow as tf

        opts = self.opts
        errs = options_lib.validate(opts)
        if errs:
            raise OptionsError("\n".join(errs))
        if opts.data is None:
            info = ensure_demo_dataset(progress=opts.progress) if not opts.dry_run else None
            data_path = demo_dataset_dir(64)
        else:
            from stylegan_tf.data import open_dataset
            info = open_dataset(opts.data)
            data_path = opts.data
        self.info = info
        full_res = info.resolution if info is not None else 64
        res = opts.resolution or full_res
        if res > full_res:
            raise OptionsError(f"--resolution {res} is larger than the dataset's {full_res}: lower it")
        if info is not None and res not in info.levels:
            raise OptionsError(f"--resolution {res}: the dataset has no {res}x{res} level file")
        self.resolution = res
        self.schedule = options_lib.make_schedule(opts, res)
        self.fingerprint = options_lib.fingerprint(opts, data_path)
        self.dataset_name = os.path.basename(os.path.normpath(data_path))
        if opts.metrics and opts.data is None:
            self.metrics_data = data_path
        else:
            self.metrics_data = opts.data
        if opts.dry_run:
            return
        if opts.metrics:
            # Fetch what the metrics need now (e.g. Inception weights): fail at start, not hours later.
            from stylegan_tf.metrics import metric_base
            metric_base.prepare_metrics(list(opts.metrics), progress=opts.progress)
        if opts.gpus > 1 and self.strategy is None:
            gpus = tf.config.list_logical_devices("GPU")
            devices = gpus if len(gpus) >= opts.gpus else tf.config.list_logical_devices("CPU")
            if len(devices) < opts.gpus:
                raise OptionsError(f"--gpus {opts.gpus}: only {len(gpus)} GPU(s) visible; lower --gpus")
            self.strategy = tf.distribute.MirroredStrategy([d.name for d in devices[:opts.gpus]])
        if self.strategy is None:
            self.strategy = tf.distribute.get_strategy()
        if opts.mixed_precision:
            import keras
            keras.mixed_precision.set_global_policy(
                "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16")

    def dry_run_text(self):
        d = self.opts.to_dict()
        d["resolved_resolution"] = self.resolution
        d["fingerprint"] = self.fingerprint
        rows = self.schedule.table(self.opts.total_kimg, self.opts.resume_kimg or 0.0)
        return ("Training options:\n" + json.dumps(d, indent=2, sort_keys=True) +
                "\n\nSchedule (kimg -> lod, resolution, minibatch, lr):\n" + format_table(rows))

    def _new_model(self):
        import keras
        from stylegan_tf.networks import Discriminator, Generator
        from stylegan_tf.training.model import StyleGAN

        info, opts = self.info, self.opts
        g_kw, d_kw = options_lib.network_kwargs(opts, self.resolution, info.num_channels, info.label_size)
        keras.utils.set_random_seed(opts.seed)
        G = Generator(**g_kw)
        D = Discriminator(**d_kw)
        Gs = Generator(**g_kw)
        self._build_nets(G, D, Gs)
        return StyleGAN(G, D, Gs, seed=opts.seed, mirror=opts.mirror, g_smoothing_kimg=opts.g_smoothing_kimg)

    def _build_nets(self, G, D, Gs):
        z = np.zeros([1, G.latent_size], np.float32)
        lab = np.zeros([1, G.label_size], np.float32) if G.label_size else None
        for g in (G, Gs):
            g(z, labels=lab, training=False)
        x = np.zeros([1, self.resolution, self.resolution, self.info.num_channels], np.float32)
        D(x, labels=lab, training=False)

    def _optimizer(self, lr):
        import keras
        opt = keras.optimizers.Adam(learning_rate=lr, beta_1=0.0, beta_2=0.99, epsilon=1e-8)
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            opt = keras.optimizers.LossScaleOptimizer(opt)
        return opt

    def build(self):
        """Model, run directory and progress: fresh, resumed from a snapshot, or fine-tuning a .pkl."""
        import keras
        import stylegan_tf
        from stylegan_tf.training.model import StyleGAN

        opts = self.opts
        resume_path, run_dir = opts.resume, None
        if opts.resume == "auto":
            run_dir, resume_path = snap.find_resume(opts.outdir, self.fingerprint)
            if resume_path is None:
                print("--resume auto: no earlier run with these options; starting a new one", flush=True)
        self.state = LoopState()
        with self.strategy.scope():
            if resume_path and resume_path.lower().endswith(".keras"):
                model = keras.saving.load_model(resume_path, compile=False)
                if not isinstance(model, StyleGAN):
                    raise OptionsError(f"--resume {resume_path}: not a training snapshot (no optimizer state); "
                                       "give a network-snapshot-*.keras from a run directory")
                self._check_compatible(model, resume_path)
                self.state = LoopState.from_dict(model.training_state.get("loop", {}))
                if model.g_optimizer is None or model.d_optimizer is None:
                    model.g_optimizer, model.d_optimizer = self._optimizer(0.001), self._optimizer(0.001)
            elif resume_path:
                nets = stylegan_tf.load_network(resume_path)
                self._check_compatible(nets, resume_path)
                model = StyleGAN(nets.G, nets.D, nets.Gs, seed=opts.seed, mirror=opts.mirror,
                                 g_smoothing_kimg=opts.g_smoothing_kimg)
                nimg = int(round((opts.resume_kimg or 0.0) * 1000))
                self.state = LoopState(nimg=nimg, phase_start_nimg=nimg, tick_start_nimg=nimg)
            else:
                model = self._new_model()
                model.ema_update_now(0.0)
            if model.g_optimizer is None:
                model.g_optimizer, model.d_optimizer = self._optimizer(0.001), self._optimizer(0.001)
            loss_name, loss_kwargs = options_lib.loss_settings(opts)
            model.label_pool = self.info.labels if self.info.label_size else None
            model.compile(loss=loss_name, loss_kwargs=loss_kwargs)
        self.model = model
        self.run_dir = run_dir or options_lib.new_run_dir(
            opts.outdir, options_lib.run_description(opts, self.dataset_name, self.resolution))
        self.resumed_from = resume_path

    def _check_compatible(self, nets, path):
        G = nets.G
        if G.resolution != self.resolution or G.num_channels != self.info.num_channels \
                or G.label_size != self.info.label_size:
            raise OptionsError(
                f"--resume {path}: network is {G.resolution}x{G.resolution}x{G.num_channels} with "
                f"{G.label_size} labels but the data is {self.resolution}x{self.resolution}x"
                f"{self.info.num_channels} with {self.info.label_size}: pick a matching --resolution/dataset")

    # ------------------------------------------------------------------ run
    def write_run_files(self):
        opts = self.opts
        d = opts.to_dict()
        d.update(fingerprint=self.fingerprint, resolved_resolution=self.resolution,
                 dataset=os.path.abspath(opts.data) if opts.data else demo_dataset_dir(64),
                 resumed_from=self.resumed_from)
        with atomic_path(os.path.join(self.run_dir, snap.OPTIONS_FILE)) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(d, f, indent=2, sort_keys=True)
        gw, gh = options_lib.grid_size(opts, self.resolution)
        n = gw * gh
        reals, labels = [], []
        for images, lab in self.info.iterate_uint8(resolution=self.resolution, max_images=n, with_labels=True):
            reals.append(images)
            labels.append(lab)
        reals = np.concatenate(reals)
        labels = np.concatenate(labels) if self.info.label_size else None
        self.grid = (gw, gh)
        self.grid_latents = np.random.RandomState(opts.seed).randn(n, self.model.G.latent_size).astype(np.float32)
        if len(reals) < n:   # tiny datasets: repeat to fill the grid
            idx = np.arange(n) % len(reals)
            reals = reals[idx]
            labels = labels[idx] if labels is not None else None
        self.grid_labels = labels
        if not os.path.exists(os.path.join(self.run_dir, "reals.png")):
            save_image(make_grid(reals, (gh, gw)), os.path.join(self.run_dir, "reals.png"))
        self.save_fakes()

    def save_fakes(self):
        nimg = self.state.nimg
        imgs = self.model.Gs.run(self.grid_latents, labels=self.grid_labels, truncation_psi=1.0,
                                 noise_mode="const")
        gw, gh = self.grid
        path = os.path.join(self.run_dir, f"fakes{nimg // 1000:06d}.png")
        save_image(make_grid(to_uint8(imgs), (gh, gw)), path)
        self.last_fakes = path

    def save_snapshot(self):
        self.model.training_state = {"loop": self.state.to_dict(), "options": self.opts.to_dict(),
                                     "fingerprint": self.fingerprint, "resolution": self.resolution}
        path = os.path.join(self.run_dir, snap.snapshot_name(self.state.nimg // 1000))
        snap.save_snapshot(self.model, path)
        self._last_snapshot_time = time.time()
        self.snapshots.append(path)
        for gone in snap.apply_retention(self.run_dir, self.opts.keep_snapshots):
            if gone in self.snapshots:
                self.snapshots.remove(gone)
        if self.opts.metrics:
            from stylegan_tf.metrics import metric_base
            results = metric_base.calc_metrics(path, list(self.opts.metrics), self.metrics_data,
                                               mirror=self.opts.mirror, snapshot=os.path.basename(path),
                                               report_dir=self.run_dir, progress=self.opts.progress)
            for r in results:
                self.log(f"{r.get('metric')}: {json.dumps(r.get('results'))} ({r.get('total_time', 0):.1f}s)")
        return path

    def end_tick(self, logs):
        st, opts = self.state, self.opts
        t0 = time.time()
        total = int(round(opts.total_kimg * 1000))
        done = st.nimg >= total
        tick_time = t0 - st.tick_start_time
        tick_kimg = (st.nimg - st.tick_start_nimg) / 1000.0
        st.total_time += tick_time
        st.tick += 1
        mem = _peak_memory_gb()
        self.log(f"tick {st.tick:<5d} kimg {st.nimg / 1000.0:<8.1f} lod {self.current_lod:<5.2f} "
                 f"minibatch {self.phase.minibatch:<4d} time {format_time(st.total_time):<12s} "
                 f"sec/tick {tick_time:<7.1f} sec/kimg {tick_time / max(tick_kimg, 1e-9):<7.2f} "
                 f"maintenance {self._maintenance:<6.1f} mem {mem:<4.1f}")
        stats = {"tick": st.tick, "kimg": st.nimg / 1000.0, "lod": self.current_lod,
                 "resolution": self.phase.resolution, "minibatch": self.phase.minibatch,
                 "sec_per_tick": tick_time, "sec_per_kimg": tick_time / max(tick_kimg, 1e-9),
                 "img_per_sec": tick_kimg * 1000.0 / max(tick_time, 1e-9), "maintenance_sec": self._maintenance,
                 "peak_mem_gb": mem, "total_sec": st.total_time, "timestamp": time.time()}
        for k, v in logs.items():
            if k not in stats and isinstance(v, (int, float, np.floating, np.integer)):
                stats[k] = float(v)
        with open(os.path.join(self.run_dir, "stats.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(stats) + "\n")
        self._write_summaries(stats)
        for k, v in stats.items():
            if k != "timestamp":
                self.history.history.setdefault(k, []).append(v)
        self.history.epoch.append(st.tick - 1)

        stopping = bool(self.stopped_by) or done
        if st.tick % opts.image_snap_ticks == 0 or stopping:
            self.save_fakes()
        if st.tick % opts.snap_ticks == 0 or stopping or self.snapshot_due() or self.cut_tick:
            # A tick cut short by --snap-minutes still starts the next tick at this snapshot.
            self.save_snapshot()
        st.tick_start_nimg = st.nimg
        st.tick_start_time = time.time()
        self._maintenance = st.tick_start_time - t0

    def _write_summaries(self, stats):
        """TensorBoard scalars in the run dir, written with core TF ops (the tensorboard package is optional)."""
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        if getattr(self, "_writer", None) is None:
            self._writer = tf.summary.create_file_writer(self.run_dir)
            meta = summary_pb2.SummaryMetadata()
            meta.plugin_data.plugin_name = "scalars"
            self._scalar_meta = meta.SerializeToString()
        with self._writer.as_default():
            for k, v in stats.items():
                if k not in ("tick", "timestamp"):
                    tf.summary.write(f"Progress/{k}", tf.constant(float(v), tf.float32), step=self.state.nimg,
                                     metadata=self._scalar_meta)
        self._writer.flush()

    def _phase_dataset(self, phase):
        import tensorflow as tf
        st, mb = self.state, phase.minibatch
        seed = int((self.opts.seed * 1000003 + phase.index * 7919) % (2 ** 31 - 1))
        ds = self.info.make_tf_dataset(phase.resolution, batch_size=mb, mirror=False, shuffle=True,
                                       repeat=True, seed=seed)
        if st.phase_step:
            ds = ds.skip(st.phase_step)
        steps = tf.data.Dataset.range(st.step, 2 ** 62)
        return tf.data.Dataset.zip((ds, steps)).map(
            lambda batch, s: (batch[0], batch[1], tf.fill([mb], s)))

    def train(self):
        import keras

        opts, st = self.opts, self.state
        total = int(round(opts.total_kimg * 1000))
        self.history = keras.callbacks.History()
        self.history.set_model(self.model)
        self.history.on_train_begin()
        self.current_lod = float(self.schedule.at(st.nimg / 1000.0).lod)
        self.log(f"Run directory: {self.run_dir}")
        if self.resumed_from:
            self.log(f"Resuming from {self.resumed_from} at kimg {st.nimg / 1000:.1f}, tick {st.tick}")
        self.write_run_files()
        st.tick_start_time = time.time()
        st.tick_start_nimg = st.nimg
        R = opts.minibatch_repeats
        with self._sigint:
            while st.nimg < total and not self.stopped_by:
                phase = plan_phase(self.schedule, st.phase_start_nimg, opts.total_kimg, R, st.phase_index)
                if phase is None or st.phase_step >= phase.num_steps:
                    # The previous phase is complete: the next one starts here.
                    st.phase_index += 1 if phase is not None else 0
                    st.phase_start_nimg, st.phase_step = st.nimg, 0
                    continue
                self.phase = phase
                with self.strategy.scope():
                    if st.phase_step == 0:
                        self.model.reset_optimizers(phase.G_lrate, phase.D_lrate)
                    else:
                        # Resumed mid-phase: the snapshot's Adam state is the one to continue with.
                        for opt, lr in ((self.model.g_optimizer, phase.G_lrate),
                                        (self.model.d_optimizer, phase.D_lrate)):
                            getattr(opt, "inner_optimizer", opt).learning_rate = lr
                    self.model.configure_phase(phase.level, phase.minibatch)
                tick_steps = int(math.ceil(phase.tick_kimg * 1000.0 / (phase.minibatch * R))) * R
                remaining = phase.num_steps - st.phase_step
                self.phase_finished = self.cut_tick = False
                self.model.fit(
                    self._phase_dataset(phase), epochs=st.tick + int(math.ceil(remaining / tick_steps)),
                    initial_epoch=st.tick, steps_per_epoch=tick_steps, verbose=1 if opts.progress else 0, shuffle=False,
                    callbacks=[ProgressiveGrowing(self, phase), TickMaintenance(self), self.user_callbacks])
                if not (self.phase_finished or self.cut_tick or self.stopped_by or st.nimg >= total):
                    self.stopped_by = "callback"
                    self.log("A callback stopped training; writing a final snapshot")
                    self.save_snapshot()
        self.stopped_by = self.stopped_by or "done"
        self.user_callbacks.finish({k: v[-1] for k, v in self.history.history.items() if v})
        if getattr(self, "_writer", None) is not None:
            self._writer.close()
        self.log(f"Training stopped ({self.stopped_by}) at kimg {st.nimg / 1000:.1f}; "
                 f"latest snapshot {self.snapshots[-1] if self.snapshots else None}")
        return TrainingResult(self.run_dir, self.model, self.history, st, self.stopped_by, list(self.snapshots),
                              getattr(self, "last_fakes", None))


def _peak_memory_gb():
    try:
        import tensorflow as tf
        if tf.config.list_physical_devices("GPU"):
            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2 ** 30
    except Exception:       # memory stats are best-effort reporting only
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def training_loop(opts=None, callbacks=None, strategy=None, **kwargs):
    """Train StyleGAN with `opts` (a TrainingOptions, or keyword options). Returns a TrainingResult, or the
    dry-run text when `dry_run` is set. `callbacks`: extra Keras callbacks, fed as if by one `fit`."""
    if opts is None:
        opts = TrainingOptions(**kwargs)
    elif kwargs:
        opts = dataclasses.replace(opts, **kwargs)
    run = TrainingRun(opts, callbacks=callbacks, strategy=strategy)
    run.prepare()
    if opts.dry_run:
        return run.dry_run_text()
    run.build()
    return run.train()
