"""generate: the parts that need no network (seed parsing, z definition, layer sets, slerp, GIF, CLI errors)."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from stylegan_tf.generate import figures, video
from stylegan_tf.generate.seeds import (GenerateError, band_edges, parse_float_list, parse_grid, parse_layers,
                                        parse_linspace, parse_seeds, seed_to_z, seeds_to_z)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_parse_seeds_ranges_and_lists():
    assert parse_seeds("0-9,20,100-105") == list(range(10)) + [20] + list(range(100, 106))
    assert parse_seeds(" 7 ") == [7]
    assert parse_seeds("3,1,3") == [3, 1, 3]  # order and repeats are the user's
    assert parse_seeds("4294967295") == [2**32 - 1]


@pytest.mark.parametrize("text", ["", "1-a", "5-3", "1,,2", "-1", "1.5", "0-9;20", "4294967296", "x"])
def test_parse_seeds_rejects_with_flag_name(text):
    with pytest.raises(GenerateError) as err:
        parse_seeds(text, "--row-seeds")
    assert "--row-seeds" in str(err.value) and "\n" not in str(err.value)


def test_other_parsers():
    assert parse_grid("2x5") == (2, 5) and parse_grid("3X1") == (3, 1)
    assert parse_float_list("1,0.7,0,-0.5,-1") == [1.0, 0.7, 0.0, -0.5, -1.0]
    np.testing.assert_allclose(parse_linspace("-3:3:7"), [-3, -2, -1, 0, 1, 2, 3])
    for bad, fn in [("2x", parse_grid), ("0x3", parse_grid), ("1,a", parse_float_list), ("1,nan", parse_float_list),
                    ("-3:3", parse_linspace), ("-3:3:0", parse_linspace), ("a:b:c", parse_linspace)]:
        with pytest.raises(GenerateError):
            fn(bad)


def test_seed_to_z_is_nvidias_definition():
    # NumPy's legacy RandomState stream is frozen by NumPy's compatibility policy; these are its first
    # normals for seed 0, so a seed means the same latent as in NVIDIA's scripts on any machine.
    np.testing.assert_allclose(seed_to_z(0, 3), [1.76405235, 0.40015721, 0.97873798], rtol=1e-6)
    # pretrained_example.py draws rnd.randn(1, z_dim); generate_figures.py draws randn(z_dim): same numbers.
    for seed in (5, 639, 2**32 - 1):
        nvidia = np.random.RandomState(seed).randn(1, 512)[0].astype(np.float32)
        np.testing.assert_array_equal(seed_to_z(seed, 512), nvidia)
    z = seeds_to_z([1, 2, 1], 16)
    assert z.shape == (3, 16) and z.dtype == np.float32
    np.testing.assert_array_equal(z[0], z[2])
    assert not np.allclose(z[0], z[1])


def test_layer_presets_follow_the_paper_at_1024():
    assert parse_layers("coarse", 18) == [0, 1, 2, 3]
    assert parse_layers("middle", 18) == [4, 5, 6, 7]
    assert parse_layers("fine", 18) == list(range(8, 18))
    assert parse_layers("0-3,8", 18) == [0, 1, 2, 3, 8]
    assert parse_layers("10-", 18) == list(range(10, 18))
    with pytest.raises(GenerateError, match="out of range"):
        parse_layers("0-18", 18)
    # Smaller networks: the three bands stay non-empty and partition the layers.
    for num_layers in (4, 6, 8, 10, 12, 14, 16):
        c, m = band_edges(num_layers)
        bands = [parse_layers(b, num_layers) for b in ("coarse", "middle", "fine")]
        assert all(bands) and sum(bands, []) == list(range(num_layers)), num_layers


def test_slerp_and_lerp():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    np.testing.assert_allclose(video.slerp(a, b, 0.5), [np.sqrt(0.5), np.sqrt(0.5)], atol=1e-12)
    np.testing.assert_allclose(video.slerp(a, b, 0.0), a, atol=1e-12)
    np.testing.assert_allclose(video.slerp(a, b, 1.0), b, atol=1e-12)
    # Length moves linearly, direction along the great circle.
    out = video.slerp(2 * a, 4 * b, np.array([0.25, 0.5]))
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), [2.5, 3.0])
    np.testing.assert_allclose(out[1] / 3.0, [np.sqrt(0.5), np.sqrt(0.5)], atol=1e-12)
    # Parallel vectors do not produce NaN.
    assert np.all(np.isfinite(video.slerp(a, 3 * a, 0.5)))
    np.testing.assert_allclose(video.lerp(np.zeros([2, 3]), np.ones([2, 3]), np.array([0.25])), 0.25)


def test_keyframe_path_counts_and_ends():
    keys = np.random.RandomState(0).randn(3, 8)
    path = video.keyframe_path(keys, 4, loop=False, interpolate=video.slerp)
    assert path.shape == (2 * 4 + 1, 8)
    np.testing.assert_allclose(path[0], keys[0], rtol=1e-5)
    np.testing.assert_allclose(path[4], keys[1], rtol=1e-5)
    np.testing.assert_allclose(path[-1], keys[2], rtol=1e-5)
    looped = video.keyframe_path(keys, 4, loop=True)
    assert looped.shape == (3 * 4, 8)
    # The loop's last frame is one step before the first key: no repeated frame at the seam.
    np.testing.assert_allclose(looped[-1], keys[2] + 0.75 * (keys[0] - keys[2]), rtol=1e-5)
    with pytest.raises(GenerateError):
        video.keyframe_path(keys[:1], 4)


def test_write_gif_roundtrip(tmp_path):
    frames = np.zeros([5, 16, 24, 3], np.uint8)
    for i in range(5):
        frames[i, :, : 4 * (i + 1)] = 255
    path = video.write_gif(frames, tmp_path / "a.gif", fps=10)
    with Image.open(path) as im:
        assert im.size == (24, 16) and im.n_frames == 5
        assert im.info["duration"] == 100 and im.info["loop"] == 0
        im.seek(2)
        got = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(got, frames[2])
    gray = video.write_gif(frames[:, :, :, :1], tmp_path / "g.gif")
    with Image.open(gray) as im:
        assert im.n_frames == 5


def test_mp4_without_ffmpeg_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH where no ffmpeg can be found
    with pytest.raises(GenerateError, match="ffmpeg"):
        video.check_video_path(tmp_path / "a.mp4")
    with pytest.raises(GenerateError, match=r"\.gif or \.mp4"):
        video.check_video_path(tmp_path / "a.avi")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (MP4 output is optional)")
def test_write_mp4_with_ffmpeg(tmp_path):
    frames = np.zeros([6, 17, 17, 3], np.uint8)  # odd size: the writer pads to even for yuv420p
    for i in range(6):
        frames[i, :, : 2 * (i + 1)] = 200
    path = video.write_mp4(frames, tmp_path / "a.mp4", fps=6)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    decoded = np.frombuffer(raw, np.uint8).reshape(-1, 18, 18, 3)
    assert len(decoded) == 6
    assert np.abs(decoded[3, :17, :17].astype(int) - frames[3]).mean() < 12  # lossy H.264


def test_canvas_helpers():
    rows = np.random.RandomState(0).randn(2, 6, 4).astype(np.float32)
    cols = np.random.RandomState(1).randn(3, 6, 4).astype(np.float32)
    mixed = figures.mix_styles(rows, cols, [[0, 1], [4, 5]])
    assert mixed.shape == (2, 3, 6, 4)
    for c in range(3):
        np.testing.assert_array_equal(mixed[0, c, :2], cols[c, :2])
        np.testing.assert_array_equal(mixed[0, c, 2:], rows[0, 2:])
        np.testing.assert_array_equal(mixed[1, c, 4:], cols[c, 4:])
        np.testing.assert_array_equal(mixed[1, c, :4], rows[1, :4])
    same = np.full([7, 4, 4, 3], 100, np.uint8)
    assert not figures.noise_std_map(same).any()
    varied = same.copy()
    varied[::2, 1, 2] = 110
    std = figures.noise_std_map(varied)
    assert std[1, 2] == int(np.std([110, 100] * 3 + [110]) * 4 + 0.5) and std.sum() == std[1, 2]
    assert figures.uncurated_lods(1024) == [0, 1, 2, 2, 3, 3]
    assert figures.uncurated_lods(32) == [0, 1, 2, 2, 2, 2]


def _cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, os.path.join(REPO, "generate.py"), *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_errors_are_one_line(tmp_path):
    not_a_net = tmp_path / "notes.pkl"
    not_a_net.write_bytes(b"this is not a pickle at all")
    proc = _cli("images", "--network", str(not_a_net), "--seeds", "0-2", "--outdir", str(tmp_path / "o"))
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "notes.pkl" in err and "--network" in err, err
    assert not (tmp_path / "o").exists()

    proc = _cli("images", "--network", str(not_a_net), "--seeds", "0-x")
    assert proc.returncode != 0 and proc.stderr.strip().count("\n") == 0 and "--seeds" in proc.stderr

    proc = _cli("images", "--network", str(tmp_path / "missing.keras"), "--seeds", "1")
    assert proc.returncode != 0 and "does not exist" in proc.stderr and proc.stderr.strip().count("\n") == 0

    proc = _cli("style-mixing", "--row-seeds", "1")
    assert proc.returncode != 0 and proc.stderr.strip().count("\n") == 0 and "--network" in proc.stderr
