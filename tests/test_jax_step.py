"""The JAX training step (training/jax_step.py) against the TensorFlow one, on the paths that differ by data:
MSG's pyramid of reals (a tuple of levels, lowest first) with its losses, and reals larger than the level (a
user's full-resolution dataset during progressive growing, `downscale_reals`).

Each backend runs in a subprocess (a process has one Keras backend) on the same weights and numbers;
`deterministic_step` takes the randomness out, so both backends must compute the same iteration.
"""
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import TINY_NET

pytest.importorskip("jax")

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = dict(resolution=16, **TINY_NET)
ARCHS = ("msggan", "msg-stylegan")
BATCH = 4

_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import keras
    import numpy as np
    from stylegan_tf.networks.archs import get_arch
    from stylegan_tf.training import StyleGAN, TrainingOptions

    work, tiny = sys.argv[1], json.loads(sys.argv[2])
    batch, res = 4, tiny["resolution"]
    result = {"backend": keras.backend.backend()}

    def adam():
        return keras.optimizers.Adam(0.003, beta_1=0.0, beta_2=0.99, epsilon=1e-8)

    def nets(arch, label_size, res=res, loss_kwargs=None):
        opts = TrainingOptions.for_arch(arch, **{**tiny, "resolution": res})
        keras.utils.set_random_seed(1)
        G, D = get_arch(arch).build(opts, res, 3, label_size)
        # No style mixing (its draws are each backend's own): the iteration is then a function of its inputs.
        config = {k: v for k, v in G.get_config().items() if k != "name"}
        G = G.__class__.from_config({**config, "style_mixing_prob": None})
        Gs = G.__class__.from_config({**config, "style_mixing_prob": None})
        z = np.zeros([1, G.latent_size], np.float32)
        lab = np.zeros([1, label_size], np.float32) if label_size else None
        for net in (G, Gs):
            net(z, labels=lab)
        pyramid = get_arch(arch).data == "pyramid"
        D([np.zeros([1, 2 ** k, 2 ** k, 3], np.float32) for k in range(2, int(np.log2(res)) + 1)] if pyramid
          else np.zeros([1, res, res, 3], np.float32), labels=lab)
        path = os.path.join(work, f"{arch}-{res}-weights.npz")
        if os.path.exists(path):           # the other backend's initial weights: both start from the same numbers
            saved = np.load(path)
            for name, net in (("G", G), ("D", D)):
                net.set_weights([saved[f"{name}{i}"] for i in range(len(net.weights))])
        else:
            # A new G's 4x4 constant is all ones: everything before its first instance norm is then positive, the
            # leaky ReLU linear, and the gradient of the bias there exactly zero in exact arithmetic; what each
            # backend computes is rounding noise (1e-7), which Adam turns into full steps. Trained weights (the
            # official fixture's) cross zero; so do these.
            rng = np.random.default_rng(0)
            for v in G.trainable_variables:
                x = keras.ops.convert_to_numpy(v)
                x = rng.normal(0, 1, x.shape) if "const" in v.path else x + rng.normal(0, 0.05, x.shape)
                v.assign(x.astype(np.float32))
            np.savez(path, **{f"{name}{i}": w for name, net in (("G", G), ("D", D))
                              for i, w in enumerate(net.get_weights())})
        model = StyleGAN(G, D, Gs, mirror=False, g_smoothing_kimg=0.1)
        model.ema_update_now(0.0)
        model.compile(g_optimizer=adam(), d_optimizer=adam(), loss=opts.loss,
                      loss_kwargs=loss_kwargs or {"gamma": opts.gamma})
        model.configure_phase(0, batch)
        return model

    def inputs(rng, label_size, latent_size, res=res, pyramid=True):
        top = rng.uniform(-1, 1, (batch, res, res, 3)).astype(np.float32)
        # A pyramid as the reader makes it: each level the box-filtered level above.
        pyramid = [top]
        while pyramid[0].shape[1] > 4:
            x = pyramid[0]
            pyramid.insert(0, x.reshape(batch, x.shape[1] // 2, 2, x.shape[2] // 2, 2, 3).mean(axis=(2, 4)))
        eye = np.eye(max(label_size, 1), dtype=np.float32)
        labels, labels_g = (eye[rng.integers(0, label_size, batch)] if label_size else None for _ in range(2))
        z_d, z_g = (rng.normal(size=(batch, latent_size)).astype(np.float32) for _ in range(2))
        return tuple(pyramid) if pyramid else top, labels, z_d, z_g, labels_g

    def state(model):
        out = {}
        for name, net in (("G", model.G), ("D", model.D), ("Gs", model.Gs)):
            out.update({f"{name}{i}": w for i, w in enumerate(net.get_weights())})
        for name, opt in (("g_opt", model.g_optimizer), ("d_opt", model.d_optimizer)):
            out.update({f"{name}{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(opt.variables)})
        return out

    def step_outputs(out, it):
        outs = {f"{k}/it{it}": np.asarray(out[k], np.float64)
                for k in ("D_loss", "G_loss", "real_score", "fake_score", "r1") if k in out}
        for key in ("D_grads", "G_grads"):
            outs.update({f"{key}{i}/it{it}": g for i, g in enumerate(out[key])})
        return outs

    backend = keras.backend.backend()
    # ---- MSG: two deterministic iterations on a pyramid of reals
    for arch, label_size in (("msggan", 0), ("msg-stylegan", 3)):
        # msg-stylegan with lazy R1 (train.py's --r1-interval 2): iterations 1 and 3 without the penalty, 2 with
        # gamma * 2, summed over the levels.
        model = nets(arch, label_size, loss_kwargs={"gamma": 10.0, "r1_interval": 2} if label_size else None)
        rng = np.random.default_rng(7)
        outs = {}
        for it in (1, 2):
            out = model.deterministic_step(*inputs(rng, label_size, model.G.latent_size), step=it,
                                           noise_mode="const")
            outs.update(step_outputs(out, it))
        outs.update(state(model))
        np.savez(os.path.join(work, f"{arch}-{backend}.npz"), **outs)
        if arch != "msg-stylegan":
            continue
        # ---- its snapshot, then a third iteration: on TF by the model itself, on JAX by the model loaded from
        # TF's snapshot (weights, both Adam states and the training state must carry over)
        from stylegan_tf.training import snapshot
        model.training_state = {"loop": {"nimg": 8, "tick": 1, "phase_step": 2}}
        snapshot.save_snapshot(model, os.path.join(work, f"{arch}-{backend}.keras"))
        if backend == "jax":
            model = snapshot.load_snapshot(os.path.join(work, f"{arch}-tensorflow.keras"))
            model.compile(loss="logistic", loss_kwargs={"gamma": 10.0, "r1_interval": 2})
            model.configure_phase(0, batch)
            theirs, loaded = np.load(os.path.join(work, f"{arch}-tensorflow.npz")), state(model)
            result["from_tf_snapshot"] = {
                "same_keys": sorted(loaded) == sorted(k for k in theirs.files if "/" not in k),
                "unequal": [k for k in loaded if not np.array_equal(loaded[k], theirs[k])],
                "training_state": model.training_state}
        out = model.deterministic_step(*inputs(rng, label_size, model.G.latent_size), step=3, noise_mode="const")
        third = step_outputs(out, 3)
        third.update(state(model))
        np.savez(os.path.join(work, f"{arch}-{backend}-it3.npz"), **third)

    # ---- fit on reals twice the level's resolution == fit on the same reals box-filtered beforehand (JAX; the
    # TF path's is tests/test_keras_api.py's growing fit)
    if keras.backend.backend() != "jax":
        print("RESULT " + json.dumps(result))
        sys.exit(0)
    from stylegan_tf.networks import Discriminator, Generator
    rng = np.random.default_rng(3)
    res = 8
    big = rng.uniform(-1, 1, (2, batch, res, res, 3)).astype(np.float32)
    small = big.reshape(2, batch, res // 2, 2, res // 2, 2, 3).mean(axis=(3, 5))
    weights = []
    for reals in (big, small):
        keras.utils.set_random_seed(2)
        net_kw = {k: v for k, v in tiny.items() if k != "resolution"}
        G = Generator(resolution=res, num_channels=3, **net_kw)
        D = Discriminator(resolution=res, num_channels=3, fmap_base=tiny["fmap_base"], fmap_max=tiny["fmap_max"])
        model = StyleGAN(G, D, mirror=True, g_smoothing_kimg=0.1)
        G(np.zeros([1, G.latent_size], np.float32))
        model.Gs(np.zeros([1, G.latent_size], np.float32))
        D(np.zeros([1, res, res, 3], np.float32))
        model.ema_update_now(0.0)
        # No R1 (gamma 0): this checks the data path, and a penalty's double backprop would only cost time.
        model.compile(g_optimizer=adam(), d_optimizer=adam(), loss="logistic", loss_kwargs={"gamma": 0.0})
        for net in (G, D, model.Gs):
            net.lod.assign(1.0)
        model.configure_phase(1, batch)         # level 1 of an 8x8 net: 4x4 reals
        data = [(reals[i], np.zeros([batch, 0], np.float32), np.full([batch], 10 + i, np.int64)) for i in range(2)]
        hist = model.fit((b for b in data), epochs=1, steps_per_epoch=2, verbose=0)
        weights.append((model.G.get_weights() + model.D.get_weights(), hist.history["D_loss"]))
    (w_big, loss_big), (w_small, loss_small) = weights
    result["downscale_max_diff"] = max(float(np.max(np.abs(a - b))) for a, b in zip(w_big, w_small))
    result["downscale_d_loss"] = [loss_big, loss_small]
    print("RESULT " + json.dumps(result))
""")


def _run(backend, work, timeout=900):
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2",
               JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(work), json.dumps(TINY)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.split("RESULT ", 1)[1].splitlines()[0])


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    work = tmp_path_factory.mktemp("jax_step")
    tf_result = _run("tensorflow", work)      # writes the initial weights the JAX run then loads
    jax_result = _run("jax", work)
    return work, {"tensorflow": tf_result, "jax": jax_result}


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


@pytest.mark.parametrize("arch", ARCHS)
def test_msg_iteration_on_jax_matches_tensorflow(both, arch):
    """Two MSG iterations (D step with its loss over every level, Gs EMA, G step; msggan's relativistic hinge
    needs D's real scores in the G step; msg-stylegan, conditional, with lazy R1 every 2nd step: none at step 1,
    gamma * 2 summed over the levels at step 2) on JAX and on TensorFlow from the same weights and numbers:
    losses, every gradient, the weights of G, D, Gs and both Adam states agree."""
    work, results = both
    assert results["jax"]["backend"] == "jax" and results["tensorflow"]["backend"] == "tensorflow"
    tf_out = np.load(work / f"{arch}-tensorflow.npz")
    jax_out = np.load(work / f"{arch}-jax.npz")
    assert sorted(tf_out.files) == sorted(jax_out.files)
    assert ("r1/it1" in tf_out.files) == (arch == "msg-stylegan")
    if arch == "msg-stylegan":
        assert float(jax_out["r1/it1"].max()) == 0.0 and float(jax_out["r1/it2"].min()) > 0.0
    worst = max((_rel(jax_out[k], tf_out[k]), k) for k in tf_out.files)
    assert worst[0] <= 1e-4, f"{arch}: JAX differs from TensorFlow by {worst[0]:.2e} (relative) in {worst[1]}"
    # It trained: the weights moved from the shared start.
    start = np.load(work / f"{arch}-16-weights.npz")
    assert max(_rel(jax_out[k], start[k]) for k in start.files if k.startswith("D")) > 1e-3


def test_jax_fit_box_filters_reals_larger_than_the_level(both):
    """`fit` on JAX on 8x8 reals at level 1 (4x4) trains exactly as on the reals box-filtered to 4x4
    beforehand: a user's full-resolution dataset grows progressively in one `fit` on JAX too."""
    r = both[1]["jax"]
    assert r["downscale_max_diff"] <= 1e-6
    big, small = r["downscale_d_loss"]
    np.testing.assert_allclose(big, small, rtol=1e-5)


def test_tensorflow_snapshot_continues_on_jax(both):
    """A TF-trained snapshot loads on JAX with every weight, both Adam states (moments and step counters) and
    the training state unchanged, and its next iteration on JAX is TF's next iteration."""
    work, results = both
    loaded = results["jax"]["from_tf_snapshot"]
    assert loaded["same_keys"] and loaded["unequal"] == []
    assert loaded["training_state"] == {"loop": {"nimg": 8, "tick": 1, "phase_step": 2}}
    tf_out = np.load(work / "msg-stylegan-tensorflow-it3.npz")
    jax_out = np.load(work / "msg-stylegan-jax-it3.npz")
    assert sorted(tf_out.files) == sorted(jax_out.files)
    assert int(jax_out["g_opt0"]) == int(jax_out["d_opt0"]) == 3      # Adam's step counter went on from 2
    worst = max((_rel(jax_out[k], tf_out[k]), k) for k in tf_out.files)
    assert worst[0] <= 1e-4, f"JAX's iteration 3 differs from TensorFlow's by {worst[0]:.2e} in {worst[1]}"


def test_jax_snapshot_loads_on_tensorflow(both):
    """A JAX-trained snapshot loads on TensorFlow with every weight, both Adam states and the training state
    exactly as JAX left them."""
    import keras
    if keras.backend.backend() != "tensorflow":
        pytest.skip("loads on TensorFlow in this process")
    from stylegan_tf.training.snapshot import load_snapshot
    work, _ = both
    model = load_snapshot(str(work / "msg-stylegan-jax.keras"))
    assert model.training_state == {"loop": {"nimg": 8, "tick": 1, "phase_step": 2}}
    saved = np.load(work / "msg-stylegan-jax.npz")
    loaded = {}
    for name, net in (("G", model.G), ("D", model.D), ("Gs", model.Gs)):
        loaded.update({f"{name}{i}": w for i, w in enumerate(net.get_weights())})
    for name, opt in (("g_opt", model.g_optimizer), ("d_opt", model.d_optimizer)):
        loaded.update({f"{name}{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(opt.variables)})
    assert sorted(loaded) == sorted(k for k in saved.files if "/" not in k)
    assert [k for k in loaded if not np.array_equal(loaded[k], saved[k])] == []
    assert int(loaded["g_opt0"]) == int(loaded["d_opt0"]) == 2                    # Adam's step counters
    moments = [v for k, v in loaded.items() if k.startswith("d_opt") and k not in ("d_opt0", "d_opt1")]
    assert max(np.abs(v).max() for v in moments) > 0

