"""generate.py with real networks: a tiny random Generator saved as .keras, and NVIDIA-format fixture pickles."""
import os

import numpy as np
import pytest
from PIL import Image

from stylegan_tf.generate import commands, figures
from stylegan_tf.generate.noise import noise_buffers, noise_in_layers
from stylegan_tf.generate.sampling import load_generator, map_z, run_z, synthesize_w
from stylegan_tf.generate.seeds import GenerateError, parse_layers, seeds_to_z
from stylegan_tf.image_grid import grid_shape, to_uint8

from conftest import TINY_G
from test_cli import read_only  # noqa: F401  (a fixture)

RES = TINY_G["resolution"]  # conftest's tiny_generator, saved as tiny_network_path


@pytest.fixture(scope="module")
def tiny(tiny_network_path):
    return load_generator(tiny_network_path)


@pytest.fixture(scope="module")
def official_path(fixtures_dir):
    return str(fixtures_dir / "official-stylegan" / "official-r32.pkl")


@pytest.fixture(scope="module")
def official(official_path):
    return load_generator(official_path)


def _generate_module():
    """generate.py, loaded by path (the repository root need not be on sys.path)."""
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "generate.py")
    spec = importlib.util.spec_from_file_location("generate_cli", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _generate_main():
    return _generate_module().main


def _same_image(a, b):
    """uint8 images equal up to one level: a different batch size changes float round-off (~1e-5)."""
    assert a.shape == b.shape
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def _png(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_same_seed_same_image_whatever_the_batch(tiny):
    z = seeds_to_z([3, 1, 3, 7], tiny.latent_size)
    a = run_z(tiny, z, batch_size=1, progress=False, as_uint8=False)
    b = run_z(tiny, z, batch_size=3, progress=False, as_uint8=False)
    assert a.shape == (4, RES, RES, 3)
    np.testing.assert_allclose(a, b, atol=1e-4)  # batch size only changes float round-off
    np.testing.assert_allclose(a[0], a[2], atol=1e-6)
    assert np.abs(a[0] - a[1]).max() > 1e-3


def test_truncation_psi_zero_gives_the_average_for_every_seed(tiny):
    z = seeds_to_z([0, 1, 2], tiny.latent_size)
    out = run_z(tiny, z, truncation_psi=0.0, truncation_cutoff=None, progress=False, as_uint8=False)
    avg = np.tile(np.asarray(tiny.dlatent_avg, np.float32)[None, None], [1, tiny.num_layers, 1])
    ref = synthesize_w(tiny, avg, progress=False, as_uint8=False)[0]
    for img in out:
        np.testing.assert_allclose(img, ref, atol=1e-5)
    # With a cutoff only the first layers are truncated: the seeds still differ.
    cut = run_z(tiny, z, truncation_psi=0.0, truncation_cutoff=2, progress=False, as_uint8=False)
    assert np.abs(cut[0] - cut[1]).max() > 1e-4


def test_style_mixing_copies_the_chosen_layers(tiny):
    rows, cols = [10, 11], [20, 21, 22]
    w_rows = tiny.map_latents(seeds_to_z(rows, tiny.latent_size))
    w_cols = tiny.map_latents(seeds_to_z(cols, tiny.latent_size))
    coarse = parse_layers("coarse", tiny.num_layers)
    rest = [i for i in range(tiny.num_layers) if i not in coarse]
    mixed = figures.mix_styles(w_rows, w_cols, [coarse])
    for r in range(2):
        for c in range(3):
            np.testing.assert_array_equal(mixed[r, c][coarse], w_cols[c][coarse])
            np.testing.assert_array_equal(mixed[r, c][rest], w_rows[r][rest])
    canvas = figures.style_mixing_figure(tiny, rows, cols, [coarse], progress=False)
    assert canvas.shape == (RES * 3, RES * 4, 3)
    cell = lambda r, c: canvas[RES * r:RES * (r + 1), RES * c:RES * (c + 1)]  # noqa: E731
    col_imgs = synthesize_w(tiny, w_cols, progress=False)
    row_imgs = synthesize_w(tiny, w_rows, progress=False)
    assert (cell(0, 0) == 255).all()
    for c in range(3):
        _same_image(cell(0, c + 1), col_imgs[c])
    for r in range(2):
        _same_image(cell(r + 1, 0), row_imgs[r])
        expect = synthesize_w(tiny, mixed[r], progress=False)
        for c in range(3):
            _same_image(cell(r + 1, c + 1), expect[c])
            assert np.abs(cell(r + 1, c + 1).astype(int) - col_imgs[c]).max() > 0
    # Copying every layer reproduces the column image; copying none, the row image.
    full = figures.style_mixing_figure(tiny, rows, cols, [list(range(tiny.num_layers)), []], progress=False)
    for c in range(3):
        _same_image(full[RES:2 * RES, RES * (c + 1):RES * (c + 2)], col_imgs[c])
        _same_image(full[2 * RES:, RES * (c + 1):RES * (c + 2)], row_imgs[1])


def test_truncation_figure_columns(tiny):
    canvas = figures.truncation_figure(tiny, [5, 6], [1.0, 0.0, -1.0], progress=False)
    assert canvas.shape == (2 * RES, 3 * RES, 3)
    plain = run_z(tiny, seeds_to_z([5, 6], tiny.latent_size), progress=False)
    _same_image(canvas[:RES, :RES], plain[0])
    _same_image(canvas[RES:, :RES], plain[1])
    _same_image(canvas[:RES, RES:2 * RES], canvas[RES:, RES:2 * RES])


def test_official_pickle_images_match_nvidia(official, fixtures_dir):
    ref = np.load(fixtures_dir / "official-stylegan" / "official-r32-expected.npz")
    got = run_z(official, ref["z"], truncation_psi=0.7, truncation_cutoff=8, noise_mode="const", batch_size=3,
                progress=False, as_uint8=False)
    expect = ref["img_trunc"].transpose(0, 2, 3, 1)
    assert np.abs(got - expect).max() < 1e-3 * max(1.0, np.abs(expect).max())
    assert np.abs(to_uint8(got).astype(int) - to_uint8(expect)).max() <= 1


def test_noise_components_zero_the_chosen_layers(official):
    z = seeds_to_z([1, 2], official.latent_size)
    before = [np.array(v.numpy()) for v in noise_buffers(official)]
    const = run_z(official, z, noise_mode="const", progress=False, as_uint8=False)
    none = run_z(official, z, noise_mode="none", progress=False, as_uint8=False)
    assert np.abs(const - none).max() > 1e-3  # the fixture's noise weights are not zero
    with noise_in_layers(official, range(official.num_layers)):
        np.testing.assert_allclose(run_z(official, z, progress=False, as_uint8=False), const, atol=1e-6)
    with noise_in_layers(official, []):
        np.testing.assert_allclose(run_z(official, z, progress=False, as_uint8=False), none, atol=1e-5)
    with noise_in_layers(official, [0, 1]):
        some = run_z(official, z, progress=False, as_uint8=False)
        assert np.abs(some - const).max() > 1e-4 and np.abs(some - none).max() > 1e-4
    for var, value in zip(noise_buffers(official), before):  # restored afterwards
        np.testing.assert_array_equal(var.numpy(), value)


def test_noise_detail_is_reproducible_and_shows_variation(official):
    a = figures.noise_detail_figure(official, [4], samples=6, progress=False)
    b = figures.noise_detail_figure(official, [4], samples=6, progress=False)
    assert a.shape == (RES, 3 * RES, 3)
    np.testing.assert_array_equal(a, b)
    assert a[:, 2 * RES:].max() > 0  # random noise changes pixels: the std map is not black


# The figure subcommands: their arguments and the (height, width) of the picture they write.
FIGURES = {
    "style-mixing": (["--row-seeds", "1,2", "--col-seeds", "3,4,5", "--styles", "coarse", "fine"],
                     (3 * RES, 4 * RES)),
    "truncation": (["--seeds", "1,2", "--psi", "1,0.5,0"], (2 * RES, 3 * RES)),
    "noise-detail": (["--seeds", "1", "--samples", "5"], (RES, 3 * RES)),
    "noise-components": (["--seeds", "1,2", "--flip", "1"], (2 * RES, 2 * RES)),
    "uncurated": (["--seed", "5", "--rows", "1", "--lods", "0,1,2"], (RES, RES + RES // 2 + RES // 4)),
    "z-walk": (["--seed", "1", "--dims", "0,5", "--scale", "-2:2:3"], (2 * RES, 3 * RES)),
    "w-walk": (["--seed", "1", "--components", "0,1", "--scale", "-2:2:3", "--samples", "200"], (2 * RES, 3 * RES)),
}


@pytest.mark.parametrize("cmd", list(FIGURES))
def test_figure_subcommand_writes_the_right_picture(cmd, tiny_network_path, tmp_path):
    args, (h, w) = FIGURES[cmd]
    path = str(tmp_path / "figure.png")
    assert _generate_main()([cmd, "--network", tiny_network_path, "--no-progress", *args, "--out", path]) == 0
    assert _png(path).shape == (h, w, 3)


def test_images_subcommand_writes_every_seed_and_the_grid(tiny_network_path, tmp_path):
    out = str(tmp_path / "img")
    assert _generate_main()(["images", "--network", tiny_network_path, "--no-progress", "--seeds", "0-2",
                             "--outdir", out, "--grid", "1x3"]) == 0
    grid = _png(out + "/grid.png")
    assert grid.shape == (RES, 3 * RES, 3)
    for i in range(3):
        assert _png(f"{out}/seed{i:04d}.png").shape == (RES, RES, 3)
    np.testing.assert_array_equal(grid[:, RES:2 * RES], _png(out + "/seed0001.png"))  # same batch


def test_interpolate_subcommand_writes_the_walk(tiny_network_path, tmp_path):
    main = _generate_main()
    out = str(tmp_path)
    net = ["--network", tiny_network_path, "--no-progress"]
    gif = out + "/walk.gif"
    assert main(["interpolate", *net, "--seeds", "0,5,9", "--frames-per-transition", "3", "--space", "w",
                 "--out", gif]) == 0
    with Image.open(gif) as im:
        assert im.size == (RES, RES) and im.n_frames == 2 * 3 + 1
        first = np.asarray(im.convert("RGB"))
    looped = out + "/loop.gif"
    assert main(["interpolate", *net, "--seeds", "0,5,9", "--frames-per-transition", "3", "--loop", "--out",
                 looped]) == 0
    with Image.open(looped) as im:
        assert im.n_frames == 3 * 3  # back to the first seed, without repeating it at the seam
    # The first frame is seed 0's image (GIF palettes are lossy: compare coarsely).
    assert main(["images", *net, "--seeds", "0", "--trunc", "1", "--outdir", out + "/plain"]) == 0
    seed0 = _png(out + "/plain/seed0000.png")
    assert seed0.shape == first.shape
    assert np.abs(first.astype(int) - seed0).mean() < 8


def test_convert_subcommand_keeps_the_official_network(official_path, tmp_path):
    keras_out = str(tmp_path / "official.keras")
    assert _generate_main()(["convert", "--network", official_path, "--out", keras_out]) == 0
    z = seeds_to_z([1, 2], 64)
    np.testing.assert_allclose(run_z(load_generator(keras_out), z, progress=False, as_uint8=False),
                               run_z(load_generator(official_path), z, progress=False, as_uint8=False), atol=1e-5)


def test_existing_files_are_not_overwritten_silently(tiny_network_path, tmp_path, capsys):
    main = _generate_main()
    args = ["images", "--network", tiny_network_path, "--seeds", "1", "--outdir", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    before = (tmp_path / "seed0001.png").read_bytes()
    capsys.readouterr()
    assert main(args[:-1] + ["--trunc", "0.3", "--no-progress"]) != 0
    err = capsys.readouterr().err.strip()
    assert "seed0001.png already exists" in err and "--overwrite" in err and len(err.splitlines()) == 1
    assert (tmp_path / "seed0001.png").read_bytes() == before
    assert main(args + ["--trunc", "0.3", "--overwrite"]) == 0
    assert (tmp_path / "seed0001.png").read_bytes() != before


def test_images_outdir_writes_beside_the_users_files_and_replaces_only_its_own_names(tiny_network_path, tmp_path,
                                                                                    capsys):
    """images writes into a folder of the user's files (nothing else there is touched); an existing seedNNNN.png
    or grid.png (a dangling link too) needs --overwrite, which replaces that file and never a folder."""
    main = _generate_main()
    out = tmp_path / "pictures"
    out.mkdir()
    (out / "holiday.png").write_bytes(b"mine")
    (out / "seed0002.png").symlink_to(tmp_path / "gone.png")  # a dangling link where a picture goes
    (out / "grid.png").mkdir()
    args = ["images", "--network", tiny_network_path, "--seeds", "1", "--outdir", str(out), "--no-progress"]
    assert main(args) == 0 and sorted(os.listdir(out)) == ["grid.png", "holiday.png", "seed0001.png", "seed0002.png"]
    capsys.readouterr()
    for extra, message in ((["--seeds", "2"], "seed0002.png already exists; pass --overwrite"),
                           (["--seeds", "1,3", "--grid", "1x2", "--overwrite"],
                            "grid.png is a folder, which is never replaced; choose another --outdir")):
        assert main(args + extra) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err, err
    assert os.path.islink(out / "seed0002.png") and (out / "grid.png").is_dir() and not (out / "seed0003.png").exists()
    assert main(args + ["--seeds", "2", "--overwrite"]) == 0
    assert not os.path.islink(out / "seed0002.png") and not (tmp_path / "gone.png").exists()
    assert (out / "holiday.png").read_bytes() == b"mine"


def test_class_labels_are_checked(fixtures_dir, tmp_path, capsys):
    main = _generate_main()
    cond = str(fixtures_dir / "official-stylegan" / "official-r16-cond.pkl")
    base = ["images", "--network", cond, "--seeds", "1,2", "--no-progress"]
    assert main(base + ["--class", "2", "--outdir", str(tmp_path / "c2")]) == 0
    assert _png(tmp_path / "c2" / "seed0001.png").shape == (16, 16, 3)
    assert main(base + ["--class", "0", "--outdir", str(tmp_path / "c0")]) == 0
    assert not np.array_equal(_png(tmp_path / "c0" / "seed0001.png"), _png(tmp_path / "c2" / "seed0001.png"))
    capsys.readouterr()
    for extra, expect in [(["--class", "3"], "class 3 is out of range"), ([], "conditional with 3 classes")]:
        assert main(base + extra + ["--outdir", str(tmp_path / "bad")]) != 0
        err = capsys.readouterr().err.strip()
        assert expect in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "bad").exists()
    with pytest.raises(GenerateError, match="unconditional"):
        commands.images(str(fixtures_dir / "official-stylegan" / "official-r32.pkl"), [1],
                        outdir=str(tmp_path / "u"), class_idx=0)


def test_w_walk_moves_along_principal_components(tiny):
    from stylegan_tf.generate.walks import w_principal_components
    mean, pcs, std = w_principal_components(tiny, samples=300)
    np.testing.assert_allclose(pcs @ pcs.T, np.eye(len(pcs)), atol=1e-6)
    assert np.all(np.diff(std) <= 1e-9)  # sorted by variance
    w = map_z(tiny, np.random.RandomState(0).randn(300, tiny.latent_size).astype(np.float32))[:, 0]
    np.testing.assert_allclose(np.std((w - mean) @ pcs[0], ddof=1), std[0], rtol=1e-3)


def test_random_noise_is_reproducible_per_seed(tiny, tmp_path):
    a = commands.images(tiny, [4, 9], outdir=str(tmp_path / "a"), truncation_psi=1.0, noise_mode="random",
                        batch_size=2, progress=False)
    b = commands.images(tiny, [9], outdir=str(tmp_path / "b"), truncation_psi=1.0, noise_mode="random",
                        batch_size=1, progress=False)
    c = commands.images(tiny, [9], outdir=str(tmp_path / "c"), truncation_psi=1.0, noise_mode="const",
                        progress=False)
    # Seed 9's noise is its own: the same alone or beside seed 4, and different from the stored noise.
    _same_image(_png(a[1]), _png(b[0]))
    assert np.abs(_png(b[0]).astype(int) - _png(c[0])).max() > 2
    # Noise detail's first sample of a seed is that seed's `images --noise-mode random` picture.
    fig = figures.noise_detail_figure(tiny, [9], samples=5, progress=False)
    _same_image(fig[:, :RES], _png(b[0]))


def test_random_noise_batch_gives_each_seed_its_one_at_a_time_image(tiny):
    from stylegan_tf.generate.noise import noise_stream
    seeds = [5, 2, 8, 5]
    z = seeds_to_z(seeds, tiny.latent_size)

    def run(batch):
        rngs = [noise_stream(s, tiny.latent_size) for s in seeds]
        return run_z(tiny, z, truncation_psi=1.0, noise_mode="random", batch_size=batch, noise_rng=rngs,
                     progress=False, as_uint8=False)
    buffers = noise_buffers(tiny)
    saved = [np.array(b.numpy()) for b in buffers]
    one, three, four = run(1), run(3), run(4)
    for b, v in zip(buffers, saved):          # the stored noise is not touched
        np.testing.assert_array_equal(b.numpy(), v)
    scale = np.abs(one).max()
    # Seed 5 sits first and last: in batches of 3 it is in the first and the second batch, at positions 0 and 0;
    # in the batch of 4 at positions 0 and 3. Each seed's image is the same wherever it runs.
    for other in (three, four):
        np.testing.assert_allclose(other, one, atol=1e-5 * scale)
    np.testing.assert_allclose(four[3], four[0], atol=1e-5 * scale)
    assert np.abs(one[0] - one[1]).max() > 1e-3
    # The reference: the seed's normals written into the stored buffers, one image at a time (the way generate
    # drew random noise before it batched).
    w = map_z(tiny, z)
    try:
        for i, seed in enumerate(seeds[:3]):
            rng = noise_stream(seed, tiny.latent_size)
            for b in buffers:
                b.assign(rng.standard_normal(tuple(b.shape)).astype(np.float32))
            ref = tiny.synthesize(w[i:i + 1], noise_mode="const")[0]
            np.testing.assert_allclose(four[i], ref, atol=1e-5 * scale)
    finally:
        for b, v in zip(buffers, saved):
            b.assign(v)


def test_images_in_bf16_are_opt_in_and_close(tiny, tmp_path):
    fp32 = commands.images(tiny, [3, 4], outdir=str(tmp_path / "a"), truncation_psi=1.0, noise_mode="random",
                           batch_size=2, progress=False)
    bf16 = commands.images(tiny, [3, 4], outdir=str(tmp_path / "b"), truncation_psi=1.0, noise_mode="random",
                           batch_size=2, progress=False, precision="bf16")
    for a, b in zip(fp32, bf16):
        diff = np.abs(_png(a).astype(int) - _png(b))
        assert diff.mean() < 4 and diff.max() > 0          # bfloat16 ran, and the picture is the same one
    with pytest.raises(GenerateError, match="--precision"):
        commands.images(tiny, [3], outdir=str(tmp_path / "c"), precision="fp16", progress=False)


def test_synthesize_refuses_noise_maps_of_the_wrong_shape(tiny):
    w = map_z(tiny, seeds_to_z([1, 2], tiny.latent_size))
    maps = [np.zeros((2,) + tuple(b.shape[1:]), np.float32) for b in noise_buffers(tiny)]
    with pytest.raises(ValueError, match="one map per layer"):
        tiny.synthesize(w, noise=maps[:-1])
    with pytest.raises(ValueError, match="one map per layer"):
        tiny.synthesize(w[:1], noise=maps)


# Every subcommand with the flags it needs besides --network and its output flag.
SUBCOMMANDS = {
    "images": ["--seeds", "1"],
    "style-mixing": ["--row-seeds", "1", "--col-seeds", "2"],
    "truncation": ["--seeds", "1"],
    "noise-detail": ["--seeds", "1"],
    "noise-components": ["--seeds", "1"],
    "uncurated": ["--seed", "1"],
    "interpolate": ["--seeds", "1,2"],
    "z-walk": ["--seed", "1", "--dims", "0"],
    "w-walk": ["--seed", "1", "--components", "0"],
    "convert": [],
}


@pytest.mark.parametrize("cmd", list(SUBCOMMANDS))
def test_read_only_output_folder_is_refused_before_any_work(cmd, tmp_path, read_only, capsys):
    main = _generate_main()
    folder = read_only(tmp_path / "ro")
    out = {"images": ["--outdir", folder + "/sub"], "interpolate": ["--out", folder + "/v.gif"],
           "convert": ["--out", folder + "/n.keras"]}.get(cmd, ["--out", folder + "/f.png"])
    # A network that does not exist: the folder must be refused first, before the network is even opened.
    assert main([cmd, "--network", str(tmp_path / "absent.keras"), *SUBCOMMANDS[cmd], *out]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"generate.py: error: {out[0]}: cannot write in {folder}") and err.count("\n") == 1, err


def test_read_only_folder_with_a_real_network_writes_nothing(tiny_network_path, tmp_path, read_only, capsys):
    main = _generate_main()
    folder = read_only(tmp_path / "ro")
    assert main(["images", "--network", tiny_network_path, "--seeds", "1-3", "--outdir", folder,
                 "--no-progress"]) == 2
    assert "cannot write in" in capsys.readouterr().err and os.listdir(folder) == []


@pytest.mark.parametrize("grid, seeds, needle", [("0x0", "1", "must be ROWSxCOLS"), ("100x100", "1", "empty"),
                                                 ("3x3", "1-3", "empty"), ("1x2", "1-3", "holds 2 images")])
def test_grid_must_fit_the_seeds(grid, seeds, needle, tmp_path, capsys):
    main = _generate_main()
    assert main(["images", "--network", str(tmp_path / "absent.keras"), "--seeds", seeds, "--grid", grid,
                 "--outdir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_check_grid_bounds_the_picture_by_the_seed_count():
    for n in range(1, 40):
        rows, cols = commands.check_grid(grid_shape(n), n)
        assert rows * cols < n + cols and cols <= n
    assert commands.check_grid((2, 5), 10) == (2, 5) and commands.check_grid((3, 4), 11) == (3, 4)
    for grid, n in [((0, 0), 1), ((0, 3), 3), ((1, 4), 3), ((4, 1), 3), ((2, 2), 5)]:
        with pytest.raises(GenerateError, match="--grid"):
            commands.check_grid(grid, n)



@pytest.mark.parametrize("arch", ["msggan", "dcgan"])
def test_interpolate_in_w_needs_a_learned_mapping_on_every_architecture(arch, tmp_path, capsys):
    """MSG-GAN's mapping has no layers (its w is the normalised z) and DCGAN has none: --space w is refused
    alike on both, in one line; --space z works."""
    from stylegan_tf.network_io import save_network
    from stylegan_tf.networks import Networks
    from stylegan_tf.networks.dcgan import DCGANGenerator
    from stylegan_tf.networks.msg import MSGProGANGenerator
    if arch == "msggan":
        G = MSGProGANGenerator(resolution=16, num_channels=3, latent_size=16, fmap_base=64, fmap_max=16)
    else:
        G = DCGANGenerator(resolution=16, num_channels=3, latent_size=16, width=4)
    G(np.zeros([1, 16], np.float32))
    path = str(tmp_path / f"{arch}.keras")
    save_network(Networks(G, None, G), path)
    main = _generate_main()
    walk = ["interpolate", "--network", path, "--seeds", "1,2", "--frames-per-transition", "2", "--no-progress"]
    assert main(walk + ["--space", "w", "--out", str(tmp_path / "w.gif")]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["generate.py: error: --space w needs a StyleGAN generator (a mapping network "
                                        "with layers); this network has no learned W space: use --space z"], err
    assert not (tmp_path / "w.gif").exists()
    assert main(walk + ["--space", "z", "--out", str(tmp_path / "z.gif")]) == 0


def test_every_option_default_is_the_command_functions_own():
    """generate.py writes no default of its own: each option's default (and what --help shows) is the default
    of the command function's parameter of that name."""
    import argparse
    import inspect
    cli_module = _generate_module()
    parser = cli_module.build_parser()

    def subparsers(p):
        return [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]

    checked = 0
    for name, sub in subparsers(parser)[0].choices.items():
        params = inspect.signature(cli_module._command_function(name)).parameters
        for p in [sub] + [c for a in subparsers(sub) for c in a.choices.values()]:
            for action in p._actions:
                param = params.get(action.dest)
                if param is None or action.required or param.default is inspect.Parameter.empty:
                    continue
                assert p.get_default(action.dest) == param.default, (name, action.dest)
                checked += 1
    assert checked > 100
    # Each editing command's --out has its default in the function too (none was there before).
    assert parser.parse_args(["project", "--network", "n", "--image", "i"]).out == "out/projection"


def test_noise_mode_is_checked_against_the_layers_noise_modes(tiny_network_path, tmp_path, capsys):
    from stylegan_tf.layers.noise import NOISE_MODES
    main = _generate_main()
    assert main(["images", "--network", tiny_network_path, "--seeds", "1", "--outdir", str(tmp_path / "o"),
                 "--noise-mode", "fresh"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"generate.py: error: --noise-mode: 'fresh' is not one of {', '.join(NOISE_MODES)}"
    assert not (tmp_path / "o").exists()
