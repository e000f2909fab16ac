"""generate.py timelapse and curves: on the run directory of one tiny real training (3 kimg, growing 8 -> 16,
swd1k on the last snapshot) and on hand-made run directories for the orders and damage a real run rarely shows."""
import json
import os
import shutil

import numpy as np
import pytest
from conftest import TINY_NET
from PIL import Image

from stylegan_tf.generate import run_dir as rd
from stylegan_tf.generate.curves import curve_panels, read_metrics, read_stats, resolution_changes
from stylegan_tf.generate.errors import GenerateError
from stylegan_tf.generate.timelapse import format_kimg, stamp_kimg, timelapse_frames

from test_cli import read_only  # noqa: F401  (a fixture)
from test_generate import _generate_main


@pytest.fixture(scope="module")
def real_run(demo_dataset, tmp_path_factory):
    """A run dir written by the real training loop: ticks of 1 kimg so each fakes grid has its own name
    (fakes000000..3), a resolution change at the second tick, stats rows, and one swd1k record."""
    from stylegan_tf.training import TrainingOptions, training_loop
    opts = TrainingOptions(data=demo_dataset(resolution=16, count=48), outdir=str(tmp_path_factory.mktemp("runs")),
                           resolution=16, lod_initial_resolution=8, lod_training_kimg=1, lod_transition_kimg=1,
                           total_kimg=3, tick_kimg=1, minibatch=16, lrate=0.002, snap_ticks=100, seed=5,
                           progress=False, metrics=["swd1k"], **TINY_NET)
    return training_loop(opts).run_dir


def _png(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _gif_frames(path):
    frames = []
    with Image.open(path) as im:
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info.get("duration"))
            frames.append(np.asarray(im.convert("RGB")))
    return frames, durations


def _outside(image, box):
    """A copy of `image` with the stamp's box zeroed: what must be left as it was."""
    out = image.astype(int).copy()
    out[box[1]:box[3], box[0]:box[2]] = 0
    return out


def _error(capsys):
    err = capsys.readouterr().err
    assert err.startswith("generate.py: error: ") and err.count("\n") == 1, err
    return err


# ---------------------------------------------------------------- the run directory the reader expects

def test_reader_and_writers_agree_on_the_run_dir_names(real_run, tmp_path):
    from stylegan_tf.training import rundir, snapshot
    assert rd.STATS_FILE == rundir.STATS_FILE and rd.OPTIONS_FILE == snapshot.OPTIONS_FILE
    assert rd.SNAPSHOT_RE.pattern == snapshot.SNAPSHOT_RE.pattern
    first = snapshot.new_snapshot_path(tmp_path, 3000)
    open(first, "w").close()
    # With network-snapshot-000003.keras taken, 3500 images get the .III form, then repeats get -N.
    second = snapshot.new_snapshot_path(tmp_path, 3500)
    open(second, "w").close()
    third = snapshot.new_snapshot_path(tmp_path, 3500)
    assert [rd.snapshot_kimg(p) for p in (first, second, third)] == [3.0, 3.5, 3.5]
    assert os.path.basename(third) != os.path.basename(second)
    assert [k for k, _ in rd.fakes_grids(real_run)] == [0, 1, 2, 3]
    assert rd.check_run_dir(real_run) == real_run


def test_fakes_are_ordered_by_kimg_not_by_name(tmp_path):
    kimgs = [0, 2, 10, 10.5, 999999, 1000000]
    names = ["fakes000000.png", "fakes000002.png", "fakes000010.png", "fakes000010.500.png", "fakes999999.png",
             "fakes1000000.png"]
    for i in np.random.RandomState(0).permutation(len(names)):
        Image.new("RGB", (64, 32), (40 * i, 255 - 40 * i, 100)).save(tmp_path / names[i])
    for other in ("reals.png", "fakes.png", "fakes_init.png", "fakes000001.jpg"):
        Image.new("RGB", (64, 32)).save(tmp_path / other)
    assert rd.fakes_grids(str(tmp_path)) == [(k, str(tmp_path / n)) for k, n in zip(kimgs, names)]
    # Lexical order would put fakes1000000 before fakes999999: the name order is not the training order.
    assert sorted(names) != names


# ---------------------------------------------------------------- timelapse

def test_stamp_covers_only_its_corner_and_grows_with_the_frame():
    gray = Image.new("RGB", (256, 128), (128, 128, 128))
    stamped, box = stamp_kimg(gray, 12)
    a = np.asarray(stamped).astype(int)
    assert box[:2] == (0, 0) and 0 < box[2] < 128 and 0 < box[3] < 64
    assert np.all(_outside(a, box) == _outside(np.asarray(gray), box))
    inside = a[box[1]:box[3], box[0]:box[2]]
    assert (inside == 0).all(axis=2).mean() > 0.5 and (inside > 200).all(axis=2).any()   # white text on black
    _, big = stamp_kimg(Image.new("RGB", (1024, 512)), 12)
    assert big[2] > 2 * box[2] and big[3] > 2 * box[3]
    assert [format_kimg(k) for k in (0, 12, 0.016, 3.5, 1000000)] == ["0", "12", "0.016", "3.5", "1000000"]


def test_timelapse_of_a_real_run(real_run, tmp_path, capsys):
    grids = rd.fakes_grids(real_run)
    pngs = [_png(p) for _, p in grids]
    frames = timelapse_frames(grids)
    assert frames.shape == (4,) + pngs[0].shape
    for i, (kimg, _) in enumerate(grids):
        box = stamp_kimg(Image.fromarray(pngs[i]), kimg)[1]
        # Each frame is its own grid, untouched outside the stamp, and the stamp changed the corner.
        assert np.array_equal(_outside(frames[i], box), _outside(pngs[i], box))
        assert (frames[i][:box[3], :box[2]] != pngs[i][:box[3], :box[2]]).any(axis=2).mean() > 0.3
    # Different kimg, different stamp.
    assert not np.array_equal(frames[1][:box[3], :box[2]], frames[2][:box[3], :box[2]])

    out = tmp_path / "tl.gif"
    assert _generate_main()(["timelapse", real_run, "--out", str(out), "--fps", "4", "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    gif, durations = _gif_frames(out)
    assert len(gif) == 4 and durations == [250] * 4
    for i, frame in enumerate(gif):
        # GIF keeps 256 colours per frame: each frame is nearest to its own grid (kimg order), stamp included.
        dist = [np.abs(frame.astype(int) - f.astype(int)).mean() for f in frames]
        assert all(dist[i] < 0.5 * d for j, d in enumerate(dist) if j != i), dist

    small = tmp_path / "small.gif"
    assert _generate_main()(["timelapse", real_run, "--out", str(small), "--size", "64", "--no-progress"]) == 0
    h, w = pngs[0].shape[:2]
    with Image.open(small) as im:
        assert im.size == (64, round(h * 64 / w)) and im.n_frames == 4


def test_grids_of_another_shape_are_fitted_not_stretched(tmp_path):
    Image.new("RGB", (96, 64), (200, 0, 0)).save(tmp_path / "fakes000000.png")
    Image.new("RGB", (96, 32), (0, 200, 0)).save(tmp_path / "fakes000001.png")   # a resumed run with a new --grid
    frames = timelapse_frames(rd.fakes_grids(str(tmp_path)))
    assert frames.shape == (2, 64, 96, 3)
    column = frames[1][:, -1]
    assert (column[:16] == 0).all() and (column[-16:] == 0).all() and (column[16:48] == (0, 200, 0)).all()


def _fake_run(folder, n=3):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "training_options.json"), "w") as f:
        json.dump({"resolution": 16}, f)
    for k in range(n):
        Image.new("RGB", (48, 32), (80 * k, 60, 200 - 60 * k)).save(os.path.join(folder, f"fakes{k:06d}.png"))
    return str(folder)


@pytest.mark.parametrize("case, needle", [
    ("missing", "does not exist"), ("file", "is a file, not a training run folder"),
    ("not-a-run", "is not a training run folder"), ("no-fakes", "has no fakes*.png grids"),
    ("exists", "already exists; pass --overwrite"), ("extension", "must end in .gif or .mp4"),
    ("fps", "--fps must be a positive number"), ("size", "--size must be between"),
])
def test_timelapse_errors_are_one_line_and_write_nothing(case, needle, tmp_path, capsys):
    run = _fake_run(tmp_path / "run")
    out = tmp_path / "out" / "t.gif"
    extra = []
    if case == "missing":
        run = str(tmp_path / "absent")
    elif case == "file":
        run = os.path.join(run, "training_options.json")
    elif case == "not-a-run":
        run = str(tmp_path / "out")
        os.makedirs(run)
        Image.new("RGB", (8, 8)).save(os.path.join(run, "holiday.png"))
    elif case == "no-fakes":
        for name in os.listdir(run):
            if name.startswith("fakes"):
                os.remove(os.path.join(run, name))
    elif case == "exists":
        os.makedirs(out.parent)
        out.write_bytes(b"mine")
    elif case == "extension":
        out = tmp_path / "out" / "t.avi"
    elif case == "fps":
        extra = ["--fps", "0"]
    elif case == "size":
        extra = ["--size", "4"]
    before = sorted(os.listdir(tmp_path))
    assert _generate_main()(["timelapse", run, "--out", str(out), "--no-progress", *extra]) == 2
    assert needle in _error(capsys)
    assert sorted(os.listdir(tmp_path)) == before
    if case == "exists":
        assert out.read_bytes() == b"mine"
        assert _generate_main()(["timelapse", run, "--out", str(out), "--overwrite", "--no-progress"]) == 0
        with Image.open(out) as im:
            assert im.n_frames == 3


def test_timelapse_refuses_a_read_only_folder_and_mp4_without_ffmpeg(tmp_path, read_only, capsys):
    run = _fake_run(tmp_path / "run")
    folder = read_only(tmp_path / "ro")
    assert _generate_main()(["timelapse", run, "--out", folder + "/t.gif", "--no-progress"]) == 2
    assert _error(capsys).startswith(f"generate.py: error: --out: cannot write in {folder}")
    assert os.listdir(folder) == []
    mp4 = tmp_path / "t.mp4"
    code = _generate_main()(["timelapse", run, "--out", str(mp4), "--no-progress"])
    if shutil.which("ffmpeg") is None:
        assert code == 2 and "needs the ffmpeg program on PATH" in _error(capsys) and not mp4.exists()
    else:
        assert code == 0 and mp4.stat().st_size > 0


# ---------------------------------------------------------------- curves

def test_curves_of_a_real_run(real_run, tmp_path, capsys):
    stats = read_stats(real_run)
    assert [r["tick"] for r in stats] == [1, 2, 3]
    panels = dict(curve_panels(stats, read_metrics(real_run)))
    assert list(panels) == ["Losses", "D scores (mean D output)", "Gradient penalties (per-sample mean)",
                            "Metric swd1k"]
    assert set(panels["Losses"]) == {"G_loss", "D_loss"}
    assert set(panels["Gradient penalties (per-sample mean)"]) == {"r1"}
    assert set(panels["D scores (mean D output)"]) == {"real_score", "fake_score"}
    xs, ys = panels["Losses"]["G_loss"]
    assert xs == [r["kimg"] for r in stats] and ys == [r["G_loss"] for r in stats]
    assert set(panels["Metric swd1k"]) == {"swd1k_16", "swd1k_avg"}
    assert panels["Metric swd1k"]["swd1k_avg"][0] == [3.0]
    assert resolution_changes(stats) == [(stats[0]["kimg"], 16)]

    out = tmp_path / "curves.png"
    assert _generate_main()(["curves", real_run, "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    img = _png(out)
    assert img.shape[1] > 800 and img.shape[0] > 4 * 200     # four panels
    colors = {tuple(c) for c in img.reshape(-1, 3)[::7]}
    assert len(colors) > 50
    # matplotlib's first two line colours (tab:blue, tab:orange): the curves were drawn, not just the axes.
    assert any(np.abs(np.array(c) - (31, 119, 180)).max() < 20 for c in colors)
    assert any(np.abs(np.array(c) - (255, 127, 14)).max() < 20 for c in colors)


def _write_jsonl(path, rows, tail=""):
    with open(path, "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows) + tail)


def test_curves_read_any_losses_metric_names_and_a_cut_last_line(tmp_path):
    run = _fake_run(tmp_path / "run")
    rows = [{"tick": t, "kimg": 2.0 * t, "resolution": 32, "G_loss": 1.0 / t, "D_loss": 0.5, "real_score": 1.0,
             "fake_score": -1.0, "gp": 0.1 * t, "nonfinite_skips": 0.0, "sec_per_kimg": 9.0} for t in (3, 1, 2)]
    _write_jsonl(os.path.join(run, "stats.jsonl"), rows, tail='{"tick": 4, "kimg": 8.0, "G_lo')   # killed writer
    records = [
        {"results": {"fid50k": 90.0}, "metric": "fid50k", "snapshot": "network-snapshot-000002.keras"},
        {"results": {"fid50k": 70.0}, "metric": "fid50k", "snapshot": "network-snapshot-000004.500.keras"},
        {"results": {"fid50k": 60.0}, "metric": "fid50k", "snapshot": "network-snapshot-000002.keras"},  # re-run
        {"results": {"fid50k": 1.0}, "metric": "fid50k", "snapshot": "ffhq.pkl"},     # not on this run's axis
    ]
    _write_jsonl(os.path.join(run, "metric-fid50k.jsonl"), records)
    stats = read_stats(run)
    assert [r["tick"] for r in stats] == [1, 2, 3] and resolution_changes(stats) == []
    panels = dict(curve_panels(stats, read_metrics(run)))
    assert list(panels) == ["Losses", "D scores (mean D output)", "Gradient penalties (per-sample mean)",
                            "Metric fid50k"]     # nonfinite_skips (all 0) and sec_per_kimg are not drawn
    xs, ys = panels["Gradient penalties (per-sample mean)"]["gp"]
    assert xs == [2.0, 4.0, 6.0] and ys == pytest.approx([0.1, 0.2, 0.3])
    assert panels["Metric fid50k"]["fid50k"] == ([2.0, 4.5], [60.0, 70.0])

    out = tmp_path / "c.svg"
    assert _generate_main()(["curves", run, "--out", str(out)]) == 0
    assert out.read_text().lstrip().startswith("<?xml") and "fid50k" in out.read_text()

    with open(os.path.join(run, "stats.jsonl"), "a") as f:   # now the damaged line is in the middle
        f.write("\n" + json.dumps(rows[0]) + "\n")
    with pytest.raises(GenerateError, match=r"stats.jsonl:4: not a JSON object line"):
        read_stats(run)


@pytest.mark.parametrize("case, needle", [
    ("nothing", "nothing to plot"), ("extension", "must end in one of .png"),
    ("exists", "already exists; pass --overwrite"), ("not-a-run", "is not a training run folder"),
    ("no-matplotlib", 'pip install -e ".[plot]"'),
])
def test_curves_errors_are_one_line_and_write_nothing(case, needle, tmp_path, capsys, monkeypatch):
    run = _fake_run(tmp_path / "run")
    _write_jsonl(os.path.join(run, "stats.jsonl"), [{"tick": 1, "kimg": 1.0, "G_loss": 1.0, "D_loss": 1.0}])
    out = tmp_path / "out" / "c.png"
    if case == "nothing":
        os.remove(os.path.join(run, "stats.jsonl"))
    elif case == "extension":
        out = tmp_path / "out" / "c.gif"
    elif case == "exists":
        os.makedirs(out.parent)
        out.write_bytes(b"mine")
    elif case == "not-a-run":
        run = str(tmp_path / "out")
        os.makedirs(run)
    elif case == "no-matplotlib":
        # What an environment without the [plot] extra sees: importing matplotlib fails.
        for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends", "matplotlib.backends.backend_agg"):
            monkeypatch.setitem(__import__("sys").modules, name, None)
    before = sorted(os.listdir(tmp_path))
    assert _generate_main()(["curves", run, "--out", str(out)]) == 2
    assert needle in _error(capsys)
    assert sorted(os.listdir(tmp_path)) == before
    if case == "exists":
        assert out.read_bytes() == b"mine"
