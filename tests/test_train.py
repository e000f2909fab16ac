"""Training through `fit`: every loss, EMA, non-finite skip, progressive growing with resets and user callbacks,
exact resume, atomic snapshots, MirroredStrategy, train.py. Tiny networks (16 feature maps, <= 16x16)."""
import gc
import json
import os
import subprocess
import sys
import textwrap
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY_NET
from stylegan_tf.training import StyleGAN, TrainingOptions, training_loop
from stylegan_tf.training import snapshot as snap

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def dataset(demo_dataset):
    return demo_dataset(resolution=16, count=48)


def tiny_model(loss="logistic", res=8, seed=3, g_extra=None, d_extra=None, loss_kwargs=None, sgd=False):
    from stylegan_tf.networks import Discriminator, Generator
    keras.utils.set_random_seed(seed)
    g_kw = dict(resolution=res, num_channels=3, **TINY_NET, **(g_extra or {}))
    d_kw = dict(resolution=res, num_channels=3, fmap_base=64, fmap_max=16, **(d_extra or {}))
    m = StyleGAN(Generator(**g_kw), Discriminator(**d_kw), Generator(**g_kw), seed=seed)
    m.ema_update_now(0.0)
    adam = lambda: (keras.optimizers.SGD(1e-3) if sgd else  # noqa: E731
                    keras.optimizers.Adam(0.002, beta_1=0.0, beta_2=0.99, epsilon=1e-8))
    m.compile(g_optimizer=adam(), d_optimizer=adam(), loss=loss, loss_kwargs=loss_kwargs or {})
    return m


def batches(dataset, res, mb, start_step=0, poison=False):
    from stylegan_tf.data import open_dataset
    ds = open_dataset(dataset).make_tf_dataset(res, batch_size=mb, seed=0)
    steps = tf.data.Dataset.range(start_step, 1 << 40)
    bad = np.float32(np.nan) if poison else np.float32(0)
    return tf.data.Dataset.zip((ds, steps)).map(lambda b, s: (b[0] + bad, b[1], tf.fill([mb], s)))


class Recorder(keras.callbacks.Callback):
    """A user's callback: records what Keras hands it, and the weights around each batch."""

    def __init__(self, weights=False):
        super().__init__()
        self.weights = weights
        self.events, self.epoch_logs, self.batch_logs, self.iterations_at_begin, self.snaps = [], [], [], [], []

    def on_train_begin(self, logs=None):
        self.events.append("train_begin")

    def on_train_end(self, logs=None):
        self.events.append("train_end")

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_logs.append((epoch, dict(logs)))

    def on_train_batch_begin(self, batch, logs=None):
        self.iterations_at_begin.append((int(self.model.g_optimizer.iterations.numpy()),
                                         int(self.model.d_optimizer.iterations.numpy()),
                                         float(self.model.G.lod.numpy())))
        if self.weights:
            self.before = ([w.numpy() for w in self.model.G.weights], [w.numpy() for w in self.model.Gs.weights],
                           [w.numpy() for w in self.model.D.weights])

    def on_train_batch_end(self, batch, logs=None):
        self.batch_logs.append(dict(logs))
        if self.weights:
            self.snaps.append((self.before, ([w.numpy() for w in self.model.G.weights],
                                             [w.numpy() for w in self.model.Gs.weights],
                                             [w.numpy() for w in self.model.D.weights])))


# Each loss costs one trace of train_step (~10-25 s on a busy 2-core CPU); the math of all five is checked
# by tests/test_loss.py, so only the two penalised families run in the default suite.
@pytest.mark.parametrize("loss", ["logistic", "wgan-gp", pytest.param("wgan", marks=pytest.mark.slow),
                                  pytest.param("wgan-div", marks=pytest.mark.slow),
                                  pytest.param("hinge", marks=pytest.mark.slow)])
def test_fit_steps_for_each_loss(dataset, loss):
    m = tiny_model(loss)
    m.configure_phase(level=0, global_batch=4)
    rec = Recorder(weights=loss == "logistic")
    hist = m.fit(batches(dataset, 8, 4), epochs=1, steps_per_epoch=2, verbose=0, shuffle=False, callbacks=[rec])
    for key in ("G_loss", "D_loss", "real_score", "fake_score"):
        assert np.isfinite(hist.history[key][-1]), key
    assert hist.history["nonfinite_skips"][-1] == 0
    assert int(m.g_optimizer.iterations.numpy()) == 2 and int(m.d_optimizer.iterations.numpy()) == 2
    if loss == "logistic":
        assert hist.history["r1"][-1] > 0
        # EMA, taken before the G step as the original's: Gs = G + (Gs_before - G) * beta with G as it was
        # before the batch (the D step does not change its trainables), beta = 0.5 ** (minibatch / 10000);
        # non-trainables copied at that point, so Gs' dlatent_avg is G's from before the batch (the D and G
        # steps then update G's). tests/test_official_train_step.py checks this against the official code.
        beta = 0.5 ** (4 / 10000.0)
        (g0, gs0, d0), (g1, gs1, d1) = rec.snaps[-1]
        trainable = [w.trainable for w in m.G.weights]
        changed = 0
        for tr, a0, b0, a1, b1 in zip(trainable, g0, gs0, g1, gs1):
            if tr:
                np.testing.assert_allclose(b1, a0 + (b0 - a0) * beta, rtol=1e-5, atol=1e-7)
                changed += int(not np.array_equal(a0, a1))
            else:
                np.testing.assert_array_equal(b1, a0)
        assert changed > 0 and any(not np.array_equal(a, b) for a, b in zip(d0, d1))
        assert not np.array_equal(m.G.dlatent_avg.numpy(), m.Gs.dlatent_avg.numpy())  # G's moved on since
        assert np.any(m.Gs.dlatent_avg.numpy() != 0)      # updated in G's training call, then copied

        # Non-finite gradients skip the update (same trace, NaN reals make every D gradient NaN): D and its
        # Adam state stay as they were, G (whose gradients stay finite) trains.
        d_before = [w.numpy() for w in m.D.trainable_weights]
        g_before = [w.numpy() for w in m.G.trainable_weights]
        hist = m.fit(batches(dataset, 8, 4, start_step=2, poison=True), epochs=1, steps_per_epoch=1, verbose=0,
                     shuffle=False)
        for a, b in zip(d_before, m.D.trainable_weights):
            np.testing.assert_array_equal(a, b.numpy())
        assert any(not np.array_equal(a, b.numpy()) for a, b in zip(g_before, m.G.trainable_weights))
        assert int(m.d_optimizer.iterations.numpy()) == 2 and int(m.g_optimizer.iterations.numpy()) == 3
        assert hist.history["nonfinite_skips"][-1] == 1


def small_opts(dataset, outdir, **kw):
    base = dict(data=dataset, outdir=str(outdir), minibatch=4, lrate=0.002, tick_kimg=0.016, progress=False,
                snap_ticks=100, seed=5, **TINY_NET)
    base.update(kw)
    return TrainingOptions(**base)


def _shared_layers(small, big):
    """(small-net layer, big-net layer) pairs that compute the same thing when `small` runs at level 0 and `big`
    (twice the resolution) at level 1: everything of `small`, the big net's top block left out."""
    ss, bs = small.G.synthesis, big.G.synthesis
    pairs = [(small.G.mapping, big.G.mapping), (ss.input_layer, bs.input_layer)]
    pairs += list(zip(ss.epilogues, bs.epilogues)) + list(zip(ss.convs, bs.convs)) + list(zip(ss.torgbs, bs.torgbs))
    pairs += list(zip(small.D.fromrgbs, big.D.fromrgbs[1:])) + list(zip(small.D.blocks, big.D.blocks[1:]))
    return pairs + [(small.D.final_block, big.D.final_block)]


def test_level0_trains_like_level1_of_a_bigger_net(dataset):
    # The top level has code paths of its own (no fade-from-above, R1 unscaled): with the same weights, data
    # and seeds, training an 8x8 net at level 0 must equal training a 16x16 net at level 1, step for step.
    small, big = tiny_model(res=8, seed=3), tiny_model(res=16, seed=4)
    big.seed = small.seed
    for s, b in _shared_layers(small, big):
        for vs, vb in zip(s.weights, b.weights):
            vb.assign(vs)
    for vs, vb in zip(small.G.synthesis.noise_buffers, big.G.synthesis.noise_buffers):
        vb.assign(vs)
    small.configure_phase(level=0, global_batch=4)
    big.configure_phase(level=1, global_batch=4)
    big.r1_scale = small.r1_scale    # the one intended difference (gamma / 4**level), checked in test_loss
    for m, lod in ((small, 0.0), (big, 1.0)):
        for net in (m.G, m.D, m.Gs):
            net.lod.assign(lod)
        m.ema_update_now(0.0)
    data = list(batches(dataset, 8, 4).take(6))
    fixed = tf.data.Dataset.from_tensor_slices(tuple(tf.stack([b[i] for b in data]) for i in range(3)))
    for m in (small, big):
        m.fit(fixed, epochs=1, steps_per_epoch=6, verbose=0, shuffle=False)
    moved = 0.0
    for s, b in _shared_layers(small, big):
        for vs, vb in zip(s.weights, b.weights):
            np.testing.assert_allclose(vs.numpy(), vb.numpy(), rtol=1e-4, atol=1e-5, err_msg=vs.path)
    for vs, v0 in zip(small.G.trainable_weights, tiny_model(res=8, seed=3).G.trainable_weights):
        moved = max(moved, float(np.max(np.abs(vs.numpy() - v0.numpy()))))
    assert moved > 1e-3     # it trained


def test_growing_through_fit_with_user_callbacks(dataset, tmp_path):
    rec = Recorder()
    csv = tmp_path / "log.csv"
    # Groups of 4 minibatches of 4 images: 32 images at 8x8 (lod 1), 16 fading (lod 0.5), 16 at 16x16 (lod 0).
    opts = small_opts(dataset, tmp_path / "results", resolution=16, lod_initial_resolution=8,
                      lod_training_kimg=0.016, lod_transition_kimg=0.032, total_kimg=0.064, mirror=True)
    res = training_loop(opts, callbacks=[rec, keras.callbacks.CSVLogger(str(csv))])
    assert res.stopped_by == "done" and res.state.nimg == 64 and res.state.tick == 4
    assert rec.events == ["train_begin", "train_end"]          # one run for the user's callbacks
    assert [lod for _, _, lod in rec.iterations_at_begin] == [1.0] * 8 + [0.5] * 4 + [0.0] * 4
    # Both Adam states (step counters too) restart whenever floor(lod) or ceil(lod) changes.
    assert [it[:2] for it in rec.iterations_at_begin] == [(i, i) for i in list(range(8)) + [0, 1, 2, 3] * 2]
    assert [e for e, _ in rec.epoch_logs] == [0, 1, 2, 3]
    for key in ("G_loss", "D_loss", "real_score", "fake_score", "r1", "kimg", "lod", "resolution", "img_per_sec"):
        assert key in rec.batch_logs[-1], key
    assert rec.batch_logs[-1]["resolution"] == 16.0 and rec.batch_logs[0]["resolution"] == 8.0
    assert len(csv.read_text().strip().splitlines()) == 1 + 4   # header + one row per tick, one file
    assert res.history.history["kimg"] == [0.016, 0.032, 0.048, 0.064]

    run = res.run_dir
    names = set(os.listdir(run))
    for name in ("training_options.json", "log.txt", "reals.png", "fakes000000.png", "stats.jsonl",
                 "network-snapshot-000000.keras"):
        assert name in names, name
    # TensorBoard's scalar op exists only with the tensorboard package; without it no events file is written.
    import importlib.util
    has_tb = importlib.util.find_spec("tensorboard") is not None
    assert any(n.startswith("events.out.tfevents") for n in names) == has_tb
    stats = [json.loads(line) for line in open(os.path.join(run, "stats.jsonl"))]
    assert [s["tick"] for s in stats] == [1, 2, 3, 4] and [s["resolution"] for s in stats] == [8, 8, 16, 16]
    for key in ("kimg", "lod", "minibatch", "G_loss", "D_loss", "sec_per_tick", "sec_per_kimg", "img_per_sec",
                "peak_mem_gb"):
        assert key in stats[-1], key
    assert "tick 4     kimg 0.1      lod 0.00  minibatch 4" in open(os.path.join(run, "log.txt")).read()
    with open(os.path.join(run, "training_options.json")) as f:
        assert json.load(f)["resolution"] == 16

    import stylegan_tf
    nets = stylegan_tf.load_network(os.path.join(run, "network-snapshot-000000.keras"))
    img = nets.Gs.run(np.random.RandomState(0).randn(2, 16).astype(np.float32))
    assert img.shape == (2, 16, 16, 3) and np.all(np.isfinite(img))


@pytest.mark.parametrize("mixed_precision", [False, True])
def test_gs_run_after_training_equals_the_reloaded_snapshot(dataset, tmp_path, mixed_precision):
    # The fakes grid compiles Gs.run at tick 0 with the grid's batch size. Every later call, of any batch size,
    # must run the graph a fresh process would build for the same weights: a graph specialised to the first
    # batch size rounded differently (a few float32 ulps; ~0.1 once bfloat16 amplified it).
    import stylegan_tf
    old_policy = keras.mixed_precision.global_policy().name
    res = training_loop(small_opts(dataset, tmp_path / "results", resolution=16, total_kimg=0.016,
                                   mixed_precision=mixed_precision))
    # The process-wide precision policy is the caller's again: networks built later are not silently bfloat16.
    assert keras.mixed_precision.global_policy().name == old_policy
    z = np.random.RandomState(1).randn(5, 16).astype(np.float32)
    here = res.model.Gs.run(z, noise_mode="const")
    # Our layers take their compute dtype from the policy in force when they are built, so the snapshot is
    # loaded under the policy it was trained with.
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if mixed_precision else old_policy)
    try:
        reloaded = stylegan_tf.load_network(res.snapshots[-1]).Gs.run(z, noise_mode="const")
    finally:
        keras.mixed_precision.set_global_policy(old_policy)
    np.testing.assert_allclose(here, reloaded, rtol=0, atol=1e-5)


def test_metrics_run_on_every_snapshot(dataset, tmp_path):
    # SWD needs no downloaded weights, so --metrics is exercised end to end here.
    opts = small_opts(dataset, tmp_path / "results", resolution=16, lod_initial_resolution=16, total_kimg=0.016,
                      metrics=["swd1k"])
    res = training_loop(opts)
    lines = open(os.path.join(res.run_dir, "metric-swd1k.jsonl")).read().splitlines()
    assert len(lines) == len(res.snapshots) == 1
    record = json.loads(lines[0])
    assert record["snapshot"] == "network-snapshot-000000.keras"
    assert "swd1k_16" in record["results"] and "swd1k_avg" in record["results"]
    assert all(np.isfinite(v) and v > 0 for v in record["results"].values())
    assert "swd1k: {" in open(os.path.join(res.run_dir, "log.txt")).read()


class _SignalAt(keras.callbacks.Callback):
    """Sends this process `sig` at the end of the given training batches (as `kill` would from outside)."""

    def __init__(self, sig, batches):
        super().__init__()
        self.sig, self.batches, self.seen = sig, set(batches), 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen in self.batches:
            os.kill(os.getpid(), self.sig)


def test_sigterm_stops_with_a_snapshot_and_a_second_one_aborts(dataset, tmp_path):
    import signal
    before = signal.getsignal(signal.SIGTERM)
    kw = dict(resolution=8, lod_initial_resolution=8, total_kimg=1.0)
    res = training_loop(small_opts(dataset, tmp_path / "a", **kw), callbacks=[_SignalAt(signal.SIGTERM, [2])])
    assert res.stopped_by == "interrupt" and 0 < res.state.nimg < 1000
    assert snap.list_snapshots(res.run_dir)[-1][1] == res.snapshots[-1]   # what was trained is kept
    assert signal.getsignal(signal.SIGTERM) is before                      # the handler is the caller's again
    with pytest.raises(KeyboardInterrupt):
        training_loop(small_opts(dataset, tmp_path / "b", **kw), callbacks=[_SignalAt(signal.SIGTERM, [1, 2])])
    assert signal.getsignal(signal.SIGTERM) is before


class _SwallowedSignalAt(_SignalAt):
    """Sends `sig` from inside a garbage-collector callback, as when Ctrl-C lands in JAX's: the KeyboardInterrupt
    raised there is swallowed by Python (recorded in `raised_in_gc` on its way out)."""

    def __init__(self, sig, batches):
        super().__init__(sig, batches)
        self.raised_in_gc = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen in self.batches:
            gc.callbacks.append(self._in_gc)
            gc.collect()

    def _in_gc(self, phase, info):
        gc.callbacks.remove(self._in_gc)
        try:
            os.kill(os.getpid(), self.sig)
            time.sleep(2)       # the handler runs here
        except KeyboardInterrupt:
            self.raised_in_gc.append(self.seen)
            raise


def test_a_second_signal_swallowed_by_a_gc_callback_still_aborts(dataset, tmp_path, monkeypatch):
    """The second SIGTERM's KeyboardInterrupt lands in a garbage-collector callback, which drops it: the run
    still aborts without a snapshot, at the next group of minibatches, and Python's "Exception ignored" report
    of it is not shown."""
    import signal
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    swallowed = _SwallowedSignalAt(signal.SIGTERM, [2])
    opts = small_opts(dataset, tmp_path, resolution=8, lod_initial_resolution=8, total_kimg=1.0)
    with pytest.raises(KeyboardInterrupt):
        training_loop(opts, callbacks=[_SignalAt(signal.SIGTERM, [1]), swallowed])
    assert swallowed.raised_in_gc == [2] and unraisable == []
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert snap.list_snapshots(str(run_dir)) == []          # aborted: the first signal's snapshot was not written
    assert sys.unraisablehook == unraisable.append         # the caller's hook is back


def _all_state(model):
    out = [w.numpy() for net in (model.G, model.D, model.Gs) for w in net.weights]
    out += [v.numpy() for opt in (model.g_optimizer, model.d_optimizer) for v in opt.variables]
    return out


def test_resume_is_exact(dataset, tmp_path):
    kw = dict(resolution=8, lod_initial_resolution=8, mirror=True)
    full = training_loop(small_opts(dataset, tmp_path / "a", total_kimg=0.032, **kw))
    first = training_loop(small_opts(dataset, tmp_path / "b", total_kimg=0.016, **kw))
    assert first.state.nimg == 16 and first.snapshots
    resumed = training_loop(small_opts(dataset, tmp_path / "b", total_kimg=0.032, resume="auto", **kw))
    assert resumed.run_dir == first.run_dir                      # --resume auto continued the same run
    assert resumed.state.nimg == 32 and resumed.state.step == 8 and resumed.state.tick == 2
    a, b = _all_state(full.model), _all_state(resumed.model)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    # and the networks did train in between
    assert any(not np.allclose(x, y) for x, y in zip(_all_state(first.model), a))


def test_killed_snapshot_write_leaves_nothing_and_the_next_run_cleans_up(tmp_path):
    run = tmp_path / "00000-run"
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {REPO!r})
        import keras, numpy as np
        from stylegan_tf.training import snapshot as snap
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        m.layers[0].set_weights([np.full((4, 3), float(sys.argv[1]), np.float32), np.zeros(3, np.float32)])
        if sys.argv[1] == "2":
            # die the moment the new file is complete but not yet renamed into place
            os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
        snap.save_snapshot(m, snap.new_snapshot_path({str(run)!r}, int(sys.argv[1]) * 1000))
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    subprocess.run([sys.executable, "-c", script, "1"], check=True, env=env)
    first = run / snap.snapshot_name(1)
    before = first.read_bytes()
    proc = subprocess.run([sys.executable, "-c", script, "2"], env=env)
    assert proc.returncode == -9
    assert first.read_bytes() == before and keras.saving.load_model(str(first)).layers[0].get_weights()[0][0, 0] == 1
    assert snap.list_snapshots(str(run)) == [(1, str(first))]   # the leftover is not a snapshot
    leftovers = [n for n in os.listdir(run) if n.startswith(".")]
    assert len(leftovers) == 1
    # The next training run under this --outdir removes the dead writer's temp (and nothing else).
    (run / ".notes").write_text("mine")
    from stylegan_tf.training.rundir import sweep_stale_temps
    assert [os.path.basename(p) for p in sweep_stale_temps(str(tmp_path))] == leftovers
    assert sorted(os.listdir(run)) == [".notes", snap.snapshot_name(1)]


def test_snapshots_are_never_replaced(tmp_path):
    # A resumed run with a longer --total-kimg reaches a whole kimg an earlier snapshot is named after.
    run = str(tmp_path)
    (tmp_path / snap.snapshot_name(6)).write_bytes(b"old")
    p = snap.new_snapshot_path(run, 6500)
    assert os.path.basename(p) == "network-snapshot-000006.500.keras"
    open(p, "wb").close()
    assert os.path.basename(snap.new_snapshot_path(run, 6500)) == "network-snapshot-000006.500-2.keras"
    assert os.path.basename(snap.new_snapshot_path(run, 7000)) == snap.snapshot_name(7)
    assert [k for k, _ in snap.list_snapshots(run)] == [6, 6]
    with pytest.raises(FileExistsError):
        snap.save_snapshot(tiny_model(), str(tmp_path / snap.snapshot_name(6)))
    assert (tmp_path / snap.snapshot_name(6)).read_bytes() == b"old"


def test_retention_and_resume_lookup(tmp_path):
    run = tmp_path / "00003-x"
    run.mkdir()
    for k in (0, 5, 10, 15):
        (run / snap.snapshot_name(k)).write_bytes(b"x")
    assert snap.apply_retention(str(run), 2) == [str(run / snap.snapshot_name(0)), str(run / snap.snapshot_name(5))]
    (run / snap.OPTIONS_FILE).write_text(json.dumps({"fingerprint": "abc"}))
    other = tmp_path / "00004-y"
    other.mkdir()
    (other / snap.OPTIONS_FILE).write_text(json.dumps({"fingerprint": "zzz"}))
    (other / snap.snapshot_name(20)).write_bytes(b"x")
    assert snap.find_resume(str(tmp_path), "abc") == (str(run), str(run / snap.snapshot_name(15)))
    assert snap.find_resume(str(tmp_path), "nope") == (None, None)


MIRRORED = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path[:0] = [sys.argv[1], os.path.join(sys.argv[1], "tests")]
    import numpy as np
    from tests.test_train import tiny_model, batches
    # No noise, no mixing, no minibatch-stddev: then 1 and 2 replicas compute the same function. SGD, because
    # Adam's first steps move every weight by +-lr whatever the gradient's size (sign flips of ~0 gradients).
    def train(strategy):
        with strategy.scope():
            m = tiny_model("logistic", g_extra=dict(use_noise=False, style_mixing_prob=0.0),
                           d_extra=dict(mbstd_group_size=1), sgd=True)
            m.configure_phase(level=0, global_batch=8)
        m.fit(batches(sys.argv[2], 8, 8), epochs=1, steps_per_epoch=2, verbose=0, shuffle=False)
        return [w.numpy() for w in m.G.weights + m.D.weights + m.Gs.weights]
    one = train(tf.distribute.get_strategy())
    two = train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    init = tiny_model("logistic", g_extra=dict(use_noise=False, style_mixing_prob=0.0),
                      d_extra=dict(mbstd_group_size=1))
    err = max(float(np.max(np.abs(a - b))) for a, b in zip(one, two))
    moved = max(float(np.max(np.abs(a - b.numpy()))) for a, b in zip(one, init.G.weights))
    print("MAXERR", err, "MOVED", moved)
""")


def test_mirrored_strategy_matches_one_device(dataset):
    proc = subprocess.run([sys.executable, "-c", MIRRORED, REPO, dataset], capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=600)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("MAXERR")]
    assert line, proc.stdout[-2000:] + proc.stderr[-4000:]
    _, err, _, moved = line[0].split()
    assert float(moved) > 1e-4          # it trained
    assert float(err) < 1e-3 * float(moved)    # and two replicas agree with one device


def test_train_py_dry_run_and_errors(dataset, capsys):
    sys.path.insert(0, REPO)
    import train
    assert train.main(["--data", dataset, "--dry-run", "--total-kimg", "3000", "--batch-preset", "8gpu"]) == 0
    out = capsys.readouterr().out
    assert '"total_kimg": 3000.0' in out and "kimg    lod   res minibatch" in out
    import re
    assert re.search(r"\n\s+0\.0\s+1\.00\s+8\s+256\s", out) and re.search(r"\n\s+1200\.0\s+0\.00\s+16\s+128\s", out)
    assert train.main(["--data", dataset, "--gamma", "-1", "--loss", "nope", "--grid", "big"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("train.py: error: --") for line in err)
    assert train.main(["--data", str(dataset) + "-missing"]) == 2
    assert "no such folder" in capsys.readouterr().err


@pytest.mark.slow
def test_mixed_precision_bfloat16_fit(dataset):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        m = tiny_model("logistic")
        m.configure_phase(level=0, global_batch=4)
        hist = m.fit(batches(dataset, 8, 4), epochs=1, steps_per_epoch=2, verbose=0, shuffle=False)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert m.G.compute_dtype == "bfloat16" and m.G.trainable_weights[0].dtype == "float32"
    for key in ("G_loss", "D_loss", "r1"):
        assert np.isfinite(hist.history[key][-1]), key
    assert int(m.g_optimizer.iterations.numpy()) == 2


@pytest.mark.parametrize("flags,needle", [
    (["--total-kimg", "inf"], "--total-kimg inf is not a finite number"),
    (["--total-kimg", "1e9"], "--total-kimg 1e+09 is out of range"),
    (["--gamma", "nan"], "--gamma nan is not a finite number"),
    (["--gpus", "0"], "--gpus 0 is out of range"),
    (["--grid", "0x0"], "--grid 0x0: columns and rows must each be 1 to"),
    (["--minibatch", "1000000000"], "--minibatch 1000000000 is out of range"),
])
def test_train_py_refuses_absurd_numbers_with_one_line(tmp_path, capsys, flags, needle):
    sys.path.insert(0, REPO)
    import train
    out = tmp_path / "results"
    for extra in ([], ["--dry-run"]):
        assert train.main(flags + extra + ["--outdir", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("train.py: error: ") and needle in err[0], err
    assert not out.exists()            # refused before any run directory exists


def test_train_py_help_shows_one_default_and_the_demo_value(capsys):
    sys.path.insert(0, REPO)
    import train
    with pytest.raises(SystemExit):
        train.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text and text.count("(default:") >= 30
    assert "--total-kimg KIMG length of training in thousands of real images (default: 25000; demo: 160)" in text
    assert "--gamma X R1 weight for the logistic loss (default: 10; demo: 50)" in text
    assert "--loss NAME GAN loss: logistic: " in text and "ra-hinge: " in text and "(default: logistic)" in text


def test_damaged_snapshots_resume_fallback_lock_and_stats(dataset, tmp_path, capsys):
    from stylegan_tf.training import OptionsError
    from stylegan_tf.training.rundir import RunDirLock
    sys.path.insert(0, REPO)
    import train
    kw = dict(resolution=8, lod_initial_resolution=8)
    out = tmp_path / "r"
    first = training_loop(small_opts(dataset, out, total_kimg=0.016, **kw))
    second = training_loop(small_opts(dataset, out, total_kimg=0.032, resume="auto", **kw))
    assert second.run_dir == first.run_dir
    a, b = first.snapshots[0], second.snapshots[0]
    # Both reach kimg 0: the second must not replace the first.
    assert os.path.basename(b) == "network-snapshot-000000.032.keras" and os.path.isfile(a)
    run = first.run_dir

    # A snapshot with 4 bytes of 0xff in the middle, and one cut short: one line each, naming file and damage.
    data = bytearray(open(b, "rb").read())
    data[len(data) // 2:len(data) // 2 + 4] = b"\xff" * 4
    open(b, "wb").write(bytes(data))
    cut = str(tmp_path / "cut.keras")
    open(cut, "wb").write(bytes(data[: len(data) // 3]))
    capsys.readouterr()
    for path, damage in ((b, "fails its CRC check"), (cut, "truncated")):
        argv = ["--data", dataset, "--outdir", str(tmp_path / "x"), "--resume", path, "--no-progress"]
        assert train.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and path in err[0] and damage in err[0], err
    # A hostile pickle: refused, one line.
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"\x80\x04cos\nsystem\n(S'echo hi'\ntR.")
    assert train.main(["--data", dataset, "--outdir", str(tmp_path / "x"), "--resume", str(evil)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(evil) in err[0], err
    assert not (tmp_path / "x").exists()

    # Another process trains in the run: a second --resume auto names it and leaves.
    with RunDirLock(run):
        with pytest.raises(OptionsError, match=f"in use by another training run \\(pid {os.getpid()} on "):
            training_loop(small_opts(dataset, out, total_kimg=0.048, resume="auto", **kw))

    # The newest snapshot is damaged: --resume auto takes the newest that loads and says what it skipped; the
    # stats row of the tick trained after that snapshot is dropped, not repeated.
    third = training_loop(small_opts(dataset, out, total_kimg=0.048, resume="auto", **kw))
    log = open(os.path.join(run, "log.txt")).read()
    assert f"--resume auto: skipping {b}: corrupted" in log and f"Resuming from {a} at kimg 0.0, tick 1" in log
    assert third.state.nimg == 48 and third.state.tick == 3
    assert [json.loads(line)["tick"] for line in open(os.path.join(run, "stats.jsonl"))] == [1, 2, 3]
    assert open(b, "rb").read() == bytes(data)              # the damaged file is left for the user to look at

    # Different architecture flags on --resume FILE: the network decides, and the run records what it trains.
    fourth = training_loop(small_opts(dataset, tmp_path / "y", total_kimg=0.032, resume=a,
                                      **dict(kw, fmap_base=128, latent_size=32)))
    with open(os.path.join(fourth.run_dir, "training_options.json")) as f:
        recorded = json.load(f)
    assert recorded["fmap_base"] == 64 and recorded["latent_size"] == 16 and "fmap64-16" in fourth.run_dir
    assert "--fmap-base 64 (not 128)" in open(os.path.join(fourth.run_dir, "log.txt")).read()
    # ... and --resume auto with the same flags finds that run.
    fifth = training_loop(small_opts(dataset, tmp_path / "y", total_kimg=0.048, resume="auto",
                                     **dict(kw, fmap_base=128, latent_size=32)))
    assert fifth.run_dir == fourth.run_dir and fifth.state.nimg == 48


def test_corrupted_level_file_stops_training_with_one_line(dataset, tmp_path, capsys):
    import shutil
    sys.path.insert(0, REPO)
    import train
    data = str(tmp_path / "faces")
    shutil.copytree(dataset, data)
    level = [n for n in os.listdir(data) if n.endswith("-r03.tfrecords")][0]
    path = os.path.join(data, level)
    with open(path, "r+b") as f:                      # dd 4 bytes of 0xff into the middle of the 8x8 level
        f.seek(os.path.getsize(path) // 2)
        f.write(b"\xff" * 4)
    argv = ["--data", data, "--outdir", str(tmp_path / "out"), "--resolution", "8", "--lod-initial-resolution", "8",
            "--minibatch", "4", "--total-kimg", "0.032", "--tick-kimg", "0.016", "--no-progress",
            "--fmap-base", "64", "--fmap-max", "16", "--latent-size", "16", "--dlatent-size", "16",
            "--mapping-layers", "2", "--mapping-fmaps", "16", "--grid", "1x1"]   # the grid reads record 0 only
    assert train.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and path in err[0] and "record" in err[0], err
    run = os.path.join(tmp_path, "out", os.listdir(tmp_path / "out")[0])
    assert f"Training failed: training stopped: {path}: record" in open(os.path.join(run, "log.txt")).read()


def test_resume_takes_the_architecture_from_the_network():
    import dataclasses
    from stylegan_tf.training.options import CONFIGS
    from stylegan_tf.training.resume import actual_options
    opts = TrainingOptions(**TINY_NET)
    m = tiny_model(g_extra=dict(style_mixing_prob=0.0))         # config E's generator, seed 3
    used, changed = actual_options(dataclasses.replace(opts, fmap_base=512, mirror=True), m, from_snapshot=True)
    assert (used.config, used.fmap_base, used.seed, used.mirror) == ("configE", 64, 3, False)
    assert changed == {"config": "stylegan", "fmap_base": 512, "seed": 1000, "mirror": True}
    # Config B has no mapping network whatever --mapping-layers says: that is not a conflict to report.
    from stylegan_tf.networks import Generator, Networks
    G = Generator(resolution=8, num_channels=3, **dict(TINY_NET, **CONFIGS["configB"]))
    used, changed = actual_options(dataclasses.replace(opts, config="configB"), Networks(G, None, G),
                                   from_snapshot=False)
    assert used.config == "configB" and used.mapping_layers == opts.mapping_layers and changed == {}
