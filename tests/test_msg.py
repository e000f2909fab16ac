"""MSG-GAN and MSG-StyleGAN (networks/msg.py): every level's output from G, the MSG discriminator and its combine
functions, the pyramid reader, a few `fit` steps through the training library, snapshots."""
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from stylegan_tf.data import DatasetWriter, build_pyramid, open_dataset  # noqa: E402
from stylegan_tf.networks.channels import nf  # noqa: E402
from stylegan_tf.networks.msg import (COMBINES, MSGDiscriminator, MSGGenerator, MSGProGANGenerator,  # noqa: E402
                                      progan_generator_kwargs)

RES = 32
LEVELS = [4, 8, 16, 32]
WIDTH = dict(fmap_base=64, fmap_max=16)
STYLE = dict(latent_size=16, dlatent_size=16, mapping_layers=2, mapping_fmaps=16)


def make_g(cls):
    kw = dict(resolution=RES, num_channels=3, **WIDTH)
    kw.update(STYLE if cls is MSGGenerator else dict(latent_size=16))
    return cls(**kw)


def z(n=4, seed=0):
    return np.random.RandomState(seed).randn(n, 16).astype(np.float32)


@pytest.mark.parametrize("cls", [MSGGenerator, MSGProGANGenerator])
def test_generator_returns_every_level_and_the_discriminator_consumes_them(cls):
    G = make_g(cls)
    train = G(z(), training=True, seed=tf.constant([1, 2], tf.int64))
    assert [tuple(x.shape) for x in train] == [(4, r, r, 3) for r in LEVELS]
    levels = G(z(), noise_mode="const")
    # The numpy inference API (generate.py, metrics, fakes grids) gives the full-resolution image: the last level.
    np.testing.assert_allclose(G.run(z()), levels[-1], rtol=1e-4, atol=1e-4)  # graph vs eager round-off
    for combine in COMBINES:
        D = MSGDiscriminator(resolution=RES, num_channels=3, **WIDTH, combine=combine)
        scores = D(levels)
        assert tuple(scores.shape) == (4, 1) and np.all(np.isfinite(scores))
        # One full-resolution batch is box-downsampled to the pyramid first (D.run's input).
        box = [levels[-1]]
        for _ in LEVELS[:-1]:
            box.insert(0, tf.nn.avg_pool2d(box[0], 2, 2, "VALID"))
        np.testing.assert_allclose(D(levels[-1]), D(box), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(D.run(np.asarray(levels[-1])), D(box), rtol=1e-5, atol=1e-6)
        # Multi-scale gradients: D's score reaches every level's ToRGB of G directly.
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(D(G(z(), noise_mode="const")))
        torgbs = [layer.trainable_variables for layer in G.synthesis.torgbs]
        grads = tape.gradient(total, torgbs)
        assert all(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for level in grads for g in level)
    with pytest.raises(ValueError, match="no progressive growing"):
        G(z(), level=1)
    with pytest.raises(ValueError, match="expected images"):
        D(levels[1:])


def test_multi_scale_is_the_synthesis_network_s_own_levels():
    # MSG-StyleGAN reuses StyleGAN's synthesis: each multi-scale output is exactly what the unchanged
    # SynthesisNetwork.call gives at that level (no fade), and the top one is its full-resolution image.
    G = make_g(MSGGenerator)
    w = G.mapping(z())
    levels = G.synthesis.multi_scale(w, noise_mode="const")
    np.testing.assert_array_equal(levels[-1], G.synthesis(w, lod=0.0, level=None, noise_mode="const"))
    for k in range(len(LEVELS)):
        np.testing.assert_array_equal(levels[-1 - k], G.synthesis(w, lod=0.0, level=k, noise_mode="const",
                                                                  fade=False))
    # The same variables as StyleGAN's Generator: an MSG-StyleGAN G is a StyleGAN G with a multi-scale call.
    from stylegan_tf.networks import Generator
    plain = Generator(resolution=RES, num_channels=3, **WIDTH, **STYLE)
    assert [v.path.split("/", 1)[1] for v in plain.weights] == [v.path.split("/", 1)[1] for v in G.weights]


def test_msg_progan_generator_is_progan_s_configuration():
    G = make_g(MSGProGANGenerator)
    s = G.synthesis
    assert G.mapping.dense_layers == [] and G.mapping.normalize_latents
    assert not s.use_styles and not s.const_input_layer and not s.use_noise and s.blur_filter is None
    assert s.use_pixel_norm and not s.use_instance_norm and s.noise_buffers == []
    assert G.style_mixing_prob is None and G.dlatent_size == 16
    # conditional: the labels are embedded and concatenated to z, so w is twice as wide
    assert progan_generator_kwargs(16, label_size=3)["dlatent_size"] == 32
    # a snapshot rebuilds it from its config (Gs is made this way too)
    clone = MSGProGANGenerator.from_config(G.get_config())
    assert type(clone) is MSGProGANGenerator and clone.count_params() == G.count_params()


def _expected_d_params(combine, C=3):
    """MSGDiscriminator's parameter count at RES, counted from the architecture (not from the code)."""
    f = lambda s: nf(s, WIDTH["fmap_base"], 1.0, WIDTH["fmap_max"])  # noqa: E731
    L = int(math.log2(RES))
    total = C * f(L - 1) + f(L - 1)                      # FromRGB (1x1 conv + bias) of the top image
    extra = 0                                            # channels the last combine added
    for res in range(L, 2, -1):
        mid, out = f(res - 1), f(res - 2)
        total += 9 * (mid + extra) * mid + mid + 9 * mid * out + out      # Conv0, Conv1_down (+ biases)
        # then the image at res-1 joins the `out` features
        if combine == "cat":
            extra = C
        elif combine == "lin_cat":
            total += C * out                             # r': 1x1 linear conv, image -> `out` channels
            extra = out
        else:
            total += (out + C) * out                     # r': 1x1 linear conv over [image; features]
            extra = 0
    conv = f(1)
    total += 9 * (conv + extra + 1) * conv + conv        # 4x4 Conv after minibatch stddev (+1 channel)
    total += conv * 16 * f(0) + f(0) + f(0) * 1 + 1      # Dense0, Dense1
    return total


def test_combine_function_parameter_counts():
    counts = {}
    for combine in COMBINES:
        D = MSGDiscriminator(resolution=RES, num_channels=3, **WIDTH, combine=combine)
        counts[combine] = D.count_params() - 1           # minus the non-trainable `lod`
        assert counts[combine] == _expected_d_params(combine), combine
        assert sum(int(np.prod(v.shape)) for v in D.trainable_variables) == counts[combine]
    # phi_simple adds 3 input channels per scale; lin_cat a 3 -> C' conv and C' channels; cat_lin stays narrow
    assert counts["cat_lin"] < counts["cat"] < counts["lin_cat"]
    assert (counts["cat"], counts["lin_cat"]) == (14525, 18749)
    with pytest.raises(ValueError, match="combine must be one of"):
        MSGDiscriminator(resolution=RES, num_channels=3, combine="sum")


# ------------------------------------------------------------------ the pyramid reader
@pytest.fixture(scope="module")
def random_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("msg-reader") / "ds"
    folder.mkdir()
    images = np.random.RandomState(0).randint(0, 256, [12, 3, 16, 16]).astype(np.uint8)
    labels = np.eye(12, dtype=np.float32)            # label i names image i
    with DatasetWriter(str(folder), "ds", 16, 3) as w:
        for im in images:
            w.add(build_pyramid(im))
        w.write_labels(labels)
    return open_dataset(folder), images


def _u8(x):
    return np.rint((np.asarray(x) + 1.0) * 127.5).astype(np.float32)


def test_pyramid_reader_yields_aligned_levels(random_dataset):
    info, images = random_dataset
    ds = info.make_tf_dataset(16, batch_size=4, mirror=True, shuffle=True, repeat=False, seed=3, pyramid=True)
    assert [s.shape.as_list() for s in ds.element_spec[0]] == [[None, r, r, 3] for r in (4, 8, 16)]
    order, flips = [], []
    for levels, labels in ds:
        top = _u8(levels[-1])
        for k, level in enumerate(reversed(levels)):
            # Each level is the stored one, i.e. the rounded box mean of the same (mirrored) full image.
            f = 2 ** k
            box = top.reshape(len(top), 16 // f, f, 16 // f, f, 3).mean(axis=(2, 4))
            np.testing.assert_array_equal(_u8(level), np.rint(box))
        for img, lab in zip(top, labels.numpy()):
            i = int(np.argmax(lab))                      # labels travel with their images too
            ref = images[i].transpose(1, 2, 0).astype(np.float32)
            flipped = np.array_equal(img, ref[:, ::-1])
            assert flipped or np.array_equal(img, ref)
            order.append(i)
            flips.append(flipped)
    assert sorted(order) == list(range(12)) and order != list(range(12))  # shuffled, all there
    assert 1 <= sum(flips) <= 11                                            # mirrored, some


def test_pyramid_reader_at_a_lower_resolution_and_repeat(random_dataset):
    info, _ = random_dataset
    ds = info.make_tf_dataset(8, batch_size=5, seed=1, pyramid=True)
    assert [s.shape.as_list() for s in ds.element_spec[0]] == [[5, 4, 4, 3], [5, 8, 8, 3]]
    assert len(list(ds.take(3))) == 3                    # 15 > 12 images: repeats with full batches


# ------------------------------------------------------------------ training, snapshots
@pytest.fixture(scope="module")
def faces(demo_dataset):
    return demo_dataset(resolution=32, count=16)


def _opts(arch, data, outdir, **kw):
    from stylegan_tf.training.options import TrainingOptions
    return TrainingOptions.for_arch(arch, data=data, outdir=str(outdir), minibatch=4, tick_kimg=0.008,
                                    snap_ticks=1, minibatch_repeats=1, progress=False, mirror=True, seed=7,
                                    **WIDTH, **STYLE, **kw)


def _all_state(model):
    out = [w.numpy() for net in (model.G, model.D, model.Gs) for w in net.weights]
    return out + [v.numpy() for opt in (model.g_optimizer, model.d_optimizer) for v in opt.variables]


# Fit steps of both archs (pyramid reals, mirror, the arch's loss), snapshot -> resume N+M == N+M straight, and the
# snapshot through load_network. msg-stylegan costs StyleGAN's R1 double backprop: the slow case.
@pytest.mark.parametrize("arch", ["msggan", pytest.param("msg-stylegan", marks=pytest.mark.slow)])
def test_fit_resume_is_exact_and_the_snapshot_loads(arch, faces, tmp_path):
    import stylegan_tf
    from stylegan_tf.training.training_loop import training_loop

    assert _opts(arch, faces, tmp_path).loss == ("ra-hinge" if arch == "msggan" else "logistic")
    assert _opts(arch, faces, tmp_path).lrate == 0.003
    full = training_loop(_opts(arch, faces, tmp_path / "a", total_kimg=0.016))
    first = training_loop(_opts(arch, faces, tmp_path / "b", total_kimg=0.008))
    resumed = training_loop(_opts(arch, faces, tmp_path / "b", total_kimg=0.016, resume="auto"))
    assert resumed.run_dir == first.run_dir and resumed.state.nimg == 16 and resumed.state.step == 4
    hist = full.history.history
    assert all(np.isfinite(hist[k]).all() for k in ("G_loss", "D_loss", "real_score", "fake_score"))
    model = full.model
    assert type(model.G).arch_name == arch and isinstance(model.D, MSGDiscriminator)
    assert int(model.g_optimizer.iterations) == int(model.d_optimizer.iterations) == 4
    a, b = _all_state(model), _all_state(resumed.model)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)

    nets = stylegan_tf.load_network(full.snapshots[-1])
    assert type(nets.Gs) is type(model.G)
    for net, saved in ((model.G, nets.G), (model.D, nets.D), (model.Gs, nets.Gs)):
        assert len(net.weights) == len(saved.weights)
        for x, y in zip(net.weights, saved.weights):
            np.testing.assert_array_equal(x, y)
    np.testing.assert_allclose(nets.Gs.run(z()), model.Gs.run(z()), rtol=1e-4, atol=1e-4)  # two graphs' round-off
    levels = nets.G(z(), noise_mode="const")
    assert [tuple(x.shape) for x in levels] == [(4, r, r, 3) for r in LEVELS]
    np.testing.assert_allclose(nets.D(levels), model.D(levels), atol=1e-5)


def test_networks_file_round_trip(tmp_path):
    import stylegan_tf
    from stylegan_tf.network_io import save_network
    from stylegan_tf.networks import Networks

    G = make_g(MSGGenerator)
    D = MSGDiscriminator(resolution=RES, num_channels=3, **WIDTH, combine="lin_cat")
    levels = G(z(), noise_mode="const")
    scores = D(levels)
    path = str(tmp_path / "msg.keras")
    save_network(Networks(G, D, G), path)
    nets = stylegan_tf.load_network(path)
    assert type(nets.G) is MSGGenerator and nets.D.combine == "lin_cat"
    for a, b in zip(nets.G(z(), noise_mode="const"), levels):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(nets.D(levels), scores)
