"""The public Keras API: StyleGAN in a user's own `fit` with the public callbacks, and `train(**options)`."""
import csv
import json
import os

import numpy as np
import pytest

keras = pytest.importorskip("keras")
if keras.backend.backend() != "tensorflow":
    pytest.skip("the user-level fit API is exercised on the TensorFlow backend", allow_module_level=True)

import stylegan_tf  # noqa: E402
from stylegan_tf import callbacks  # noqa: E402
from stylegan_tf.networks import Discriminator, Generator  # noqa: E402
from stylegan_tf.training import StyleGAN, TrainingOptions, add_steps, fit_dataset, resolve_options, train  # noqa: E402

TINY = dict(resolution=16, num_channels=3, fmap_base=64, fmap_max=16)
LATENT = dict(latent_size=16, dlatent_size=16, mapping_layers=2, mapping_fmaps=16)


def _adam():
    return keras.optimizers.Adam(1e-3, beta_1=0.0, beta_2=0.99, epsilon=1e-8)


def _model(**kw):
    model = StyleGAN(Generator(**TINY, **LATENT), Discriminator(**TINY), **kw)
    model.compile(g_optimizer=_adam(), d_optimizer=_adam(), loss="logistic", loss_kwargs={"gamma": 10.0})
    return model


def test_fit_dataset_gives_what_train_step_takes(demo_dataset):
    ds = fit_dataset(demo_dataset(16, 64), resolution=8, batch_size=4, first_step=7)
    images, labels, step = next(iter(ds))
    assert images.shape == (4, 8, 8, 3) and labels.shape == (4, 0)
    assert step.numpy().tolist() == [7] * 4
    assert -1.0 <= float(images.numpy().min()) and float(images.numpy().max()) <= 1.0
    with pytest.raises(ValueError, match="static size"):
        add_steps(fit_dataset(demo_dataset(16, 64), batch_size=4).unbatch().batch(4))


def test_user_fit_with_public_and_keras_callbacks(demo_dataset, tmp_path):
    """One `fit`: progressive growing 8x8 -> 16x16, Keras' own callbacks, ours, and a custom one; then save and
    load `.keras`, continue `fit`, and generate."""
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
    assert history.history["lod"][-1] == 0.0 and model.level == 0 and float(model.G.lod.numpy()) == 0.0
    assert all(np.isfinite(history.history["D_loss"])) and all(np.isfinite(history.history["G_loss"]))
    assert model.training_state["nimg"] == 256
    # Gs is an EMA of G (the fit configured the minibatch), not a copy.
    assert model.gs_beta > 0
    gaps = [float(np.abs(a.numpy() - b.numpy()).max()) for a, b in zip(model.G.weights, model.Gs.weights)
            if a.trainable]
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
    again = keras.saving.load_model(path)
    assert isinstance(again, StyleGAN) and again.training_state["nimg"] == 256
    again.compile()
    more = again.fit(fit_dataset(data, batch_size=8, first_step=32), epochs=1, steps_per_epoch=4, verbose=0,
                     callbacks=[callbacks.ProgressiveGrowing(lod_training_kimg=0.064, lod_transition_kimg=0.064)])
    assert more.history["kimg"][-1] == pytest.approx(0.288) and more.history["resolution"][-1] == 16.0


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


def test_metrics_callback_logs_and_writes_jsonl(demo_dataset, tmp_path):
    data = demo_dataset(16, 64)
    model = _model()
    model.fit(fit_dataset(data, batch_size=8), epochs=1, steps_per_epoch=2, verbose=0,
              callbacks=[callbacks.Metrics("swd16k", data=data, directory=tmp_path, num_images=64, batch_size=32)])
    logs = model.history.history
    keys = [k for k in logs if k.startswith("swd")]
    assert keys and all(np.isfinite(logs[k][-1]) for k in keys)
    assert list(tmp_path.glob("metric-swd16k*.jsonl"))


def test_train_matches_the_cli_defaults_and_returns_the_run_dir(demo_dataset, tmp_path):
    import train as train_cli
    data = demo_dataset(16, 64)
    given = dict(data=data, resolution=8, total_kimg=0.064, minibatch=8, tick_kimg=0.016, fmap_base=32,
                 fmap_max=16, latent_size=16, dlatent_size=16, mapping_layers=2, mapping_fmaps=16,
                 outdir=str(tmp_path), progress=False)
    argv = ["--data", data, "--resolution", "8", "--total-kimg", "0.064", "--minibatch", "8", "--tick-kimg",
            "0.016", "--fmap-base", "32", "--fmap-max", "16", "--latent-size", "16", "--dlatent-size", "16",
            "--mapping-layers", "2", "--mapping-fmaps", "16", "--outdir", str(tmp_path), "--no-progress"]
    assert resolve_options(**given) == train_cli.build_options(train_cli.parse_args(argv))
    assert resolve_options(metrics="fid50k, kid50k").metrics == ["fid50k", "kid50k"]
    assert resolve_options(arch="dcgan", data=data).adam_beta1 == 0.5     # the arch's defaults, as train.py
    with pytest.raises(ValueError, match="unknown training option"):
        resolve_options(epochs=3)
    assert "Schedule" in train(dry_run=True, **given)
    logger = keras.callbacks.CSVLogger(str(tmp_path / "ticks.csv"))
    run_dir = train(callbacks=[logger], **given)
    assert os.path.dirname(run_dir) == str(tmp_path)
    assert callbacks.Snapshots.latest(run_dir) and os.path.exists(os.path.join(run_dir, "fakes000000.png"))
    with open(tmp_path / "ticks.csv") as f:
        assert len(list(csv.DictReader(f))) == 2
