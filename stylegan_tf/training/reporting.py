"""What a training run tells its user: the console and log.txt, one stats.jsonl row and one TensorBoard point
per tick, and the picture grids (reals.png once, fakesKKKKKK.png as it trains)."""
import importlib.util
import json
import os
import resource
import time

import numpy as np

from stylegan_tf.image_grid import make_grid, save_image, to_uint8
from stylegan_tf.training.rundir import STATS_FILE
from stylegan_tf.training.snapshot import unused_path


def format_time(seconds):
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {(s // 60) % 60:02d}m {s % 60:02d}s"
    return f"{s // 86400}d {(s // 3600) % 24:02d}h {(s // 60) % 60:02d}m"


def _jax_device_peak_gb():
    import keras
    if keras.backend.backend() != "jax":
        return None
    import jax
    stats = jax.devices()[0].memory_stats() or {}
    return stats["peak_bytes_in_use"] / 2 ** 30 if "peak_bytes_in_use" in stats else None


def _tensorflow_gpu_peak_gb():
    import tensorflow as tf
    if not tf.config.list_physical_devices("GPU"):
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2 ** 30


def peak_memory_gb():
    """Peak memory in GiB: the accelerator's when there is one (JAX device or TF GPU), else the process's RSS."""
    for device_peak in (_jax_device_peak_gb, _tensorflow_gpu_peak_gb):
        try:
            peak = device_peak()
        except Exception:       # memory stats are best-effort reporting: fall through to the next source
            peak = None
        if peak is not None:
            return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def _tensorflow_importable():
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


class Reporter:
    """Log lines, per-tick statistics and TensorBoard scalars of one run directory."""

    def __init__(self, log_file=True):
        self.log_file = log_file
        self.run_dir = None
        self._writer = None

    def open(self, run_dir):
        self.run_dir = run_dir

    def log(self, msg=""):
        print(msg, flush=True)
        self.write_log(msg)

    def write_log(self, msg):
        """`msg` in log.txt only."""
        if self.log_file and self.run_dir:
            with open(os.path.join(self.run_dir, "log.txt"), "a", encoding="utf-8") as f:
                f.write(msg + "\n")

    def tick(self, tick, nimg, tick_kimg, lod, resolution, minibatch, tick_time, total_time, maintenance, logs):
        """The end of one tick: the log line, a stats.jsonl row and TensorBoard scalars. Returns the row."""
        tick_kimg = max(tick_kimg, 1e-9)
        mem = peak_memory_gb()
        self.log(f"tick {tick:<5d} kimg {nimg / 1000.0:<8.1f} lod {lod:<5.2f} minibatch {minibatch:<4d} "
                 f"time {format_time(total_time):<12s} sec/tick {tick_time:<7.1f} "
                 f"sec/kimg {tick_time / tick_kimg:<7.2f} maintenance {maintenance:<6.1f} mem {mem:<4.1f}")
        stats = {"tick": tick, "kimg": nimg / 1000.0, "lod": lod, "resolution": resolution, "minibatch": minibatch,
                 "sec_per_tick": tick_time, "sec_per_kimg": tick_time / tick_kimg,
                 "img_per_sec": tick_kimg * 1000.0 / max(tick_time, 1e-9), "maintenance_sec": maintenance,
                 "peak_mem_gb": mem, "total_sec": total_time, "timestamp": time.time()}
        for k, v in logs.items():
            if k not in stats and isinstance(v, (int, float, np.floating, np.integer)):
                stats[k] = float(v)
        with open(os.path.join(self.run_dir, STATS_FILE), "a", encoding="utf-8") as f:
            f.write(json.dumps(stats) + "\n")
        self._scalars(stats, step=nimg)
        return stats

    def _scalars(self, stats, step):
        """TensorBoard scalars in the run dir. `tf.summary.scalar` is TensorBoard's own op, which TensorFlow
        only has when the tensorboard package is installed; without it nobody could view the curves either,
        so the run says once how to get them and writes none (likewise without TensorFlow, on JAX)."""
        if self._writer is None:
            if not _tensorflow_importable():
                self._writer = False
                self.log("TensorFlow is not installed: no TensorBoard curves; "
                         f"the same numbers are in {STATS_FILE}")
            elif importlib.util.find_spec("tensorboard") is None:
                self._writer = False
                self.log("TensorBoard is not installed: no TensorBoard curves (pip install tensorboard); "
                         f"the same numbers are in {STATS_FILE}")
            else:
                import tensorflow as tf
                self._writer = tf.summary.create_file_writer(self.run_dir)
        if not self._writer:
            return
        import tensorflow as tf
        with self._writer.as_default(step=step):
            for k, v in stats.items():
                if k not in ("tick", "timestamp"):
                    tf.summary.scalar(f"Progress/{k}", float(v))
        self._writer.flush()

    def close(self):
        if self._writer:
            self._writer.close()
        self._writer = None


class PictureGrids:
    """reals.png and fakesKKKKKK.png: a fixed set of latents (and labels) drawn through Gs as training goes."""

    def __init__(self, run_dir, info, resolution, grid, latent_size, seed):
        gw, gh = grid
        n = gw * gh
        reals, labels = [], []
        for images, lab in info.iterate_uint8(resolution=resolution, max_images=n, with_labels=True):
            reals.append(images)
            labels.append(lab)
        reals = np.concatenate(reals)
        labels = np.concatenate(labels) if info.label_size else None
        if len(reals) < n:   # tiny datasets: repeat to fill the grid
            idx = np.arange(n) % len(reals)
            reals = reals[idx]
            labels = labels[idx] if labels is not None else None
        self.run_dir = run_dir
        self.grid = (gw, gh)
        self.reals = reals
        self.latents = np.random.RandomState(seed).randn(n, latent_size).astype(np.float32)
        self.labels = labels
        self.last_fakes = None

    def save_reals(self):
        path = os.path.join(self.run_dir, "reals.png")
        if not os.path.exists(path):
            gw, gh = self.grid
            save_image(make_grid(self.reals, (gh, gw)), path)

    def save_fakes(self, Gs, nimg):
        # Constant noise, unlike the original's random noise: successive grids differ only by training.
        imgs = Gs.run(self.latents, labels=self.labels, truncation_psi=1.0, noise_mode="const")
        gw, gh = self.grid
        path = unused_path(self.run_dir, "fakes", nimg, ".png")
        save_image(make_grid(to_uint8(imgs), (gh, gw)), path)
        self.last_fakes = path
        return path
