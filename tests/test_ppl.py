"""Perceptual path length (metrics/perceptual_path_length.py) against a numpy reference of NVIDIA's algorithm:
slerp in Z / lerp in W, the same noise for both images of a pair, the face crop, the box downsampling, LPIPS
(plain numpy, float64), the 1st-99th percentile filter; refusals and the missing-weights line; train.py --metrics
with the perceptual metrics on TensorFlow and on JAX."""
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from conftest import REPO, TINY_DCGAN, TINY_G, TINY_NET
from stylegan_tf.metrics import lpips as lp
from stylegan_tf.metrics import metric_base
from stylegan_tf.metrics import perceptual_path_length as ppl

WIDTHS = (6, 8, 8, 8, 8)


def tiny_lpips_state(seed=0):
    """A VGG16-shaped trunk of few channels (the real layout; not the real widths) and LPIPS heads. Positive biases:
    with so few channels a pixel whose ReLUs are all 0 has a feature direction that float32 round-off decides,
    which would make float32 and float64 disagree at eps = 1e-4 (never with VGG16's 64+ channels)."""
    rng = np.random.RandomState(seed)
    state, cin = {}, 3
    for s, stage in enumerate(lp.STAGES):
        for idx in stage:
            state[f"features.{idx}.weight"] = (rng.randn(WIDTHS[s], cin, 3, 3) * np.sqrt(2 / (9 * cin))).astype(np.float32)
            state[f"features.{idx}.bias"] = (0.2 + 0.05 * rng.randn(WIDTHS[s])).astype(np.float32)
            cin = WIDTHS[s]
        state[f"lin{s}.model.1.weight"] = rng.rand(1, WIDTHS[s], 1, 1).astype(np.float32)
    return state


def lpips_reference(state, a, b):
    """LPIPS of NHWC image pairs in float64 numpy, from its definition (torch layouts)."""
    def conv(x, w, bias):
        n, h, wd, _ = x.shape
        p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        out = sum(p[:, dy:dy + h, dx:dx + wd] @ w[:, :, dy, dx].T.astype(np.float64)
                  for dy in range(3) for dx in range(3))
        return np.maximum(out + bias, 0)

    def feats(x):
        x, out = (x.astype(np.float64) - lp.SHIFT) / lp.SCALE, []
        for s, stage in enumerate(lp.STAGES):
            if s:
                n, h, wd, c = x.shape
                x = x[:, :h // 2 * 2, :wd // 2 * 2].reshape(n, h // 2, 2, wd // 2, 2, c).max(axis=(2, 4))
            for idx in stage:
                x = conv(x, state[f"features.{idx}.weight"], state[f"features.{idx}.bias"])
            out.append(x / (np.sqrt((x ** 2).sum(-1, keepdims=True)) + 1e-10))
        return out

    return sum((((fa - fb) ** 2) * state[f"lin{s}.model.1.weight"].reshape(-1)).sum(-1).mean(axis=(1, 2))
               for s, (fa, fb) in enumerate(zip(feats(a), feats(b))))


def slerp_reference(a, b, t):
    """Slerp by the angle formula: sin((1-t) o)/sin o a + sin(t o)/sin o b of the unit vectors."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    omega = np.arccos(np.clip((a * b).sum(1, keepdims=True), -1, 1))
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def ppl_reference(Gs, state, draw, space, crop, eps):
    """NVIDIA's per-sample distances, written out: latents -> images (the network), crop, LPIPS / eps^2."""
    t = draw["t"][:, None]
    if space == "z":
        z = np.concatenate([slerp_reference(draw["z0"], draw["z1"], t),
                            slerp_reference(draw["z0"], draw["z1"], t + eps)]).astype(np.float32)
        w = Gs.map_latents(z)
    else:
        w0 = Gs.map_latents(draw["z0"].astype(np.float32)).astype(np.float64)
        w1 = Gs.map_latents(draw["z1"].astype(np.float32)).astype(np.float64)
        w = np.concatenate([(1 - t[:, :, None]) * w0 + t[:, :, None] * w1,
                            (1 - t[:, :, None] - eps) * w0 + (t[:, :, None] + eps) * w1]).astype(np.float32)
    images = Gs.synthesize(w, noise=[np.concatenate([m, m]) for m in draw["noise"]])
    a, b = np.split(images, 2)
    if crop:
        r = a.shape[1]
        a, b = a[:, 3 * r // 8:7 * r // 8, r // 4:3 * r // 4], b[:, 3 * r // 8:7 * r // 8, r // 4:3 * r // 4]
    return lpips_reference(state, a, b) / eps ** 2


def filtered_mean_reference(d):
    s = np.sort(d)
    n = len(s)
    lo, hi = s[int(np.floor(0.01 * (n - 1)))], s[int(np.ceil(0.99 * (n - 1)))]
    return s[(s >= lo) & (s <= hi)].mean()


@pytest.fixture(scope="module")
def tiny_lpips():
    state = tiny_lpips_state()
    return state, lp.LPIPS(state)


@pytest.mark.parametrize("space,full,crop", [("z", True, False), ("w", True, True), ("w", False, False)])
def test_path_distances_equal_the_reference(tiny_generator, tiny_lpips, space, full, crop):
    state, net = tiny_lpips
    draw = ppl.draw_pairs(np.random.RandomState(3), tiny_generator, 6, full)
    assert draw["noise"] and all(m.shape[0] == 6 for m in draw["noise"]) and (draw["t"] > 0).all() == full
    # eps 1e-2 here: the float32 round-off of two implementations, amplified by 1/eps^2, stays far below 1e-3.
    got = ppl.path_distances(tiny_generator, net, draw, space, crop, epsilon=1e-2)
    want = ppl_reference(tiny_generator, state, draw, space, crop, 1e-2)
    np.testing.assert_allclose(got, want, rtol=1e-3)


def test_the_metric_equals_the_reference(tiny_generator, tiny_lpips, demo_dataset):
    state, net = tiny_lpips
    data = demo_dataset(resolution=32, count=16)
    gen = types.SimpleNamespace(G=tiny_generator, D=None, Gs=tiny_generator)
    records = metric_base.calc_metrics(gen, "ppl_zfull,ppl_wend_crop", data, num_images=20, batch_size=8,
                                       lpips=net, progress=False, seed=7)
    for record, (space, full, crop) in zip(records, [("z", True, False), ("w", False, True)]):
        rng = np.random.RandomState(7)      # the metric's draws: 4 pairs per batch of 8 images
        draws = [ppl.draw_pairs(rng, tiny_generator, min(4, 20 - s), full) for s in range(0, 20, 4)]
        want = filtered_mean_reference(np.concatenate([ppl_reference(tiny_generator, state, d, space, crop, 1e-4)
                                                       for d in draws]))
        # At eps 1e-4, float32 images 1e-4 apart: a few 1e-3 of the distance between two implementations.
        assert record["results"][record["metric"]] == pytest.approx(want, rel=2e-2)
        assert record["metric"] in ("ppl_zfull", "ppl_wend_crop") and want > 0


def test_percentiles_and_box_downsampling():
    d = np.random.RandomState(0).lognormal(size=301)
    d[:3], d[-3:] = 1e-9, 1e9      # outliers on both sides, fewer than 1 % each
    assert ppl.filtered_mean(d) == pytest.approx(filtered_mean_reference(d), rel=1e-12)
    assert ppl.filtered_mean(d) < 100
    x = np.random.RandomState(1).rand(2, 512, 512, 3)
    want = np.array([[[x[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2, c].mean() for c in range(3)] for j in range(0, 256, 51)]
                     for n in range(2) for i in (0, 7)])
    got = ppl.box_downsample_to(x)
    assert got.shape == (2, 256, 256, 3)
    np.testing.assert_allclose(got[:, [0, 7]][:, :, ::51].reshape(want.shape), want, rtol=1e-12)
    assert ppl.box_downsample_to(x[:, :256, :256]) is not None and ppl.box_downsample_to(x[:, :200, :200]).shape[1] == 200


def test_per_level_mapping_moves_every_level(tiny_lpips):
    from stylegan_tf.networks import Generator
    state, net = tiny_lpips
    G = Generator(**TINY_G, mapping="v1")
    G(np.zeros([1, TINY_G["latent_size"]], np.float32))
    draw = ppl.draw_pairs(np.random.RandomState(2), G, 3, True)
    w0 = G.map_latents(draw["z0"].astype(np.float32))
    assert not np.allclose(w0[:, 0], w0[:, -1])          # one style per level: W's rows differ
    np.testing.assert_allclose(ppl.path_distances(G, net, draw, "w", epsilon=1e-2),
                               ppl_reference(G, state, draw, "w", False, 1e-2), rtol=1e-3)


def test_dcgan_has_z_only(tiny_lpips):
    from stylegan_tf.networks.dcgan import DCGANGenerator
    _, net = tiny_lpips
    G = DCGANGenerator(resolution=16, num_channels=3, **TINY_DCGAN)
    gen = types.SimpleNamespace(G=G, D=None, Gs=G)
    ctx = metric_base.MetricContext(G, None, batch_size=8, progress=False, num_images=4, lpips=net)
    with pytest.raises(metric_base.MetricError, match="ppl_wend: --arch dcgan has no intermediate latent space W"):
        metric_base.get_metric("ppl_wend").evaluate(ctx)
    value = metric_base.get_metric("ppl_zfull").evaluate(ctx)["ppl_zfull"]
    draw = ppl.draw_pairs(np.random.RandomState(0), G, 4, True)
    assert not draw["noise"] and np.isfinite(value) and value > 0
    del gen


def test_cli_without_weights_is_one_line(tiny_network_path, demo_dataset, tmp_path, monkeypatch, capsys):
    import urllib.error
    import urllib.request

    from stylegan_tf.metrics import vgg16
    from stylegan_tf.metrics.__main__ import main

    def refuse(*_a, **_k):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(vgg16, "_lpips_package_file", lambda: None)
    monkeypatch.setenv("STYLEGAN_TF_CACHE", str(tmp_path / "cache"))
    for spec in vgg16.FILES.values():
        monkeypatch.delenv(spec["env"], raising=False)
    code = main(["--network", tiny_network_path, "--data", demo_dataset(resolution=32, count=16),
                 "--metrics", "ppl_wend", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    # Both files are missing: the one line names both, with their URLs, cache paths and flags.
    for spec in vgg16.FILES.values():
        assert spec["url"] in err[0] and str(tmp_path / "cache" / spec["name"]) in err[0]
    assert "--vgg16 PATH and --lpips PATH" in err[0] and not (tmp_path / "cache" / "vgg16-397923af.pth").exists()


def test_prepare_metrics_fetches_what_each_metric_needs(tmp_path, monkeypatch):
    """Training calls prepare_metrics at start: a missing VGG16 / LPIPS file fails there, not at a snapshot."""
    import urllib.error
    import urllib.request

    from stylegan_tf.metrics import vgg16

    def refuse(*_a, **_k):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(vgg16, "_lpips_package_file", lambda: None)
    monkeypatch.setenv("STYLEGAN_TF_CACHE", str(tmp_path / "cache"))
    for spec in vgg16.FILES.values():
        monkeypatch.delenv(spec["env"], raising=False)
    assert metric_base.prepare_metrics("swd1k") == ["swd1k"]            # needs nothing
    for names in ("ppl_wend", "pr10k3"):
        with pytest.raises(vgg16.WeightsMissing, match="vgg16-397923af.pth"):
            metric_base.prepare_metrics(names)
    vgg_file, heads_file = tiny_weight_files(tmp_path)
    monkeypatch.setenv("STYLEGAN_TF_VGG16", vgg_file)
    assert metric_base.prepare_metrics("pr10k3") == ["pr10k3"]          # VGG16 alone
    with pytest.raises(vgg16.WeightsMissing, match="lpips-v0.1-vgg.pth"):
        metric_base.prepare_metrics("ppl2_wend")                         # PPL needs the heads too
    monkeypatch.setenv("STYLEGAN_TF_LPIPS", heads_file)
    assert metric_base.prepare_metrics("ppl2_wend,ppl_zfull_crop") == ["ppl2_wend", "ppl_zfull_crop"]
    # A wrong or damaged file fails here, at start (training's first snapshot may be hours away), naming where it
    # came from.
    monkeypatch.setenv("STYLEGAN_TF_LPIPS", vgg_file)
    with pytest.raises(vgg16.WeightsError, match=r"^\$STYLEGAN_TF_LPIPS .*tiny-vgg16.pth: no LPIPS heads"):
        metric_base.prepare_metrics("ppl1k_wend")
    monkeypatch.setenv("STYLEGAN_TF_LPIPS", heads_file)
    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(open(vgg_file, "rb").read()[:1000])
    monkeypatch.setenv("STYLEGAN_TF_VGG16", str(damaged))
    for names in ("ppl1k_wend", "pr1k3"):
        with pytest.raises(vgg16.WeightsError, match=r"^\$STYLEGAN_TF_VGG16 .*damaged.pth is not a readable"):
            metric_base.prepare_metrics(names)
    with pytest.raises(vgg16.WeightsError, match="^--vgg16 .*tiny-heads.pth: no VGG16 layer features.0"):
        metric_base.prepare_metrics("pr1k3", vgg16=heads_file)
    # LPIPS needs no classifier; precision/recall do.
    trunk_only = tmp_path / "trunk.pth"
    from test_inception import write_pth
    write_pth(trunk_only, {k: v for k, v in tiny_lpips_state().items() if k.startswith("features.")})
    assert metric_base.prepare_metrics("ppl1k_wend", vgg16=str(trunk_only)) == ["ppl1k_wend"]
    with pytest.raises(vgg16.WeightsError, match="classifier.0"):
        metric_base.prepare_metrics("pr1k3", vgg16=str(trunk_only))


def test_too_small_for_lpips_is_one_line(tiny_lpips):
    """VGG16 pools four times: LPIPS needs 16x16 or more (the crop of a 16x16 network is 8x8)."""
    from stylegan_tf.networks import Generator
    _, net = tiny_lpips
    G = Generator(**dict(TINY_G, resolution=16))
    G(np.zeros([1, TINY_G["latent_size"]], np.float32))
    ctx = metric_base.MetricContext(G, None, batch_size=8, progress=False, num_images=4, lpips=net)
    with pytest.raises(metric_base.MetricError, match="ppl_wend_crop: LPIPS needs images of 16x16 or more; a 16x16 "
                                                      "network gives 8x8 after the face crop"):
        metric_base.get_metric("ppl_wend_crop").evaluate(ctx)
    assert np.isfinite(metric_base.get_metric("ppl_wend").evaluate(ctx)["ppl_wend"])
    assert [ppl.scored_size(r, c) for r, c in ((16, False), (32, True), (1024, True), (1024, False))] == \
        [16, 16, 256, 256]


def test_sample_count_in_the_name():
    """ppl<N>k_*: N thousand samples (train.py has no --num); the plain names keep the papers' counts."""
    got = {n: metric_base.get_metric(n) for n in ("ppl_wend", "ppl2_wend", "ppl1k_wend", "ppl10k_zfull_crop")}
    assert {n: m.num_images for n, m in got.items()} == {"ppl_wend": 100000, "ppl2_wend": 50000,
                                                          "ppl1k_wend": 1000, "ppl10k_zfull_crop": 10000}
    assert (got["ppl10k_zfull_crop"].space, got["ppl10k_zfull_crop"].full, got["ppl10k_zfull_crop"].crop) == \
        ("z", True, True)
    with pytest.raises(metric_base.MetricError, match="would use no images"):
        metric_base.get_metric("ppl0k_wend")


def tiny_weight_files(folder):
    """`tiny_lpips_state`'s trunk with a small classifier (fc1, fc2) as a torchvision-layout .pth, and its LPIPS
    heads as a second file: what $STYLEGAN_TF_VGG16 / $STYLEGAN_TF_LPIPS give train.py in these tests, so that it
    runs the real lookup and loading code in seconds."""
    from test_inception import write_pth
    state, rng = tiny_lpips_state(), np.random.RandomState(5)
    trunk = {k: v for k, v in state.items() if k.startswith("features.")}
    for idx, fan_in in ((0, WIDTHS[-1] * 49), (3, 16)):
        trunk[f"classifier.{idx}.weight"] = (rng.randn(16, fan_in) * np.sqrt(2 / fan_in)).astype(np.float32)
        trunk[f"classifier.{idx}.bias"] = np.full(16, 0.1, np.float32)
    vgg_file, heads_file = folder / "tiny-vgg16.pth", folder / "tiny-heads.pth"
    write_pth(vgg_file, trunk)
    write_pth(heads_file, {k: v for k, v in state.items() if k.startswith("lin")})
    return str(vgg_file), str(heads_file)


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_train_py_metrics(backend, demo_dataset, tmp_path):
    """train.py --metrics with the perceptual metrics, on TensorFlow and on JAX (TensorFlow made unimportable, as
    on a JAX-only machine): weights found through the environment variables, one report line per snapshot, the
    log line, and generate.py curves draws them. JAX runs PPL only (precision/recall's 2,000 VGG16 passes at
    224x224 take 40 s there on a 2-core CPU)."""
    pytest.importorskip(backend)
    names = ["ppl1k_wend", "pr1k3"] if backend == "tensorflow" else ["ppl1k_wend"]
    vgg_file, heads_file = tiny_weight_files(tmp_path)
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2",
               JAX_PLATFORMS="cpu", STYLEGAN_TF_CACHE=str(tmp_path / "cache"), STYLEGAN_TF_VGG16=vgg_file,
               STYLEGAN_TF_LPIPS=heads_file)
    if backend == "jax":
        hide = tmp_path / "no_tensorflow" / "tensorflow"
        hide.mkdir(parents=True)
        (hide / "__init__.py").write_text("raise ImportError('TensorFlow is hidden from this test process')\n")
        env["PYTHONPATH"] = os.pathsep.join([str(hide.parent), str(REPO)])
    flags = dict(data=demo_dataset(resolution=16, count=48), outdir=tmp_path / "results", resolution=16,
                 lod_initial_resolution=16, total_kimg=0.016, minibatch=4, lrate=0.002, tick_kimg=0.016,
                 snap_ticks=100, seed=5, metrics=",".join(names), **TINY_NET)
    argv = [sys.executable, str(REPO / "train.py"), "--no-progress"]
    argv += [a for k, v in flags.items() for a in ("--" + k.replace("_", "-"), str(v))]
    proc = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    log = (run_dir / "log.txt").read_text()
    for name in names:
        (line,) = (run_dir / f"metric-{name}.jsonl").read_text().splitlines()
        record = json.loads(line)
        assert record["metric"] == name and record["snapshot"] == "network-snapshot-000000.keras"
        assert record["results"] and all(np.isfinite(v) for v in record["results"].values())
        assert f"{name}: {{" in log
    from test_generate import _generate_main
    assert _generate_main()(["curves", str(run_dir), "--out", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_train_py_without_weights_is_one_line(demo_dataset, tmp_path, monkeypatch, capsys):
    """Offline, train.py --metrics fails at start with one line that names every file to fetch, where to put it
    and the environment variables (train.py has no weight flags); nothing is trained."""
    import urllib.error
    import urllib.request

    from stylegan_tf.metrics import inception, vgg16

    def refuse(*_a, **_k):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(vgg16, "_lpips_package_file", lambda: None)
    monkeypatch.setenv("STYLEGAN_TF_CACHE", str(tmp_path / "cache"))
    for var in [spec["env"] for spec in vgg16.FILES.values()] + [inception.ENV_VAR]:
        monkeypatch.delenv(var, raising=False)
    sys.path.insert(0, str(REPO))
    try:
        import train
    finally:
        sys.path.remove(str(REPO))
    code = train.main(["--data", demo_dataset(resolution=16, count=48), "--outdir", str(tmp_path / "results"),
                       "--resolution", "16", "--total-kimg", "0.016", "--metrics", "ppl1k_wend,is1k",
                       "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("train.py: error: "), err
    for spec in vgg16.FILES.values():
        assert spec["url"] in err[0] and str(tmp_path / "cache" / spec["name"]) in err[0] and spec["env"] in err[0]
    assert inception.ENV_VAR in err[0] and inception.PTH_NAME in err[0]
    assert "--vgg16" not in err[0] and not (tmp_path / "results").exists()
