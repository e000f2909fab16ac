"""Augmentation in training (train.py --augment, docs/small_data.md): the options and their one-line refusals, the
step's augmentation (G's gradients through it, nothing added for `none`, the plain step at p = 0), ADA's p
heuristic against its formula, p through a snapshot and --resume, FreezeD, transfer onto other data (and
--resume-kimg), and tiny runs on TensorFlow, on two replicas (in a subprocess) and on JAX over two devices with
an MSG architecture."""
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import TINY_NET, xla_flags

from stylegan_tf import augment
from stylegan_tf.generate.curves import AUGMENTATION_PANEL, curve_panels
from stylegan_tf.networks import Discriminator, Generator
from stylegan_tf.training import options as options_lib
from stylegan_tf.training import training_loop
from stylegan_tf.training.model import StyleGAN
from stylegan_tf.training.options import OptionsError, TrainingOptions

REPO = pathlib.Path(__file__).resolve().parents[1]
N = 4


def _model(augment_kw=None, freeze_d=0):
    keras.utils.set_random_seed(1)
    G = Generator(resolution=8, num_channels=3, latent_size=8, dlatent_size=8, fmap_base=16, fmap_max=8,
                  mapping_fmaps=8, mapping_layers=1, style_mixing_prob=None)
    model = StyleGAN(G, Discriminator(resolution=8, num_channels=3, fmap_base=16, fmap_max=8))
    model.ema_update_now(0.0)
    if augment_kw:
        model.set_augment(**augment_kw)
    model.set_freeze_d(freeze_d)
    adam = lambda: keras.optimizers.Adam(1e-3, beta_1=0.0, beta_2=0.99, epsilon=1e-8)  # noqa: E731
    model.compile(g_optimizer=adam(), d_optimizer=adam(), loss="logistic", loss_kwargs={"gamma": 10.0})
    model.configure_phase(0, N)
    return model


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (N, 8, 8, 3)), None, rng.normal(size=(N, 8)), rng.normal(size=(N, 8))


# ------------------------------------------------------------------ options
@pytest.mark.parametrize("given, line", [
    (dict(augment="ada", augpipe="bgcx"), "--augpipe 'bgcx' is unknown"),
    (dict(augment="ada", target=1.0), "--target 1.0 is out of range"),
    (dict(augment="ada", target=0.0), "--target 0.0 is out of range"),
    (dict(augment="fixed", aug_p=1.5), "--aug-p 1.5 is out of range"),
    (dict(augment="ada", aug_p=-0.1), "--aug-p -0.1 is out of range"),
    (dict(augment="diffaugment", target=0.5), "--target: ADA's option(s), not used by --augment diffaugment"),
    (dict(augment="none", augpipe="bgc"), "--augpipe: ADA's option(s), not used by --augment none"),
    (dict(augment="fixed"), "--augment fixed needs --aug-p"),
    (dict(augment="fixed", aug_p=0.2, ada_kimg=100.0), "--ada-kimg: adjust p"),
    (dict(augment="ada", diffaugment="color"), "--diffaugment is DiffAugment's policy"),
    (dict(augment="diffaugment", diffaugment="colour"), "--diffaugment 'colour': unknown policy"),
    (dict(augment="adaptive"), "--augment 'adaptive' is unknown"),
    (dict(augment="ada", ada_interval=0), "--ada-interval 0 is out of range"),
    (dict(arch="dcgan", freeze_d=1), "--freeze-d freezes blocks of StyleGAN's progressive discriminator"),
])
def test_bad_augment_options_one_line_each(given, line):
    errs = options_lib.validate(TrainingOptions.for_arch(given.pop("arch", "stylegan"), **given))
    assert len(errs) == 1 and errs[0].startswith(line) and "\n" not in errs[0], errs


def test_run_name_and_fingerprint_name_the_augmentation(tmp_path):
    plain = TrainingOptions()
    assert options_lib.run_description(TrainingOptions(augment="ada"), "faces", 32).endswith("-ada-bgc")
    assert "-fixed0.3-bgcf-freezed2" in options_lib.run_description(
        TrainingOptions(augment="fixed", augpipe="bgcf", aug_p=0.3, freeze_d=2), "faces", 32)
    assert options_lib.run_description(TrainingOptions(augment="diffaugment"), "faces", 32).endswith(
        "-diffaug-color-translation-cutout")
    # Unset, the new options leave an existing run's fingerprint as it was (--resume auto still finds it).
    before = {k: getattr(plain, k) for k in options_lib.FINGERPRINT_KEYS}
    assert options_lib.fingerprint(plain, str(tmp_path)) == options_lib.fingerprint(
        TrainingOptions(**before), str(tmp_path))
    assert options_lib.fingerprint(TrainingOptions(augment="ada"), str(tmp_path)) != options_lib.fingerprint(
        plain, str(tmp_path))
    assert options_lib.augment_settings(TrainingOptions(augment="ada", aug_p=0.2)) == dict(
        mode="ada", augpipe="bgc", target=0.6, ada_kimg=500.0, ada_interval=4, p=0.2)


def test_r1_interval_follows_the_loss_registry():
    """--r1-interval is refused by the registry's `lazy_r1` (not by the loss's name), and the line names the
    losses that take it: a registered loss with lazy R1 takes it."""
    from stylegan_tf.training import loss as loss_lib
    loss_lib.register_loss("lazy-test", loss_lib.g_logistic_nonsaturating, loss_lib.d_logistic_r1, stats=("r1",),
                           lazy_r1=True)
    try:
        assert not options_lib.validate(TrainingOptions(loss="lazy-test", r1_interval=4))
        errs = options_lib.validate(TrainingOptions(loss="hinge", r1_interval=4))
        assert errs == ["--r1-interval applies to the R1 penalty of --loss logistic or lazy-test, not --loss hinge"]
    finally:
        del loss_lib.LOSSES["lazy-test"]


def test_curves_draw_p_and_r_t():
    """generate.py curves: p and r_t in a panel of their own, p drawn even while it stays 0."""
    stats = [{"kimg": 0.0, "aug_p": 0.0, "ada_rt": 0.5, "G_loss": 1.0},
             {"kimg": 4.0, "aug_p": 0.0, "ada_rt": 0.75, "G_loss": 0.5}]
    panels = dict(curve_panels(stats, {}))
    assert panels[AUGMENTATION_PANEL] == {"ada_rt": ([0.0, 4.0], [0.5, 0.75]), "aug_p": ([0.0, 4.0], [0.0, 0.0])}


# ------------------------------------------------------------------ the step
@pytest.fixture(scope="module")
def plain_out():
    """One step of a model never told about augmentation (traced once for the tests below)."""
    return _model().deterministic_step(*_batch())


@pytest.fixture(scope="module")
def ada_model():
    """An --augment ada model (interval 2, ada_kimg 1) traced once; `_restart` puts it back to its first state."""
    model = _model(dict(mode="ada", target=0.6, ada_kimg=1.0, ada_interval=2))
    model.initial = [v.numpy() for v in _state(model)]
    return model


def _state(model):
    return (model.G.weights + model.D.weights + model.Gs.weights + model.g_optimizer.variables +
            model.d_optimizer.variables + [model.aug_p, model.ada_signs])


def _restart(model, p, bias=None):
    """The model's initial weights and optimizer state, p = `p`, no pending signs (same trace: p is a variable)."""
    for v, value in zip(_state(model), model.initial):
        v.assign(value)
    model.aug_p.assign(p)
    if bias is not None:
        _set_final_bias(model, bias)
    return model


def test_none_adds_no_variable_tracker_or_op(plain_out):
    """--augment none: the original step. Its numbers are tests/test_official_train_step.py's (unchanged); here:
    no augmentation variable or tracker exists and the step's outputs equal a model never told about it."""
    none = _model(dict(mode="none"))
    assert none.aug_p is None and "aug_p" not in none._trackers and "aug_p" not in none.get_config().get(
        "augment", {})
    b = none.deterministic_step(*_batch())
    assert plain_out["D_loss"] == b["D_loss"]
    assert all(np.array_equal(x, y) for x, y in zip(plain_out["G_grads"], b["G_grads"]))


def _close_to(ours, want):
    # Scaled to each array's magnitude: the two steps are different graphs (the augmentation's branch).
    return all(np.allclose(a, b, rtol=0, atol=1e-5 * max(1e-3, float(np.abs(b).max()))) for a, b in zip(ours, want))


def test_p0_step_is_the_plain_step(plain_out, ada_model):
    """At p = 0 D sees the images as they are: the ADA step's losses and both gradients are the plain step's."""
    out = _restart(ada_model, 0.0).deterministic_step(*_batch(), step=0)
    assert out["aug_p"] == 0 and abs(out["D_loss"] - plain_out["D_loss"]) <= 1e-5 * abs(plain_out["D_loss"])
    assert _close_to(out["D_grads"], plain_out["D_grads"]) and _close_to(out["G_grads"], plain_out["G_grads"])


def test_generator_gradients_flow_through_the_augmentation(plain_out, ada_model):
    """p = 1 with ADA's bgc pipe: D sees other images than without (its loss differs), and G's gradients, taken
    through the augmentation of the fakes, are finite and nonzero in every G layer used."""
    out = _restart(ada_model, 1.0).deterministic_step(*_batch(), step=0)
    assert out["aug_p"] == 1 and abs(out["D_loss"] - plain_out["D_loss"]) > 1e-3 * abs(plain_out["D_loss"])
    grads = [g for g in out["G_grads"] if g.size]
    assert all(np.isfinite(g).all() for g in grads)
    assert sum(float(np.abs(g).sum()) > 0 for g in grads) >= len(grads) - 2   # the unused 4x4 ToRGB's may be 0


def _set_final_bias(model, value):
    bias = model.D.final_block.dense1_bias.trainable_variables[0]
    bias.assign(np.full(bias.shape, value, np.float32))


@pytest.mark.parametrize("bias, p0", [(50.0, 0.5), (-50.0, 0.005)])
def test_p_follows_ada_formula(ada_model, bias, p0):
    """A D that scores every real positive (a final bias of +50) gives r_t = 1 > target: after `ada_interval` = 2
    minibatches p rises by N * interval / (ada_kimg * 1000), not before; negative scores lower it, clipped at 0."""
    model = _restart(ada_model, p0, bias)
    first = model.deterministic_step(*_batch(), step=0)
    assert first["aug_p"] == np.float32(p0) and first["ada_rt"] == np.sign(bias)
    assert float(model.aug_p.numpy()) == np.float32(p0) and float(model.ada_signs.numpy()) == np.sign(bias)
    model.deterministic_step(*_batch(1), step=1)
    expected = augment.adjust_p(p0, np.sign(bias), 0.6, N, 2, 1.0)
    assert expected == (p0 + 0.008 if bias > 0 else 0.0)
    assert float(model.aug_p.numpy()) == pytest.approx(expected, abs=1e-7) and float(model.ada_signs.numpy()) == 0


def test_freeze_d_keeps_those_weights():
    model = _model(freeze_d=1)
    frozen = [v.numpy().copy() for v in model.D.frozen_variables(1)]
    rest = [v.numpy().copy() for v in model.D.final_block.trainable_variables]
    model.deterministic_step(*_batch())
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(frozen, model.D.frozen_variables(1)))
    assert not any(np.array_equal(a, v.numpy()) for a, v in zip(rest, model.D.final_block.trainable_variables))
    assert len(model.D.frozen_variables(1)) == 6          # 8x8's two convs and FromRGB_lod0, weights and biases
    with pytest.raises(ValueError, match="--freeze-d 2: D has 1 blocks above 4x4"):
        model.D.frozen_variables(2)


# ------------------------------------------------------------------ runs
@pytest.fixture(scope="module")
def dataset(demo_dataset):
    return demo_dataset(resolution=16, count=48)


def _opts(dataset, outdir, **kw):
    base = dict(data=dataset, outdir=str(outdir), resolution=8, lod_initial_resolution=8, minibatch=N,
                lrate=0.002, tick_kimg=0.016, progress=False, snap_ticks=1, seed=5, augment="ada", aug_p=0.5,
                ada_kimg=1.0, ada_interval=1, **TINY_NET)
    base.update(kw)
    return TrainingOptions(**base)


def test_ada_run_logs_p_and_resumes_it_exactly(dataset, demo_dataset, tmp_path):
    """A tiny --augment ada run on TensorFlow: p and r_t in stats.jsonl; a run stopped at a snapshot and resumed
    ends with the p (and G) of the uninterrupted run; the snapshot's network resumed onto other data of the same
    resolution starts a new schedule (at --resume-kimg) with a note and continues its p; onto its own data with
    --resume-kimg it is refused."""
    full = training_loop(_opts(dataset, tmp_path / "a", total_kimg=0.032))
    first = training_loop(_opts(dataset, tmp_path / "b", total_kimg=0.016))
    resumed = training_loop(_opts(dataset, tmp_path / "b", total_kimg=0.032, resume="auto"))
    assert resumed.run_dir == first.run_dir and first.run_dir.endswith("-ada-bgc") and resumed.state.nimg == 32
    p_full, p_first = float(full.model.aug_p.numpy()), float(first.model.aug_p.numpy())
    assert p_first != 0.5 and p_full != p_first          # ada_kimg 1: p moves 0.004 per minibatch
    assert float(resumed.model.aug_p.numpy()) == p_full
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(full.model.G.weights, resumed.model.G.weights))
    stats = [json.loads(line) for line in open(os.path.join(full.run_dir, "stats.jsonl"))]
    assert all(0 <= row["aug_p"] <= 1 and -1 <= row["ada_rt"] <= 1 for row in stats) and len(stats) == 2

    # Onto other data a new schedule starts, at --resume-kimg when given, as for an official .pkl.
    other = demo_dataset(resolution=8, count=16)
    moved = training_loop(_opts(other, tmp_path / "c", total_kimg=0.024, resume=first.snapshots[-1],
                                resume_kimg=0.008))
    log = open(os.path.join(moved.run_dir, "log.txt")).read()
    assert "transfer learning: the schedule starts at kimg 0.008)" in log and moved.state.nimg == 24
    # p went on from the snapshot's (four minibatches more of the heuristic: 0.004 each).
    assert abs(float(moved.model.aug_p.numpy()) - p_first) <= 0.0161
    # On its own data the snapshot continues its run, whose kimg it knows: --resume-kimg is refused, one line.
    with pytest.raises(OptionsError) as err:
        training_loop(_opts(dataset, tmp_path / "d", total_kimg=0.032, resume=first.snapshots[-1],
                            resume_kimg=0.008))
    assert str(err.value).startswith("--resume-kimg: --resume ") and "\n" not in str(err.value)
    assert "continues its own run on this data at kimg 0.016" in str(err.value)
    assert not (tmp_path / "d").exists() or not os.listdir(tmp_path / "d")


_MIRRORED = """
import json, os, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from stylegan_tf.training import TrainingOptions, training_loop

# --gpus 2 through the training loop: MirroredStrategy over the two CPU devices.
res = training_loop(TrainingOptions(**json.loads(sys.argv[1])))
rows = [json.loads(line) for line in open(res.run_dir + "/stats.jsonl")]
print("RESULT " + json.dumps(dict(rows=rows, nimg=res.state.nimg,
                                  replicas=res.model.distribute_strategy.num_replicas_in_sync)))
"""


def _subprocess(script, args, env, timeout=600):
    """RESULT's json of `script` run in a fresh process (the device setup must precede TensorFlow's start)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO), **env)
    proc = subprocess.run([sys.executable, "-c", script, *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0 and "RESULT " in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.split("RESULT ", 1)[1].splitlines()[0])


@pytest.mark.slow   # a training run under MirroredStrategy in a subprocess
def test_ada_trains_on_two_replicas(dataset, tmp_path):
    """--augment ada --gpus 2 on TensorFlow (MirroredStrategy over two CPU devices): the run trains and p moves by
    the global minibatch (8 here, not a replica's 4)."""
    # TensorFlow's own thread layout: inter-op's two threads would both wait in the replicas' all-reduce.
    opts = _opts(dataset, tmp_path / "r", minibatch=8, gpus=2, total_kimg=0.016, tick_kimg=0.008, snap_ticks=100,
                 cpu_parallelism="intra-op")
    r = _subprocess(_MIRRORED, [json.dumps(opts.to_dict())], {})
    # One group of minibatch_repeats = 4 steps of 8; the tick logs the mean p the steps used. Each step moves p by
    # the global batch: 8 * interval / (ada_kimg * 1000) = 0.008 (a replica's 4 would give 0.004 and a mean of 0.494).
    assert r["replicas"] == 2 and r["nimg"] == 32 and all(np.isfinite(row["D_loss"]) for row in r["rows"])
    assert r["rows"][-1]["aug_p"] == pytest.approx(0.5 - 0.008 * (0 + 1 + 2 + 3) / 4, abs=1e-6)


_JAX_RUN = """
import json, sys
import numpy as np
from stylegan_tf.training import TrainingOptions, training_loop
out = {}
for gpus in (2, 1):
    opts = json.loads(sys.argv[1])
    res = training_loop(TrainingOptions(**dict(opts, gpus=gpus, outdir=f"{opts['outdir']}-{gpus}")))
    rows = [json.loads(line) for line in open(res.run_dir + "/stats.jsonl")]
    out[gpus] = {"p": float(np.asarray(res.model.aug_p.value)), "rows": rows, "nimg": res.state.nimg,
                 "replicas": len(res.model.G.trainable_variables[0].value.sharding.device_set)}
print("RESULT " + json.dumps(out))
"""


@pytest.mark.slow   # ~80 s: two JAX training runs in a subprocess
def test_ada_trains_msg_on_jax_over_two_devices(dataset, tmp_path):
    """--augment ada on the JAX backend with an MSG architecture (every pyramid level augmented alike) and --gpus 2
    (DataParallel over two CPU devices): the run trains, p moves by ADA's steps of the global minibatch and is
    logged, and it moves as on one device (the jitted step sees the global batch: r_t is its mean)."""
    opts = _opts(dataset, tmp_path / "r", total_kimg=0.016, arch="msg-stylegan", resolution=8).to_dict()
    r = _subprocess(_JAX_RUN, [json.dumps(opts)], dict(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
                                                       XLA_FLAGS=xla_flags(2)))
    two, one = r["2"], r["1"]
    assert two["replicas"] == 2 and two["nimg"] == 16
    steps = (two["p"] - 0.5) / 0.004          # four minibatches of 4, each moving p by +-0.004
    assert abs(steps) <= 4 and abs(steps - round(steps)) < 1e-3
    assert abs(two["rows"][0]["aug_p"] - 0.5) <= 0.0161 and np.isfinite(two["rows"][0]["D_loss"])
    assert abs(two["p"] - one["p"]) < 1e-6 and two["rows"][0]["ada_rt"] == pytest.approx(one["rows"][0]["ada_rt"])


def test_freeze_d_beyond_the_blocks_is_refused(dataset, tmp_path):
    with pytest.raises(OptionsError, match="--freeze-d 2: D has 1 blocks above 4x4 at 8x8: give 0 to 1"):
        training_loop(_opts(dataset, tmp_path, total_kimg=0.016, freeze_d=2))
    assert not os.listdir(tmp_path)
