"""The architecture registry and DCGAN: every registered arch builds and trains through the same `training_loop`;
DCGAN's reference parameter counts, exact resume, snapshots through load_network and generate.py, conditional
DCGAN, --subset-class, WikiArtGAN's recipe on the command line, StyleGAN-only figures refused. Tiny networks (32x32,
<= 16 maps)."""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from conftest import TINY_DCGAN
from conftest import TINY_NET as TINY
from stylegan_tf.networks.archs import arch_names, get_arch
from stylegan_tf.training import TrainingOptions, training_loop

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny(arch):
    """Tiny widths for every arch, by the flags that size it."""
    return dict(TINY_DCGAN) if get_arch(arch).sizing == "width" else dict(TINY)


def _count(net):
    return int(sum(np.prod(v.shape) for v in net.trainable_weights))


@pytest.fixture(scope="module")
def dataset(demo_dataset):
    return demo_dataset(resolution=32, count=48)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    from stylegan_tf.data import create_demo
    path = str(tmp_path_factory.mktemp("labelled") / "faces")
    create_demo(path, count=48, resolution=32, seed=0, label_attribute="hair_color", progress=False, workers=1)
    return path


def _opts(arch, data, outdir, **kw):
    base = dict(data=data, outdir=str(outdir), resolution=32, minibatch=4, minibatch_repeats=1, tick_kimg=0.016,
                snap_ticks=100,
                progress=False, seed=5, lod_initial_resolution=32, **_tiny(arch))
    base.update(kw)
    return TrainingOptions.for_arch(arch, **base)


def test_dcgan_reference_network_has_the_tutorial_parameter_counts():
    """The PyTorch DCGAN tutorial's 64x64 network (z 100, ngf = ndf = 64, bias-free convs)."""
    from stylegan_tf.networks.dcgan import DCGANDiscriminator, DCGANGenerator
    G = DCGANGenerator(resolution=64, num_channels=3, latent_size=100, width=64)
    D = DCGANDiscriminator(resolution=64, num_channels=3, width=64)
    assert (_count(G), _count(D)) == (3_576_704, 2_765_568)
    # and the registered arch's defaults build exactly that network
    G2, D2 = get_arch("dcgan").build(TrainingOptions.for_arch("dcgan"), 64, 3, 0)
    assert (_count(G2), _count(D2)) == (3_576_704, 2_765_568)
    # the paper's init: N(0, 0.02) weights, BatchNorm gamma ~ N(1, 0.02); none on D's input layer
    k = G.dense.kernel.numpy()
    assert abs(k.std() - 0.02) < 1e-3 and abs(k.mean()) < 1e-3
    assert D.norms[0] is None and all(n is not None for n in D.norms[1:])


def test_dcgan_networks_round_trip_through_load_network(tmp_path):
    import stylegan_tf
    from stylegan_tf.network_io import save_network
    from stylegan_tf.networks import Networks
    from stylegan_tf.networks.dcgan import DCGANDiscriminator, DCGANGenerator
    G = DCGANGenerator(resolution=32, num_channels=3, label_size=2, latent_size=8, width=4)
    D = DCGANDiscriminator(resolution=32, num_channels=3, label_size=2, width=4)
    x = np.random.RandomState(1).randn(3, 8).astype(np.float32)
    lab = np.eye(2, dtype=np.float32)[[0, 1, 0]]
    G(x, lab, training=True)        # moves the BatchNorm statistics away from their initial values
    path = str(tmp_path / "dcgan.keras")
    save_network(Networks(G, D, G), path)
    nets = stylegan_tf.load_network(path)
    np.testing.assert_allclose(nets.Gs.run(x, lab), G.run(x, lab), atol=1e-6)
    np.testing.assert_allclose(nets.D.run(G.run(x, lab), lab), D.run(G.run(x, lab), lab), atol=1e-6)
    assert nets.Gs.arch_name == "dcgan" and nets.Gs.get_config() == G.get_config()


@pytest.mark.parametrize("res", [32, 128])
def test_dcgan_any_power_of_two_resolution(res):
    from stylegan_tf.networks.dcgan import DCGANDiscriminator, DCGANGenerator
    G = DCGANGenerator(resolution=res, num_channels=1, latent_size=8, width=2, fmap_max=8)
    D = DCGANDiscriminator(resolution=res, num_channels=1, width=2, fmap_max=8)
    x = G(np.random.RandomState(0).randn(2, 8).astype(np.float32), training=True)
    assert tuple(x.shape) == (2, res, res, 1) and float(np.abs(x).max()) <= 1.0     # tanh out
    assert tuple(D(x, training=True).shape) == (2, 1)


@pytest.mark.parametrize("arch", arch_names())
def test_each_arch_builds_at_32_with_tiny_widths(arch):
    spec = get_arch(arch)
    G, D = spec.build(TrainingOptions.for_arch(arch, **_tiny(arch)), 32, 3, 0)
    z = np.random.RandomState(0).randn(2, G.latent_size).astype(np.float32)
    out = G(z, training=False)
    if spec.data == "pyramid":
        assert [tuple(x.shape) for x in out] == [(2, r, r, 3) for r in (4, 8, 16, 32)]
    else:
        assert tuple(out.shape) == (2, 32, 32, 3)
    assert tuple(D(out, training=False).shape) == (2, 1)
    assert G.run(z).shape == (2, 32, 32, 3)
    assert max(_count(G), _count(D)) < 200_000


# StyleGAN's own fit is tested at length in test_train.py; here it is the slow case of the same loop.
@pytest.mark.parametrize("arch", [pytest.param(a, marks=pytest.mark.slow) if a == "stylegan" else a
                                  for a in arch_names()])
def test_each_arch_trains_a_few_fit_steps(arch, dataset, tmp_path):
    res = training_loop(_opts(arch, dataset, tmp_path, total_kimg=0.008))
    assert res.stopped_by == "done" and res.state.nimg == 8 and res.snapshots
    files = set(os.listdir(res.run_dir))
    assert {"training_options.json", "log.txt", "reals.png", "stats.jsonl"} <= files
    assert any(f.startswith("fakes") for f in files) and any(f.startswith("events.out") for f in files)
    options = json.load(open(os.path.join(res.run_dir, "training_options.json")))
    assert options["arch"] == arch
    stats = [json.loads(line) for line in open(os.path.join(res.run_dir, "stats.jsonl"))]
    assert all(np.isfinite(s["G_loss"]) and np.isfinite(s["D_loss"]) for s in stats)
    # the snapshot draws NVIDIA's seed -> z images in generate.py
    from PIL import Image
    import stylegan_tf
    from stylegan_tf.generate.seeds import seeds_to_z
    sys.path.insert(0, REPO)
    import generate
    assert generate.main(["images", "--network", res.snapshots[-1], "--seeds", "5", "--trunc", "1",
                          "--outdir", str(tmp_path / "img"), "--no-progress"]) == 0
    img = np.asarray(Image.open(tmp_path / "img" / "seed0005.png")).astype(int)
    z = seeds_to_z([5], res.model.Gs.latent_size)
    Gs = stylegan_tf.load_network(res.snapshots[-1]).Gs
    expect = np.clip(np.rint((Gs.run(z, truncation_psi=1.0)[0] + 1) * 127.5), 0, 255)
    assert np.abs(img - expect).max() <= 1


@pytest.mark.parametrize("loss", ["wgan-gp", "hinge"])
def test_dcgan_trains_with_the_loss_registry(loss, dataset, tmp_path):
    res = training_loop(_opts("dcgan", dataset, tmp_path, total_kimg=0.008, loss=loss))
    stats = json.loads(open(os.path.join(res.run_dir, "stats.jsonl")).readline())
    assert np.isfinite(stats["D_loss"]) and ("gp" in stats) == (loss == "wgan-gp")


def _all_state(model):
    out = [w.numpy() for net in (model.G, model.D, model.Gs) for w in net.weights]
    return out + [v.numpy() for opt in (model.g_optimizer, model.d_optimizer) for v in opt.variables]


def test_dcgan_resume_is_exact_and_batchnorm_statistics_train(dataset, tmp_path):
    kw = dict(mirror=True)
    full = training_loop(_opts("dcgan", dataset, tmp_path / "a", total_kimg=0.032, **kw))
    first = training_loop(_opts("dcgan", dataset, tmp_path / "b", total_kimg=0.016, **kw))
    resumed = training_loop(_opts("dcgan", dataset, tmp_path / "b", total_kimg=0.032, resume="auto", **kw))
    assert resumed.run_dir == first.run_dir and resumed.state.nimg == 32 and resumed.state.step == 8
    a, b = _all_state(full.model), _all_state(resumed.model)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    # BatchNorm's moving statistics are updated by the training calls, and Gs is a copy of G (DCGAN has no EMA)
    G = full.model.G
    moving = [w for w in G.non_trainable_weights if "moving_mean" in w.path]
    assert moving and any(np.abs(w.numpy()).max() > 0 for w in moving)
    assert full.model.g_smoothing_kimg == 0.0
    assert full.model.d_optimizer.beta_1 == 0.5 and full.model.d_optimizer.learning_rate.numpy() == pytest.approx(2e-4)


def test_dcgan_snapshot_loads_and_generate_py_draws_nvidia_seeds(dataset, tmp_path, capsys):
    import stylegan_tf
    from stylegan_tf.generate.seeds import seeds_to_z
    res = training_loop(_opts("dcgan", dataset, tmp_path, total_kimg=0.008, metrics=["swd1k"]))
    assert "swd1k: {" in open(os.path.join(res.run_dir, "log.txt")).read()      # --metrics on its snapshots
    nets = stylegan_tf.load_network(res.snapshots[-1])
    assert type(nets.Gs).__name__ == "DCGANGenerator" and type(nets.D).__name__ == "DCGANDiscriminator"
    z = seeds_to_z([3, 7], nets.Gs.latent_size)
    np.testing.assert_allclose(nets.Gs.run(z), res.model.Gs.run(z), atol=1e-6)
    for a, b in zip(nets.D.weights, res.model.D.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    sys.path.insert(0, REPO)
    import generate
    out = tmp_path / "imgs"
    assert generate.main(["images", "--network", res.snapshots[-1], "--seeds", "3,7", "--outdir", str(out),
                          "--no-progress"]) == 0
    from PIL import Image
    img = np.asarray(Image.open(out / "seed0003.png"))
    expect = np.clip(np.rint((nets.Gs.run(z[:1])[0] + 1) * 127.5), 0, 255).astype(np.uint8)
    assert np.abs(img.astype(int) - expect.astype(int)).max() <= 1
    for cmd, args in (("z-walk", ["--seed", "1", "--dims", "0,1", "--scale", "-2:2:3"]),
                      ("interpolate", ["--seeds", "0,1", "--frames", "2"]),
                      ("uncurated", ["--seed", "0", "--rows", "1"])):
        ext = ".gif" if cmd == "interpolate" else ".png"
        assert generate.main([cmd, "--network", res.snapshots[-1], "--no-progress", *args,
                              "--out", str(tmp_path / (cmd + ext))]) == 0, cmd
    capsys.readouterr()
    # StyleGAN-only figures: one line, nothing written
    assert generate.main(["style-mixing", "--network", res.snapshots[-1], "--row-seeds", "1", "--col-seeds", "2",
                          "--out", str(tmp_path / "mix.png")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "style-mixing" in err[0] and "dcgan" in err[0]
    assert not (tmp_path / "mix.png").exists()


def test_conditional_dcgan_and_subset_class(labelled, tmp_path, capsys):
    res = training_loop(_opts("dcgan", labelled, tmp_path / "cond", total_kimg=0.008))
    assert res.model.G.label_size == 9 and res.model.D.label_size == 9
    # one class: only its images, unconditional networks
    from stylegan_tf.data import open_dataset
    from stylegan_tf.training.prepare import subset_class
    info = open_dataset(labelled)
    view = subset_class(info, "red", labelled)
    red = int(info.labels[:, info.label_names.index("red")].sum())
    assert view.num_images == red
    seen = sum(len(b) for b in view.iterate_uint8())
    batch = next(iter(view.make_tf_dataset(32, batch_size=red, shuffle=False, repeat=False)))
    assert seen == red and tuple(batch[0].shape) == (red, 32, 32, 3) and tuple(batch[1].shape) == (red, 0)
    sub = training_loop(_opts("dcgan", labelled, tmp_path / "sub", total_kimg=0.008, subset_class="3"))
    # The run directory names the class as the dataset does.
    assert sub.model.G.label_size == 0 and f"-class{info.label_names[3]}-" in os.path.basename(sub.run_dir)

    sys.path.insert(0, REPO)
    import train
    capsys.readouterr()
    assert train.main(["--arch", "dcgan", "--data", labelled, "--subset-class", "mauve", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--subset-class 'mauve' is not a class" in err[0] and "red" in err[0]
    assert train.main(["--arch", "dcgan", "--data", labelled, "--subset-class", "12", "--dry-run"]) == 2
    assert "has classes 0..8" in capsys.readouterr().err


def test_subset_class_of_an_unlabelled_dataset_is_one_line(dataset, capsys):
    sys.path.insert(0, REPO)
    import train
    assert train.main(["--arch", "dcgan", "--data", dataset, "--subset-class", "0", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no labels" in err[0]


def test_train_py_expresses_the_seed_recipe_and_prints_parameter_counts(dataset, capsys):
    sys.path.insert(0, REPO)
    import train
    argv = ["--arch", "dcgan", "--data", dataset, "--minibatch", "128", "--latent-size", "128", "--lrate", "0.001"]
    opts = train.build_options(train.parse_args(argv))
    assert (opts.minibatch, opts.latent_size, opts.lrate) == (128, 128, 0.001)
    assert (opts.adam_beta1, opts.adam_beta2, opts.gamma, opts.width) == (0.5, 0.999, 0.0, 64)   # the paper's
    assert train.main(argv + ["--dry-run"]) == 0
    out = capsys.readouterr().out
    # 32x32, z 128, width 64: G 128*4096 + 256*128*16 + 128*64*16 + 64*3*16 + BN, D 3*64*16 + 64*128*16 + ...
    from stylegan_tf.networks.dcgan import DCGANDiscriminator, DCGANGenerator
    g = _count(DCGANGenerator(resolution=32, latent_size=128, width=64))
    d = _count(DCGANDiscriminator(resolution=32, width=64))
    assert f"Networks (dcgan): G {g:,} and D {d:,} trainable parameters" in out
    assert '"lrate": 0.001' in out and "0.001" in out.split("Schedule")[1]
    # StyleGAN's defaults are unchanged, and its dry run prints its counts too
    assert train.main(["--data", dataset, "--dry-run", "--fmap-max", "16"]) == 0
    out = capsys.readouterr().out
    assert "Networks (stylegan): G " in out and '"adam_beta1": 0.0' in out
    assert train.main(["--arch", "nope", "--data", dataset]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--arch 'nope' is unknown" in err[0] and "dcgan" in err[0]
    assert train.main(["--arch", "dcgan", "--config", "configB", "--data", dataset]) == 2
    assert "does not apply to --arch dcgan" in capsys.readouterr().err


def test_stylegan_fingerprint_is_unchanged_by_the_new_options(dataset):
    """Runs started before --arch existed are still found by --resume auto."""
    from stylegan_tf.training.options import FINGERPRINT_KEYS, fingerprint
    import hashlib
    opts = TrainingOptions(data=dataset)
    d = {k: getattr(opts, k) for k in FINGERPRINT_KEYS}
    d["data"] = os.path.abspath(dataset)
    assert fingerprint(opts, dataset) == hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
    assert fingerprint(TrainingOptions.for_arch("dcgan", data=dataset), dataset) != fingerprint(opts, dataset)


def test_mbstd_group_size_option_reaches_d_and_must_split_the_minibatch():
    from stylegan_tf.training.options import run_description, validate

    def group(**kw):
        _, D = get_arch(kw.get("arch", "stylegan")).build(TrainingOptions(**TINY, **kw), 8, 3, 0)
        return D.get_config()["mbstd_group_size"]
    assert group() == 4                                             # the official value
    assert group(mbstd_group_size=16) == 16 and group(arch="msg-stylegan", mbstd_group_size=1) == 1
    assert group(arch="msggan", mbstd_group_size=8) == 8
    assert "mbstd16" in run_description(TrainingOptions(mbstd_group_size=16), "faces", 32)
    assert not validate(TrainingOptions(mbstd_group_size=16, minibatch=16))
    assert not validate(TrainingOptions(mbstd_group_size=32, minibatch=16))   # min(G, minibatch), as the original
    for bad, what in (({"mbstd_group_size": 3, "minibatch": 16}, "--mbstd-group-size 3: the minibatch per GPU (16)"),
                      ({"mbstd_group_size": 16, "minibatch": 24}, "(24)"),
                      ({"mbstd_group_size": 8, "minibatch": 24, "gpus": 2}, "(12)"),
                      ({"mbstd_group_size": 3}, "(4, 8, 16, 32, 64, 128)"),   # the 1-GPU preset's minibatches
                      ({"mbstd_group_size": 0}, "--mbstd-group-size 0 is out of range"),
                      ({"mbstd_group_size": 4, "arch": "dcgan", **TINY_DCGAN}, "not --arch dcgan")):
        errs = validate(TrainingOptions(**bad))
        assert len([e for e in errs if what in e]) == 1, errs


def test_style_mixing_prob_option_overrides_the_config_and_is_refused_without_styles():
    from stylegan_tf.networks.style_mixing import mixing_cutoff
    from stylegan_tf.training.options import run_description, validate

    def prob(**kw):
        G, _ = get_arch(kw.get("arch", "stylegan")).build(TrainingOptions(**TINY, **kw), 8, 3, 0)
        return G.style_mixing_prob
    assert prob() == 0.9 and prob(config="configE") == 0.0        # the configs' own (official) values
    assert prob(style_mixing_prob=0.5) == 0.5 and prob(config="configE", style_mixing_prob=0.3) == 0.3
    assert prob(arch="msg-stylegan", style_mixing_prob=0.2) == 0.2
    # p = 0 never mixes: the cutoff is then every active layer, whatever the draw.
    assert {int(mixing_cutoff(8, 0.0, 0.0, seed=np.array([s, 1]))) for s in range(20)} == {8}
    assert "mix0.5" in run_description(TrainingOptions(style_mixing_prob=0.5), "faces", 32)
    for bad, what in (({"style_mixing_prob": 1.5}, "--style-mixing-prob 1.5"),
                      ({"style_mixing_prob": 0.5, "arch": "dcgan"}, "--arch dcgan has no styles"),
                      ({"style_mixing_prob": 0.5, "config": "configB"}, "--config configB has no styles")):
        errs = validate(TrainingOptions(**bad))
        assert len([e for e in errs if what in e]) == 1, errs
    assert not validate(TrainingOptions(style_mixing_prob=0.0))
    # The demo mixes at its own p, but a config with its own mixing (configB-E: none) keeps it, and is not refused.
    assert TrainingOptions.for_arch(demo=True).style_mixing_prob == 0.2
    for config in ("configE", "configB", "progan"):
        opts = TrainingOptions.for_arch(demo=True, config=config)
        assert opts.style_mixing_prob is None and not validate(opts), (config, validate(opts))
    G, _ = get_arch("stylegan").build(TrainingOptions.for_arch(demo=True, config="configE", **TINY), 8, 3, 0)
    assert G.style_mixing_prob == 0.0


def test_an_architecture_registered_in_one_place_trains(dataset, tmp_path, capsys):
    """A new architecture is one `register_arch` call (here, in this file, on networks of this file): train.py
    lists it, its declared facts decide what applies, a run trains it and generate's style figures refuse it."""
    import keras

    from stylegan_tf.networks import archs
    from stylegan_tf.networks.dcgan import DCGANDiscriminator, DCGANGenerator

    @keras.saving.register_keras_serializable(package="test_archs")
    class ToyG(DCGANGenerator):
        arch_name = "toy"

    def build(opts, resolution, num_channels, label_size):
        sizes = dict(resolution=resolution, num_channels=num_channels, label_size=label_size, width=opts.width,
                     fmap_max=opts.fmap_max)
        return ToyG(latent_size=opts.latent_size, **sizes), DCGANDiscriminator(**sizes)

    archs.register_arch("toy", build=build, defaults=dict(width=4, fmap_max=16, latent_size=16, gamma=0.0,
                                                          lrate=0.0005, minibatch=4, minibatch_repeats=1),
                        gs="copy", sizing="width", min_resolution=16, description="a registry test")
    sys.path.insert(0, REPO)
    import train
    try:
        with pytest.raises(SystemExit):
            train.main(["--help"])
        assert "architecture: stylegan, dcgan, msg-stylegan, msggan, toy" in " ".join(capsys.readouterr().out.split())
        assert train.main(["--arch", "toy", "--data", dataset, "--resolution", "8", "--dry-run"]) == 2
        assert "--resolution 8: --arch toy needs 16x16 or more" in capsys.readouterr().err
        assert train.main(["--arch", "toy", "--data", dataset, "--mapping", "v1", "--dry-run"]) == 2
        assert "--arch toy has no styles" in capsys.readouterr().err
        res = training_loop(TrainingOptions.for_arch("toy", data=dataset, outdir=str(tmp_path), resolution=16,
                                                     tick_kimg=0.008, total_kimg=0.008, progress=False))
        assert os.path.basename(res.run_dir) == "00000-toy-faces-16-1gpu" and res.state.nimg == 8
        assert isinstance(res.model.G, ToyG) and res.model.gs_beta == 0.0
        assert res.model.g_optimizer.learning_rate.numpy() == pytest.approx(0.0005)
        assert np.all(np.isfinite(res.history.history["G_loss"]))
        archs.check_figure(res.model.Gs, "images")
        archs.check_figure(res.model.Gs, "a-figure-added-later")     # needs only G(z): every arch draws it
        with pytest.raises(archs.ArchError, match="style-mixing needs a StyleGAN generator .* network is toy"):
            archs.check_figure(res.model.Gs, "style-mixing")
    finally:
        archs._ARCHS.pop("toy", None)


def test_a_resumed_network_brings_its_architecture_and_its_run_options(dataset, tmp_path, capsys):
    """--resume of a DCGAN snapshot without --arch trains DCGAN with its run's gamma, learning rate and Adam (not
    StyleGAN's); an --arch that contradicts the file is refused with one line."""
    first = training_loop(_opts("dcgan", dataset, tmp_path, total_kimg=0.008, lrate=0.0003))
    snapshot = first.snapshots[-1]
    sys.path.insert(0, REPO)
    import train
    argv = ["--data", dataset, "--outdir", str(tmp_path), "--resume", snapshot, "--total-kimg", "0.016",
            "--no-progress"]
    opts = train.build_options(train.parse_args(argv))
    assert (opts.arch, opts.gamma, opts.lrate, opts.adam_beta1, opts.adam_beta2, opts.width) == (
        "dcgan", 0.0, 0.0003, 0.5, 0.999, 4)
    assert train.main(argv) == 0
    run = sorted(os.listdir(tmp_path))[-1]
    with open(tmp_path / run / "training_options.json") as f:
        used = json.load(f)
    assert (used["arch"], used["gamma"], used["lrate"], used["adam_beta1"]) == ("dcgan", 0.0, 0.0003, 0.5)
    assert run.startswith("00001-dcgan-")
    capsys.readouterr()
    assert train.main(argv + ["--arch", "stylegan"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--arch stylegan: --resume {snapshot} holds a dcgan network" in err[0]
    # A run's options built by hand meet the same rule when the file is loaded.
    from stylegan_tf.training import OptionsError
    with pytest.raises(OptionsError, match="holds a dcgan network"):
        training_loop(TrainingOptions(data=dataset, outdir=str(tmp_path / "x"), resume=snapshot, **TINY))
