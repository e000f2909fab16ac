"""The public Keras API: the `fit` datasets and `train(**options)` (the public callbacks: tests/test_callbacks.py)."""
import csv
import os

import pytest

keras = pytest.importorskip("keras")
if keras.backend.backend() != "tensorflow":
    pytest.skip("the user-level fit API is exercised on the TensorFlow backend", allow_module_level=True)

from stylegan_tf import callbacks  # noqa: E402
from stylegan_tf.training import add_steps, fit_dataset, resolve_options, train  # noqa: E402


def test_fit_dataset_gives_what_train_step_takes(demo_dataset):
    ds = fit_dataset(demo_dataset(16, 64), resolution=8, batch_size=4, first_step=7)
    images, labels, step = next(iter(ds))
    assert images.shape == (4, 8, 8, 3) and labels.shape == (4, 0)
    assert step.numpy().tolist() == [7] * 4
    assert -1.0 <= float(images.numpy().min()) and float(images.numpy().max()) <= 1.0
    with pytest.raises(ValueError, match="static size"):
        add_steps(fit_dataset(demo_dataset(16, 64), batch_size=4).unbatch().batch(4))


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
