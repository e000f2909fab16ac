"""The callbacks: the public ones (stylegan_tf/callbacks.py) in a user's own `fit`, on TensorFlow and on JAX; the
schedule driver both progressive-growing callbacks use; the progress line of train.py's `fit`."""
import csv
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import keras
import stylegan_tf
from conftest import REPO, TINY_NET
from stylegan_tf import callbacks
from stylegan_tf.networks import Discriminator, Generator
from stylegan_tf.training import StyleGAN, TrainingOptions, fit_dataset, training_loop
from stylegan_tf.training.callbacks import ScheduleDriver, progress_logs
from stylegan_tf.training.schedule import TrainingSchedule

TINY = dict(resolution=16, num_channels=3, fmap_base=64, fmap_max=16)
LATENT = {k: TINY_NET[k] for k in ("latent_size", "dlatent_size", "mapping_layers", "mapping_fmaps")}


def _adam():
    return keras.optimizers.Adam(1e-3, beta_1=0.0, beta_2=0.99, epsilon=1e-8)


def _model(**kw):
    model = StyleGAN(Generator(**TINY, **LATENT), Discriminator(**TINY), **kw)
    model.compile(g_optimizer=_adam(), d_optimizer=_adam(), loss="logistic", loss_kwargs={"gamma": 10.0})
    return model


def _value(variable):
    return float(np.asarray(keras.ops.convert_to_numpy(variable)))


def test_user_fit_with_public_and_keras_callbacks(demo_dataset, tmp_path):
    """One `fit`: progressive growing 8x8 -> 16x16, Keras' own callbacks, ours, and a custom one; then save and
    load `.keras`, continue `fit` with the Metrics callback, and drive the loaded model through a schedule (one
    model and its traced steps for all of it: on JAX each new phase is a compile)."""
    data = demo_dataset(16, 64)
    model = _model(mirror=True, g_smoothing_kimg=0.1)
    run = tmp_path / "run"
    seen = []

    class GridSaver(keras.callbacks.Callback):           # a user's own picture callback
        def on_epoch_end(self, epoch, logs=None):
            z = np.random.RandomState(0).randn(4, self.model.Gs.latent_size).astype("float32")
            seen.append(self.model.Gs.run(z).shape)

    growing = callbacks.ProgressiveGrowing(lod_training_kimg=0.064, lod_transition_kimg=0.064)
    grids = callbacks.FakesGrid(run, grid="2x2", every_epochs=1)
    snaps = callbacks.Snapshots(run, every_epochs=2)
    history = model.fit(fit_dataset(data, batch_size=8), epochs=4, steps_per_epoch=8, verbose=0,
                        callbacks=[growing, grids, snaps, GridSaver(),
                                   keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
                                   keras.callbacks.TensorBoard(str(tmp_path / "tb")),
                                   keras.callbacks.TerminateOnNaN()])
    # 4 epochs x 8 steps x 8 images = 256 images: 64 at 8x8, a 64-image fade, then 16x16.
    assert history.history["kimg"][-1] == pytest.approx(0.256)
    assert history.history["resolution"][0] == 8.0 and history.history["resolution"][-1] == 16.0
    assert history.history["lod"] == [1.0, 0.5, 0.0, 0.0]
    assert model.level == 0 and _value(model.G.lod) == 0.0 and _value(model.D.lod) == 0.0
    assert all(np.isfinite(history.history["D_loss"])) and all(np.isfinite(history.history["G_loss"]))
    assert model.training_state["nimg"] == 256
    # Gs is an EMA of G (the fit configured the minibatch), not a copy.
    assert model.gs_beta > 0
    gaps = [float(np.abs(keras.ops.convert_to_numpy(a) - keras.ops.convert_to_numpy(b)).max())
            for a, b in zip(model.G.weights, model.Gs.weights) if a.trainable]
    assert 0 < max(gaps) < 1.0    # Gs started as a copy of G and lags behind it
    assert {p.name for p in run.glob("fakes*.png")} == {
        "fakes000000.png", "fakes000000.064.png", "fakes000000.128.png", "fakes000000.192.png",
        "fakes000000.256.png"}
    assert grids.last_path.endswith("fakes000000.256.png")
    assert [os.path.basename(p) for p in snaps.saved] == ["network-snapshot-000000.keras",
                                                         "network-snapshot-000000.256.keras"]
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and "D_loss" in rows[0] and "kimg" in rows[0]
    assert list((tmp_path / "tb").rglob("events.out.tfevents*"))
    assert seen == [(4, 16, 16, 3)] * 4

    # The snapshot loads as the training model (optimizers included) and as networks.
    latest = callbacks.Snapshots.latest(run)
    assert latest == snaps.saved[-1]
    nets = stylegan_tf.load_network(latest)
    z = np.random.RandomState(1).randn(2, 16).astype("float32")
    np.testing.assert_allclose(nets.Gs.run(z), model.Gs.run(z), atol=1e-5)
    path = str(tmp_path / "mine.keras")
    model.save(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = keras.saving.load_model(path)
    # Loaded compiled, ready to fit (Keras warns and skips compiling a model whose compile() it cannot restore).
    assert not [w for w in caught if "compile()" in str(w.message)], [str(w.message) for w in caught]
    assert isinstance(again, StyleGAN) and again.compiled and again.training_state["nimg"] == 256
    assert (again.loss_name, again.loss_kwargs) == (model.loss_name, model.loss_kwargs)
    metrics = tmp_path / "metrics"
    more = again.fit(fit_dataset(data, batch_size=8, first_step=32), epochs=1, steps_per_epoch=4, verbose=0,
                     callbacks=[callbacks.ProgressiveGrowing(lod_training_kimg=0.064, lod_transition_kimg=0.064),
                                callbacks.Metrics("swd16k", data=data, directory=metrics, num_images=64,
                                                  batch_size=32)])
    assert more.history["kimg"][-1] == pytest.approx(0.288) and more.history["resolution"][-1] == 16.0
    # The Metrics callback: its numbers in the logs, and its jsonl file.
    keys = [k for k in more.history if k.startswith("swd")]
    assert keys and all(np.isfinite(more.history[k][-1]) for k in keys)
    assert list(metrics.glob("metric-swd16k*.jsonl"))
    _check_schedule_driver(again)


def _check_schedule_driver(model):
    """The driver both ProgressiveGrowing callbacks use, on a `model` that `fit` has trained: a new (floor, ceil)
    of lod resets Adam (not the first), sets the phase's learning rates and structure; within a phase only the
    lod moves."""
    schedule = TrainingSchedule(resolution=16, lod_initial_resolution=8, lod_training_kimg=0.008,
                                lod_transition_kimg=0.008, minibatch_base=4, minibatch_dict={},
                                G_lrate_base=0.002, G_lrate_dict={16: 0.003}, D_lrate_base=0.002,
                                D_lrate_dict={16: 0.003})
    driver = ScheduleDriver(schedule, [model.G, model.D], minibatch=4)
    iterations = model.g_optimizer.iterations
    fitted = _value(iterations)
    assert fitted > 0
    assert driver.follow(model, 0).lod == 1.0 and model.level == 1 and _value(model.G.lod) == 1.0
    assert _value(iterations) == fitted                         # the first phase keeps the fit's Adam state
    assert _value(model.g_optimizer.learning_rate) == pytest.approx(0.002)
    iterations.assign(5)
    assert driver.follow(model, 8).lod == 1.0 and _value(iterations) == 5      # the same phase: nothing reset
    assert driver.follow(model, 12).lod == 0.5 and _value(iterations) == 0     # the fade-in: a new phase
    assert model.level == 0 and _value(model.D.lod) == 0.5
    assert _value(model.d_optimizer.learning_rate) == pytest.approx(0.003)
    iterations.assign(5)
    assert driver.follow(model, 14).lod == 0.25 and _value(model.G.lod) == 0.25 and _value(iterations) == 5
    assert driver.follow(model, 16).lod == 0.0 and _value(iterations) == 0


def test_callbacks_have_configs_and_check_their_arguments(tmp_path):
    for cb in (callbacks.ProgressiveGrowing(lrate=0.002), callbacks.FakesGrid(tmp_path, grid=(3, 2)),
               callbacks.Snapshots(tmp_path, every_epochs=None, every_minutes=20, keep=3),
               callbacks.Metrics("swd16k", data=str(tmp_path), num_images=32)):
        config = cb.get_config()
        json.dumps(config)
        assert type(cb)(**config).get_config() == config
    # One source of defaults: the callbacks' are TrainingOptions'.
    pg = callbacks.ProgressiveGrowing().get_config()
    opts = TrainingOptions()
    assert (pg["lod_initial_resolution"], pg["lod_training_kimg"], pg["lod_transition_kimg"], pg["lrate"]) == (
        opts.lod_initial_resolution, opts.lod_training_kimg, opts.lod_transition_kimg, opts.lrate)
    with pytest.raises(ValueError, match="8x4"):
        callbacks.FakesGrid(tmp_path, grid="big")
    with pytest.raises(ValueError, match="every_epochs"):
        callbacks.Snapshots(tmp_path, every_epochs=0)
    with pytest.raises(Exception, match="nope"):
        callbacks.Metrics("nope", data=str(tmp_path))


def test_progress_line_shows_what_a_user_reads(demo_dataset, tmp_path, capfd):
    logs = {"kimg": 1.2, "lod": 0.0, "resolution": 32.0, "G_loss": 0.7, "D_loss": 1.3, "nonfinite_skips": 0.0,
            "r1": 0.01, "img_per_sec": 50.0}
    assert progress_logs(logs) == {"kimg": 1.2, "G_loss": 0.7, "D_loss": 1.3, "img_per_sec": 50.0}
    assert progress_logs(dict(logs, lod=0.5))["lod"] == 0.5                 # while a resolution fades in
    opts = TrainingOptions(data=demo_dataset(16, 64), outdir=str(tmp_path), resolution=8, minibatch=4,
                           tick_kimg=0.016, total_kimg=0.016, lod_initial_resolution=8, **TINY_NET)
    res = training_loop(opts)
    out = capfd.readouterr().out
    assert "kimg: 0.0160" in out and "G_loss" in out and "img_per_sec" in out
    for hidden in ("nonfinite_skips", "resolution:", "lod:", "real_score", "r1:"):
        assert hidden not in out, hidden
    # ... and the numbers left out of the line are all still recorded.
    stats = json.loads(open(os.path.join(res.run_dir, "stats.jsonl")).readline())
    assert {"nonfinite_skips", "resolution", "lod", "r1"} <= set(stats)


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="this is the JAX run")
def test_public_callbacks_run_on_jax():
    """The user-fit test above (the Metrics callback and the schedule driver included) and the configs test,
    again in a process on Keras' JAX backend."""
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-n", "0", "-p", "no:cacheprovider", __file__,
                           "-k", "user_fit or configs"], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0 and "2 passed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]
