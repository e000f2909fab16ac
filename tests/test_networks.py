"""Generator / Discriminator / Networks: structure, lod semantics, noise, truncation, mixing, saving."""
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.ops import convert_to_numpy as _np

import stylegan_tf
from stylegan_tf.layers import downscale2d
from stylegan_tf.network_io import NetworkFileError, save_network
from stylegan_tf.networks import Discriminator, Generator, Networks, mix_styles, mixing_cutoff, truncate

SMALL = dict(resolution=32, fmap_base=64, fmap_max=32, latent_size=16, dlatent_size=16, mapping_fmaps=16)
DSMALL = dict(resolution=32, num_channels=3, fmap_base=64, fmap_max=32)


def _randomize(net, seed):
    """Non-zero noise weights and biases so that every path matters in the checks."""
    rng = np.random.RandomState(seed)
    for v in net.trainable_weights:
        if np.all(v.numpy() == 0):
            v.assign(rng.randn(*v.shape).astype(np.float32) * 0.5)


@pytest.fixture(scope="module")
def nets():
    keras.utils.set_random_seed(0)
    G, D = Generator(**SMALL), Discriminator(**DSMALL)
    _randomize(G, 1)
    _randomize(D, 2)
    G.dlatent_avg.assign(np.random.RandomState(3).randn(16).astype(np.float32))
    return G, D


@pytest.fixture(scope="module")
def z():
    return np.random.RandomState(4).randn(8, 16).astype(np.float32)


def test_shapes_and_levels(nets, z):
    G, D = nets
    assert G.num_layers == 8 and G.resolution == 32 and G.num_channels == 3 and G.latent_size == 16
    assert G.map_latents(z).shape == (8, 8, 16)
    assert G.run(z).shape == (8, 32, 32, 3)
    np.testing.assert_allclose(G.run(z, batch_size=3), G.run(z), atol=1e-5 * np.abs(G.run(z)).max())
    assert G.run(z[:0]).shape == (0, 32, 32, 3)
    for level, r in [(0, 32), (1, 16), (3, 4)]:
        img = G(z, level=level)
        assert img.shape == (8, r, r, 3)
        assert D(img, level=level).shape == (8, 1)
    assert G(z).shape == (8, 32, 32, 3)
    with pytest.raises(ValueError, match="level"):
        G(z, level=4)


def test_lod_fade_semantics(nets, z):
    """lod 0.5 is the half-way blend of lod 0 and lod 1 (alpha = weight of the lower-resolution path), the
    static-level path equals the whole-network ('linear') path, and the variable drives lod=None."""
    G, D = nets
    a, b, mid = G.run(z, lod=0.0), G.run(z, lod=1.0), G.run(z, lod=0.5)
    np.testing.assert_allclose(mid, 0.5 * (a + b), atol=1e-5 * np.abs(a).max())
    # lod=1: blocks above 16x16 are not used; the image is the 16x16 output upscaled.
    native = _np(G(z, level=1, lod=1.0, noise_mode="const"))
    np.testing.assert_allclose(b[:, ::2, ::2], native, atol=1e-5 * np.abs(b).max())
    for lod in (1.5, 2.25):
        linear = _np(G(z, lod=lod, noise_mode="const"))          # level=None: whole network
        np.testing.assert_allclose(G.run(z, lod=lod), linear, atol=1e-4 * np.abs(linear).max())
        scores = _np(D(linear, lod=lod))
        np.testing.assert_allclose(D.run(linear, lod=lod), scores, atol=1e-4 * np.abs(scores).max())
        k = int(lod)
        native_scores = _np(D(downscale2d(linear, 2 ** k), level=k, lod=lod))
        np.testing.assert_allclose(native_scores, scores, atol=1e-4 * np.abs(scores).max())
    G.lod.assign(1.5)
    D.lod.assign(1.5)
    try:
        np.testing.assert_array_equal(G.run(z), G.run(z, lod=1.5))
        np.testing.assert_array_equal(D.run(a), D.run(a, lod=1.5))
    finally:
        G.lod.assign(0.0)
        D.lod.assign(0.0)
    assert not np.allclose(G.run(z), G.run(z, lod=1.5))


def test_noise_modes(nets, z):
    G, _ = nets
    const1, const2 = G.run(z, noise_mode="const"), G.run(z, noise_mode="const")
    np.testing.assert_array_equal(const1, const2)
    r1, r2 = G.run(z, noise_mode="random"), G.run(z, noise_mode="random")
    assert np.abs(r1 - r2).max() > 1e-3
    none = G.run(z, noise_mode="none")
    saved = [b.numpy() for b in G.synthesis.noise_buffers]
    try:
        for b in G.synthesis.noise_buffers:
            b.assign(np.zeros(b.shape, np.float32))
        np.testing.assert_allclose(G.run(z, noise_mode="const"), none, atol=1e-5)
    finally:
        for b, v in zip(G.synthesis.noise_buffers, saved):
            b.assign(v)
    assert [tuple(b.shape) for b in G.synthesis.noise_buffers[:3]] == [(1, 4, 4, 1), (1, 4, 4, 1), (1, 8, 8, 1)]
    with pytest.raises(ValueError, match="noise_mode"):
        G.run(z, noise_mode="fixed")


def test_seeded_random_noise_is_reproducible(nets, z):
    G, _ = nets
    a = G.run(z, noise_mode="random", noise_seed=7, batch_size=2)
    np.testing.assert_array_equal(a, G.run(z, noise_mode="random", noise_seed=7, batch_size=2))
    assert np.abs(a - G.run(z, noise_mode="random", noise_seed=8, batch_size=2)).max() > 1e-3
    twin = G.run(np.stack([z[0], z[0]]), noise_mode="random", noise_seed=7, batch_size=1)
    assert np.abs(twin[0] - twin[1]).max() > 1e-3    # each call draws its own noise from the stream
    # Only the noise is seeded: without noise the seed changes nothing.
    np.testing.assert_array_equal(G.run(z, noise_mode="none"), G.run(z, noise_mode="none", noise_seed=7))


def test_truncation(nets, z):
    G, _ = nets
    np.testing.assert_array_equal(G.run(z, truncation_psi=1.0), G.run(z))
    w = G.map_latents(z)
    avg = G.dlatent_avg.numpy()
    t = _np(truncate(w, avg, 0.7, 3))
    np.testing.assert_allclose(t[:, :3], avg + 0.7 * (w[:, :3] - avg), atol=1e-5)
    np.testing.assert_array_equal(t[:, 3:], w[:, 3:])
    np.testing.assert_array_equal(_np(truncate(w, avg, 1.0)), w)   # psi 1 is the identity
    np.testing.assert_array_equal(_np(G(z, truncation_psi=1.0, noise_mode="const")),
                                  _np(G(z, noise_mode="const")))
    np.testing.assert_allclose(_np(truncate(w, avg, 0.0)), np.broadcast_to(avg, w.shape), atol=1e-6)
    np.testing.assert_allclose(G.run(z, truncation_psi=0.5),                       # None = all layers
                               G.run(z, truncation_psi=0.5, truncation_cutoff=8), atol=1e-6)
    np.testing.assert_allclose(G.run(z, truncation_psi=0.5, truncation_cutoff=3),
                               G.synthesize(_np(truncate(w, avg, 0.5, 3))), atol=1e-5)


def test_style_mixing_cutoff():
    keras.utils.set_random_seed(0)

    def draw(lod, p, n=400):  # eager: tracing 400 copies into one graph took most of this test's time
        return np.array([int(mixing_cutoff(8, lod, p)) for _ in range(n)])

    cuts = draw(np.float32(0.0), 0.9)
    assert cuts.min() >= 1 and cuts.max() <= 8
    frac_mixed = np.mean(cuts < 8)
    assert 0.8 < frac_mixed < 0.97                                  # p = 0.9; all of [1, 8) occur
    assert set(cuts[cuts < 8]) == set(range(1, 8))
    lod_cuts = draw(np.float32(1.7), 1.0, 100)
    assert max(lod_cuts) <= 5 and min(lod_cuts) >= 1                # cur_layers = 8 - 2*floor(1.7) = 6
    assert int(mixing_cutoff(8, np.float32(0.0), 0.0)) == 8
    w1, w2 = np.zeros([2, 8, 3], np.float32), np.ones([2, 8, 3], np.float32)
    mixed = _np(mix_styles(w1, w2, np.int32(3)))
    assert np.all(mixed[:, :3] == 0) and np.all(mixed[:, 3:] == 1)


def test_training_mode_updates_dlatent_avg(z):
    keras.utils.set_random_seed(5)
    G = Generator(**SMALL, style_mixing_prob=None)
    w0 = G.map_latents(z)[:, 0].mean(0)
    G(z, training=True)
    np.testing.assert_allclose(G.dlatent_avg.numpy(), (1 - 0.995) * w0, rtol=1e-4, atol=1e-7)
    G(z, training=True)
    np.testing.assert_allclose(G.dlatent_avg.numpy(), w0 * (1 - 0.995) * (1 + 0.995), rtol=1e-4, atol=1e-7)
    before = G.dlatent_avg.numpy()
    G(z)                                                             # inference: no update
    np.testing.assert_array_equal(G.dlatent_avg.numpy(), before)


def test_training_draws_follow_the_seed(z):
    # Noise and style mixing drawn from `seed` (what train_step passes, keyed by step) are reproducible:
    # same seed, same images; another seed, other noise and mixing.
    keras.utils.set_random_seed(6)
    G = Generator(**SMALL, style_mixing_prob=1.0, dlatent_avg_beta=None)
    run = lambda s: _np(G(z, training=True, seed=np.array(s, np.int64)))  # noqa: E731
    a, b, c = run([1, 2]), run([1, 2]), run([1, 3])
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3
    assert np.abs(_np(G(z, training=True)) - _np(G(z, training=True))).max() > 1e-3   # unseeded: fresh


def test_training_mixes_with_one_cutoff_per_minibatch(z):
    """In G(training=True), every sample of a minibatch switches from w1 to w2 at the same layer, a cutoff
    drawn anew per call in [1, cur_layers), cur_layers = num_layers - 2*floor(lod)."""
    keras.utils.set_random_seed(10)
    G = Generator(**dict(SMALL, resolution=16), style_mixing_prob=1.0)  # 6 layers
    seen = []
    synthesis_call = G.synthesis.call

    def spy(w, *args, **kwargs):  # observe the dlatents the synthesis network really receives
        seen.append(np.array(w))
        return synthesis_call(w, *args, **kwargs)

    G.synthesis.call = spy
    w1 = _np(G.mapping(z))
    for lod, cur_layers in ((0.0, 6), (1.5, 4)):
        cutoffs = set()
        for _ in range(6):
            G(z, training=True, lod=lod, noise_mode="none")
            from_w1 = (seen[-1] == w1).all(axis=2)                       # [N, num_layers]
            cutoff = int(from_w1[0].argmin())
            assert 1 <= cutoff < cur_layers
            assert (from_w1 == (np.arange(6) < cutoff)).all()           # same cutoff for every sample
            cutoffs.add(cutoff)
        assert len(cutoffs) > 1                                         # drawn per minibatch, not fixed


def test_deterministic_and_ema_ready():
    keras.utils.set_random_seed(7)
    G1 = Generator(**SMALL)
    keras.utils.set_random_seed(7)
    G2 = Generator(**SMALL)
    assert [v.path for v in G1.trainable_weights] != []
    assert [v.shape for v in G1.trainable_weights] == [v.shape for v in G2.trainable_weights]
    # Gs is built as a structural clone of G; the EMA pairs their weights by position.
    Gs = Generator.from_config(G1.get_config())
    assert [(v.path, v.shape, v.trainable) for v in Gs.weights] == [(v.path, v.shape, v.trainable)
                                                                     for v in G1.weights]
    for a, b in zip(G1.trainable_weights, G2.trainable_weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    names = sorted(v.name for v in G1.non_trainable_weights)
    assert "lod" in names and "dlatent_avg" in names and sum(n.startswith("noise") for n in names) == 8
    assert all(v.trainable is False for v in G1.non_trainable_weights)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="tf.distribute and tf.GradientTape: training runs on TensorFlow only")
def test_graph_mode_and_mirrored_strategy(z):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        G = Generator(**SMALL)
        D = Discriminator(**DSMALL)

    @tf.function
    def step(zb):
        def replica(zb):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.nn.softplus(-D(G(zb, training=True, level=1), training=True, level=1)))
            return loss, tape.gradient(loss, G.trainable_weights)
        return strategy.run(replica, args=(zb,))

    loss, grads = step(tf.constant(z))
    assert np.isfinite(float(strategy.reduce("mean", loss, axis=None)))
    assert sum(g is not None for g in grads) > 0
    assert np.abs(G.dlatent_avg.numpy()).max() > 0


def test_keras_round_trip(nets, z, tmp_path):
    G, D = nets
    G.lod.assign(0.5)
    try:
        path = save_network(Networks(G, D, G), str(tmp_path / "nets.keras"))
        assert os.listdir(tmp_path) == ["nets.keras"]  # nothing left from the atomic write
        loaded = stylegan_tf.load_network(path)
        assert isinstance(loaded.G, Generator) and isinstance(loaded.D, Discriminator)
        assert float(loaded.Gs.lod.numpy()) == 0.5
        np.testing.assert_array_equal(loaded.Gs.run(z), G.run(z))
        np.testing.assert_array_equal(loaded.Gs.dlatent_avg.numpy(), G.dlatent_avg.numpy())
        img = G.run(z)
        np.testing.assert_array_equal(loaded.D.run(img), D.run(img))
        # D on its own is a Keras model that round-trips through .keras too (same config, same weights).
        D.save(str(tmp_path / "d.keras"))
        lone_d = keras.saving.load_model(str(tmp_path / "d.keras"), compile=False)
        assert isinstance(lone_d, Discriminator) and lone_d.get_config() == D.get_config()
        for net, original in ((lone_d, D), (loaded.G, G)):
            assert [v.path for v in net.weights] == [v.path for v in original.weights]
            for a, b in zip(net.weights, original.weights):
                np.testing.assert_array_equal(a.numpy(), b.numpy())
        lone = save_network(G, str(tmp_path / "g.keras"))
        only = stylegan_tf.load_network(lone)
        assert only.D is None
        np.testing.assert_array_equal(only.Gs.map_latents(z), G.map_latents(z))
        for a, b in zip(only.Gs.weights, G.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    finally:
        G.lod.assign(0.0)


def test_inference_does_not_depend_on_earlier_batch_sizes(z):
    # The training loop's fakes grid compiles Gs.run for its batch size first; later calls must give what a
    # fresh copy of the same weights gives (one graph per call structure, not one specialised to whichever
    # batch size came first: that rounded differently, and bfloat16 amplified it to ~0.1).
    keras.utils.set_random_seed(5)
    G = Generator(**SMALL)
    _randomize(G, 6)
    G.lod.assign(1.0)
    fresh = Generator.from_config(G.get_config())
    fresh.set_weights(G.get_weights())
    grid = np.random.RandomState(7).randn(32, 16).astype(np.float32)
    G.run(grid)
    G.synthesize(G.map_latents(grid))
    np.testing.assert_array_equal(G.run(z[:5]), fresh.run(z[:5]))
    w = fresh.map_latents(z[:5])
    np.testing.assert_array_equal(G.map_latents(z[:5]), w)
    np.testing.assert_array_equal(G.synthesize(w), fresh.synthesize(w))


def _copy(G):
    H = Generator.from_config(G.get_config())
    H.set_weights(G.get_weights())
    return H


def test_bf16_inference_is_opt_in_and_close(nets, z):
    G = _copy(nets[0])
    fp32 = G.run(z, noise_mode="const")
    bf16 = G.run(z, noise_mode="const", precision="bf16")
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape
    err = np.abs(bf16 - fp32).mean() / np.abs(fp32).mean()
    assert 0 < err < 0.05, err                      # computed in bfloat16 (not bit-equal), yet the same image
    w = G.map_latents(z)
    np.testing.assert_allclose(G.synthesize(w, precision="bf16"), bf16, atol=1e-6 * np.abs(fp32).max())
    # The precision switch leaves the layers as they were: the default is still the faithful float32.
    assert all(layer.autocast for layer in G.synthesis._flatten_layers())
    np.testing.assert_array_equal(G.run(z, noise_mode="const"), fp32)
    with pytest.raises(ValueError, match="precision must be one of"):
        G.run(z, precision="fp16")


def test_xla_fused_epilogues_give_the_same_images(nets, z, monkeypatch):
    from stylegan_tf.layers.epilogue import LayerEpilogue
    G = _copy(nets[0])
    plain = G.run(z, noise_mode="const")
    monkeypatch.setattr(LayerEpilogue, "FUSE_MIN_ELEMENTS", 0)    # every epilogue fused, even at 4x4
    H = _copy(nets[0])
    fused = H.run(z, noise_mode="const")
    assert all(getattr(e, "_fused_chain", None) is not None for e in H.synthesis.epilogues)
    np.testing.assert_allclose(fused, plain, atol=1e-5 * np.abs(plain).max())
    # Outside the inference API (training, G(z)) the chain is never fused.
    assert not any(e.fuse_elementwise for e in H.synthesis.epilogues)


def test_bad_inputs(nets, z, tmp_path):
    G, D = nets
    with pytest.raises(ValueError, match=r"z must have shape \[N, 16\]"):
        G.run(z[:, :5])
    with pytest.raises(ValueError, match="NHWC"):
        D.run(np.zeros([4, 3, 32, 32], np.float32))
    with pytest.raises(ValueError, match="minibatch-stddev"):
        D.run(np.zeros([6, 32, 32, 3], np.float32), batch_size=8)
    with pytest.raises(ValueError, match="power of two"):
        Generator(resolution=48)
    bad = tmp_path / "notes.keras"
    bad.write_text("hello")
    with pytest.raises(NetworkFileError, match="notes.keras"):
        stylegan_tf.load_network(str(bad))
    with pytest.raises(FileNotFoundError, match="missing.pkl"):
        stylegan_tf.load_network(str(tmp_path / "missing.pkl"))
    import zipfile
    with zipfile.ZipFile(tmp_path / "photos.keras", "w") as archive:
        archive.writestr("a.txt", "not a network")
    with pytest.raises(NetworkFileError, match="photos.keras: a zip archive but not a Keras network") as e:
        stylegan_tf.load_network(str(tmp_path / "photos.keras"))
    assert "\n" not in str(e.value)


def test_conditional_and_ablation_configs():
    keras.utils.set_random_seed(8)
    Gc = Generator(**SMALL, label_size=3)
    Dc = Discriminator(**DSMALL, label_size=3)
    zc = np.random.RandomState(9).randn(4, 16).astype(np.float32)
    labels = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    img = Gc.run(zc, labels)
    assert Dc.run(img, labels).shape == (4, 1)
    with pytest.raises(ValueError, match="labels"):
        Gc.run(zc)
    # Paper config B (traditional input, no styles/mapping/noise, pixel norm) and E (no mixing) build and run.
    B = Generator(**dict(SMALL, latent_size=16, dlatent_size=16), use_styles=False, use_pixel_norm=True,
                  use_instance_norm=False, mapping_layers=0, const_input_layer=False, use_noise=False,
                  style_mixing_prob=0.0, truncation_psi=None)
    assert B.num_styles == 1 and B.map_latents(zc).shape == (4, 1, 16)
    assert B.run(zc).shape == (4, 32, 32, 3) and B(zc, training=True).shape == (4, 32, 32, 3)
    assert not B.synthesis.noise_buffers
    D_nombstd = Discriminator(**DSMALL, mbstd_group_size=0)
    assert D_nombstd.run(np.zeros([3, 32, 32, 3], np.float32)).shape == (3, 1)


# The official G_style/G_mapping/G_synthesis and D_basic defaults (training/networks_stylegan.py).
OFFICIAL_G_DEFAULTS = dict(
    resolution=1024, num_channels=3, label_size=0, latent_size=512, dlatent_size=512, mapping_layers=8,
    mapping_fmaps=512, mapping_lrmul=0.01, mapping_nonlinearity="lrelu", normalize_latents=True, fmap_base=8192,
    fmap_decay=1.0, fmap_max=512, use_styles=True, const_input_layer=True, use_noise=True, nonlinearity="lrelu",
    use_wscale=True, use_pixel_norm=False, use_instance_norm=True, fused_scale="auto", blur_filter=[1, 2, 1],
    truncation_psi=0.7, truncation_cutoff=8, dlatent_avg_beta=0.995, style_mixing_prob=0.9)
OFFICIAL_D_DEFAULTS = dict(
    resolution=32, num_channels=1, label_size=0, fmap_base=8192, fmap_decay=1.0, fmap_max=512, nonlinearity="lrelu",
    use_wscale=True, mbstd_group_size=4, mbstd_num_features=1, fused_scale="auto", blur_filter=[1, 2, 1])


@pytest.mark.parametrize("cls,official", [(Generator, OFFICIAL_G_DEFAULTS), (Discriminator, OFFICIAL_D_DEFAULTS)])
def test_every_official_hyper_parameter_with_its_default(cls, official):
    import inspect
    params = inspect.signature(cls.__init__).parameters
    ours = {k: params[k].default for k in official if k in params}
    ours = {k: list(v) if isinstance(v, tuple) else v for k, v in ours.items()}
    assert ours == official


@pytest.mark.parametrize("res,g_params,d_params", [
    (256, 26_086_229, 23_052_353), (512, 26_179_768, 23_080_225), (1024, 26_219_627, 23_087_249)])
def test_official_parameter_counts(res, g_params, d_params):
    G, D = Generator(resolution=res), Discriminator(resolution=res, num_channels=3)
    assert sum(int(np.prod(v.shape)) for v in G.trainable_weights) == g_params
    assert sum(int(np.prod(v.shape)) for v in D.trainable_weights) == d_params
    assert G.num_layers == 2 * int(np.log2(res)) - 2
    assert G.synthesis.convs[-2].fused == (res >= 128) and D.blocks[0].fused == (res >= 128)


# Outputs of the official fixture networks, computed the same way under each backend: `outputs(fixtures dir,
# out .npz)`, in this process for its own backend, or as a script (argv: the same) in a process on another.
_BACKEND_OUTPUTS = r"""
import sys
import numpy as np
import keras
import stylegan_tf


def outputs(folder, out):
    results = {"backend": np.array(keras.backend.backend())}
    for name in ("official-r32", "official-r16-cond"):
        nets = stylegan_tf.load_network(f"{folder}/{name}.pkl")
        e = np.load(f"{folder}/{name}-expected.npz")
        z, labels = e["z"], e["labels"] if "labels" in e else None
        reals = e["img"].transpose(0, 2, 3, 1)
        results[f"{name}/dlatents"] = nets.Gs.map_latents(z, labels)
        results[f"{name}/G.run"] = nets.Gs.run(z, labels)
        results[f"{name}/G.run truncated"] = nets.Gs.run(z, labels, truncation_psi=0.7, truncation_cutoff=4)
        results[f"{name}/G.run lod 1.5"] = nets.Gs.run(z, labels, lod=1.5)
        results[f"{name}/G.synthesize lod 0.5"] = nets.Gs.synthesize(results[f"{name}/dlatents"], lod=0.5)
        results[f"{name}/G call"] = keras.ops.convert_to_numpy(nets.G(z, labels, noise_mode="const"))
        results[f"{name}/D.run"] = nets.D.run(reals, labels)
        results[f"{name}/D.run lod 1.5"] = nets.D.run(reals, labels, lod=1.5)
    np.savez(out, **results)


if __name__ == "__main__":
    outputs(sys.argv[1], sys.argv[2])
"""


def _backend_outputs(backend, fixtures_dir, out):
    import subprocess
    import sys
    folder = str(fixtures_dir / "official-stylegan")
    if backend == keras.backend.backend():       # this process's own backend: no second process needed
        script = {"__name__": "backend_outputs"}
        exec(_BACKEND_OUTPUTS, script)
        script["outputs"](folder, str(out))
    else:
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, KERAS_BACKEND=backend,
                   PYTHONPATH=os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p))
        proc = subprocess.run([sys.executable, "-c", _BACKEND_OUTPUTS, folder, str(out)], env=env, cwd=repo,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{backend} run failed:\n{proc.stderr[-3000:]}"
    results = dict(np.load(out))
    assert str(results.pop("backend")) == backend
    return results


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="compares JAX against TensorFlow: runs in the "
                    "TensorFlow suite")
def test_jax_backend_matches_tensorflow(fixtures_dir, tmp_path):
    """The layers and networks are written in keras.ops, so Keras' JAX backend computes the same G and D: the
    official fixture networks agree with TensorFlow to float round-off (measured 3.3e-6 of the output range)."""
    import importlib.util
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed (pip install jax) - the JAX backend cannot be compared")
    jax_out = _backend_outputs("jax", fixtures_dir, tmp_path / "jax.npz")
    tf_out = _backend_outputs("tensorflow", fixtures_dir, tmp_path / "tf.npz")
    assert sorted(jax_out) == sorted(tf_out)
    for key, ref in tf_out.items():
        got = jax_out[key]
        assert got.shape == ref.shape, key
        err = np.abs(got - ref).max() / np.abs(ref).max()
        assert err <= 2e-5, f"{key}: JAX differs from TensorFlow by {err:.2e} of the output range"
