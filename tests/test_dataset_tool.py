"""dataset_tool.py create_from_images on messy folders, plus the CLI's other subcommands."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow")

from stylegan_tf.data import create_from_images, open_dataset  # noqa: E402
from stylegan_tf.data import images as imlib  # noqa: E402
from stylegan_tf.data.workers import Workers, tensorflow_loaded  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _solid(w, h, color, mode="RGB"):
    return Image.new(mode, (w, h), color)


def _noise(w, h, seed):
    return Image.fromarray(np.random.RandomState(seed).randint(0, 256, [h, w, 3]).astype(np.uint8))


def _all_images(info, res=None):
    return np.concatenate(list(info.iterate_uint8(resolution=res, batch_size=64)))


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """Every kind of input a scraped folder holds; `expected` maps file -> skip kind (None = kept)."""
    d = tmp_path_factory.mktemp("messy") / "images"
    (d / "sub" / "deeper").mkdir(parents=True)
    (d / ".hidden").mkdir()
    outside = tmp_path_factory.mktemp("outside") / "secret.png"
    _noise(40, 40, 9).save(outside)
    exp = {}

    def save(rel, im, kept=True, **kw):
        im.save(d / rel, **kw)
        exp[rel] = None if kept else kw.get("_kind")

    save("upper.JPG", _noise(48, 40, 1), format="JPEG", quality=95)
    save("noextension", _noise(40, 50, 2), format="PNG")
    save("photo.jpeg", _noise(64, 48, 3), format="JPEG")
    save("sub/alpha.webp", _solid(40, 40, (255, 0, 0, 0), "RGBA"), format="WEBP", lossless=True)
    save("sub/palette.gif", _solid(40, 40, 3, "P"), format="GIF")
    save("sub/anim.gif", _solid(40, 40, (255, 0, 0)), format="GIF", save_all=True,
         append_images=[_solid(40, 40, (0, 0, 255))], duration=100)
    save("sub/deeper/bitmap.bmp", _noise(33, 45, 4), format="BMP")
    save("sub/scan.tiff", _noise(41, 41, 5), format="TIFF")
    save("sub/cmyk.jpg", _solid(40, 40, (0, 255, 255, 0), "CMYK"), format="JPEG")
    save("gray16.png", Image.fromarray(np.full([40, 40], 65535, np.uint16)))
    save("la.png", _solid(40, 40, (0, 0), "LA"))
    for rel, data, kind in [("empty.jpg", b"", "empty"),
                            ("error.jpg", b"<!DOCTYPE html>\n<html><body>403 Forbidden</body></html>", "html-page"),
                            ("random.png", np.random.RandomState(0).bytes(3000), "not-an-image"),
                            ("notes.txt", b"not a picture", "not-an-image")]:
        (d / rel).write_bytes(data)
        exp[rel] = kind
    data = (d / "upper.JPG").read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 2])
    exp["truncated.jpg"] = "truncated"
    png = (d / "noextension").read_bytes()
    (d / "corrupt.png").write_bytes(png[:100] + np.random.RandomState(1).bytes(len(png) - 100))
    exp["corrupt.png"] = "corrupt"
    _noise(20, 20, 6).save(d / "tiny.png")
    exp["tiny.png"] = "too-small"
    # A decompression bomb: a small file with a huge pixel count.
    Image.new("L", (12000, 12000)).save(d / "bomb.png", optimize=True)
    exp["bomb.png"] = "too-many-pixels"
    (d / "dup.jpg").write_bytes(data)
    exp["dup.jpg"] = None  # kept unless --dedupe
    os.symlink(outside, d / "link-out.png")
    exp["link-out.png"] = "link"
    os.symlink(d / "photo.jpeg", d / "sub" / "link-in.jpg")
    exp["sub/link-in.jpg"] = None
    _noise(40, 40, 7).save(d / ".hidden" / "x.png")
    _noise(40, 40, 8).save(d / ".dotfile.png")
    (d / "Thumbs.db").write_bytes(b"\0" * 100)
    os.mkfifo(d / "pipe.png")  # would block a naive reader forever
    exp["pipe.png"] = "unreadable"
    return d, exp


def test_messy_folder_keeps_good_skips_bad_with_reasons(messy, tmp_path):
    src, exp = messy
    s = create_from_images(tmp_path / "out", src, resolution=32, max_pixels=50_000_000, workers=2, progress=False)
    kept = json.load(open(tmp_path / "out" / "files.json"))
    assert sorted(kept) == sorted(k for k, v in exp.items() if v is None)
    skipped = json.load(open(tmp_path / "out" / "skipped.json"))
    got = {f["path"]: f["kind"] for f in skipped["files"]}
    assert got == {k: v for k, v in exp.items() if v is not None}
    assert all(f["reason"] for f in skipped["files"])
    assert "--max-pixels" in [f["reason"] for f in skipped["files"] if f["path"] == "bomb.png"][0]
    assert s.kept == len(kept) and len(s.skipped) == skipped["count"]
    assert f"kept {s.kept} images, skipped {len(s.skipped)}" in str(s)
    meta = json.load(open(tmp_path / "out" / "dataset.json"))
    assert meta["count"] == s.kept and meta["skipped"] == skipped["count"] and meta["resolution"] == 32
    info = open_dataset(tmp_path / "out")
    assert info.num_images == s.kept and sorted(info.levels) == [4, 8, 16, 32]
    images = dict(zip(kept, _all_images(info)))
    # Modes: transparent red over white is white; CMYK magenta+yellow is RGB red; 16-bit white is 255;
    # palette index 3 is its palette colour; transparent LA is white.
    np.testing.assert_array_equal(images["sub/alpha.webp"], 255)
    np.testing.assert_allclose(images["sub/cmyk.jpg"].reshape(-1, 3).mean(0), [255, 0, 0], atol=8)
    np.testing.assert_array_equal(images["gray16.png"], 255)
    pal = Image.new("P", (1, 1), 3).convert("RGB").getpixel((0, 0))
    np.testing.assert_array_equal(images["sub/palette.gif"], np.broadcast_to(pal, (32, 32, 3)))
    np.testing.assert_array_equal(images["la.png"], 255)
    np.testing.assert_allclose(images["sub/anim.gif"].reshape(-1, 3).mean(0), [255, 0, 0], atol=2)  # 1st frame
    # With --dedupe the byte-identical copy goes; the in-folder link is a duplicate of its target too.
    s2 = create_from_images(tmp_path / "dedupe", src, resolution=32, dedupe=True, workers=1, progress=False)
    dup = {f["path"] for f in s2.skipped if f["kind"] == "duplicate"}
    assert dup == {"upper.JPG", "sub/link-in.jpg"} or dup == {"dup.jpg", "sub/link-in.jpg"}
    assert s2.kept == s.kept - 2


def test_workers_are_tf_free_and_match_single_process(messy, tmp_path):
    import tensorflow  # noqa: F401 - the parent has TF; its workers must not
    with Workers(2) as w:
        assert list(w.imap(tensorflow_loaded, range(4))) == [False] * 4
    src, _ = messy
    create_from_images(tmp_path / "a", src, resolution=16, workers=1, progress=False)
    create_from_images(tmp_path / "b", src, resolution=16, workers=2, progress=False)
    for name in ("a-r04.tfrecords", "a-r02.tfrecords"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name.replace("a-", "b-")).read_bytes()


def _numbered(folder, n, size=16, sub=None):
    """n images whose colour encodes their index, named so that sorted order = index order."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        _solid(size, size, (i, 255 - i, (7 * i) % 256)).save(folder / f"img{i:03d}.png")


def _indices(info):
    return [int(x[0, 0, 0]) for x in _all_images(info)]


def test_order_is_the_originals_shuffle_and_sorted_with_shuffle_0(tmp_path):
    _numbered(tmp_path / "src", 30)
    create_from_images(tmp_path / "shuf", tmp_path / "src", workers=1, progress=False)
    order = np.arange(30)
    np.random.RandomState(123).shuffle(order)
    info = open_dataset(tmp_path / "shuf")
    assert info.resolution == 16  # default: largest power of two <= median short side
    assert _indices(info) == order.tolist()
    create_from_images(tmp_path / "sorted", tmp_path / "src", shuffle=False, workers=1, progress=False)
    assert _indices(open_dataset(tmp_path / "sorted")) == list(range(30))
    create_from_images(tmp_path / "seed5", tmp_path / "src", seed=5, max_images=10, workers=1, progress=False)
    order5 = np.arange(30)
    np.random.RandomState(5).shuffle(order5)
    assert _indices(open_dataset(tmp_path / "seed5")) == order5[:10].tolist()


def test_labels_from_subdirs(tmp_path):
    for k, cls in enumerate(["impressionism", "baroque", "cubism"]):
        _numbered(tmp_path / "art" / cls, 3 + k)
    _solid(16, 16, (1, 2, 3)).save(tmp_path / "art" / "loose.png")
    s = create_from_images(tmp_path / "ds", tmp_path / "art", labels_from_subdirs=True, workers=1, progress=False)
    info = open_dataset(tmp_path / "ds")
    assert info.label_names == ["baroque", "cubism", "impressionism"] and info.label_size == 3
    files = json.load(open(tmp_path / "ds" / "files.json"))
    assert [info.label_names[i] for i in info.labels.argmax(1)] == [f.split("/")[0] for f in files]
    assert sorted(info.labels.sum(0).tolist()) == [3, 4, 5]
    assert [f["kind"] for f in s.skipped] == ["no-class-folder"]
    assert json.load(open(tmp_path / "ds" / "dataset.json"))["label_names"] == info.label_names


def test_transforms_orientation_and_upscale_rules(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    # 64x32: left half red, right half blue, EXIF orientation 6 (display rotated 90 degrees clockwise).
    a = np.zeros([32, 64, 3], np.uint8)
    a[:, :32, 0] = 255
    a[:, 32:, 2] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(a).save(src / "rotated.jpg", exif=exif, quality=98)
    opts = dict(resolution=32, channels=3, transform="pad", resample="lanczos", alpha_bg=(255, 255, 255),
                pad_color=(0, 255, 0), wide_aspect=4 / 3, min_size=32, allow_upscale=False, max_pixels=10 ** 7)
    img = imlib.load_image(str(src / "rotated.jpg"), opts).transpose(1, 2, 0).astype(int)
    # Upright it is 32 wide x 64 tall: green bars left and right, red on top, blue below.
    assert np.all(np.abs(img[:, :7] - [0, 255, 0]) < 20) and np.all(np.abs(img[:, -7:] - [0, 255, 0]) < 20)
    assert np.all(np.abs(img[4:12, 12:20] - [255, 0, 0]) < 40) and np.all(np.abs(img[20:28, 12:20] - [0, 0, 255]) < 40)
    crop = imlib.load_image(str(src / "rotated.jpg"), dict(opts, transform="center-crop")).transpose(1, 2, 0)
    assert crop.shape == (32, 32, 3)  # the crop fills the square: no pad colour anywhere
    assert not np.any(np.all(np.abs(crop.astype(int) - [0, 255, 0]) < 30, axis=-1))
    st = imlib.load_image(str(src / "rotated.jpg"), dict(opts, transform="stretch")).transpose(1, 2, 0).astype(int)
    assert np.all(np.abs(st[2:12, 4:28] - [255, 0, 0]) < 40)
    wide = imlib.load_image(str(src / "rotated.jpg"), dict(opts, transform="center-crop-wide", min_size=16))
    wide = wide.transpose(1, 2, 0).astype(int)
    assert np.all(np.abs(wide[:4] - [0, 255, 0]) < 20) and np.all(np.abs(wide[-4:] - [0, 255, 0]) < 20)
    gray = imlib.load_image(str(src / "rotated.jpg"), dict(opts, channels=1))
    assert gray.shape == (1, 32, 32)
    with pytest.raises(imlib.SkipImage) as unreadable:  # open() fails (here: a folder): skipped, no crash
        imlib.probe(str(src))
    assert unreadable.value.kind == "unreadable"
    # Never upscale by default; --allow-upscale or a smaller --min-size keeps small images.
    _noise(24, 24, 1).save(src / "small.png")
    with pytest.raises(imlib.SkipImage, match="allow-upscale"):
        imlib.load_image(str(src / "small.png"), opts)
    assert imlib.load_image(str(src / "small.png"), dict(opts, allow_upscale=True)).shape == (3, 32, 32)
    assert imlib.load_image(str(src / "small.png"), dict(opts, min_size=20)).shape == (3, 32, 32)
    # A large photo through the JPEG draft path stays close to the full decode.
    big = np.kron(np.random.RandomState(0).randint(0, 256, [8, 8, 3]), np.ones([64, 64, 1])).astype(np.uint8)
    Image.fromarray(big).save(src / "big.jpg", quality=95)
    Image.fromarray(big).save(src / "big.png")
    j = imlib.load_image(str(src / "big.jpg"), dict(opts, transform="center-crop")).astype(int)
    p = imlib.load_image(str(src / "big.png"), dict(opts, transform="center-crop")).astype(int)
    assert np.abs(j - p).mean() < 3


def test_atomic_failure_and_overwrite(tmp_path, monkeypatch):
    _numbered(tmp_path / "src", 8)
    create_from_images(tmp_path / "ds", tmp_path / "src", workers=1, progress=False)
    before = {n: (tmp_path / "ds" / n).read_bytes() for n in os.listdir(tmp_path / "ds")}
    with pytest.raises(FileExistsError, match="--overwrite"):
        create_from_images(tmp_path / "ds", tmp_path / "src", workers=1, progress=False)
    calls = []

    def failing(args):
        calls.append(args)
        if len(calls) == 4:
            raise RuntimeError("disk full")
        return real(args)

    real = imlib.load_task
    monkeypatch.setattr(imlib, "load_task", failing)
    for target, overwrite in (("new", False), ("ds", True)):
        calls.clear()
        with pytest.raises(RuntimeError, match="disk full"):
            create_from_images(tmp_path / target, tmp_path / "src", overwrite=overwrite, workers=1, progress=False)
    monkeypatch.undo()
    assert not (tmp_path / "new").exists()
    assert sorted(os.listdir(tmp_path)) == ["ds", "src"]  # no partial folders left behind
    assert {n: (tmp_path / "ds" / n).read_bytes() for n in os.listdir(tmp_path / "ds")} == before
    with pytest.raises(ValueError, match="must not contain the image folder"):
        create_from_images(tmp_path, tmp_path / "src", overwrite=True, workers=1, progress=False)
    # A dataset written inside its own image folder is not read back as input when recreated.
    create_from_images(tmp_path / "src" / "ds", tmp_path / "src", workers=1, progress=False)
    s = create_from_images(tmp_path / "src" / "ds", tmp_path / "src", overwrite=True, workers=1, progress=False)
    assert (s.kept, len(s.skipped)) == (8, 0)


def _cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, os.path.join(REPO, "dataset_tool.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=REPO)


def test_cli_errors_are_one_line_and_nonzero(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.jpg").write_bytes(b"<html>nope</html>")
    (tmp_path / "junk" / "b.png").write_bytes(b"")
    r = _cli("create_from_images", tmp_path / "out", tmp_path / "junk", "--workers", "1")
    assert r.returncode != 0 and not (tmp_path / "out").exists()
    # The progress bar also writes to stderr; the error is its own single last line, with no traceback.
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("dataset_tool.py: error: ") and "Traceback" not in r.stderr
    assert "no usable images" in last and "html-page: 1" in last and "empty: 1" in last
    r = _cli("create_from_images", tmp_path / "out", tmp_path / "junk", "--resolution", "48")
    assert r.returncode != 0 and "--resolution" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def _main(capsys, *args):
    """Run dataset_tool.main in this process (a subprocess per command would re-import TensorFlow)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("dataset_tool_cli", os.path.join(REPO, "dataset_tool.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    code = tool.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_commands_end_to_end(tmp_path, capsys):
    _numbered(tmp_path / "src", 12, size=40)
    code, out, err = _main(capsys, "create_from_images", tmp_path / "ds", tmp_path / "src", "--resolution", "16",
                           "--workers", "2", "--quiet")
    assert code == 0, err
    assert "kept 12 images, skipped 0" in out
    code, out, _ = _main(capsys, "info", tmp_path / "ds")
    assert code == 0 and "images      12" in out and "16:12" in out and "4:12" in out
    code, _, err = _main(capsys, "info", tmp_path / "src")
    assert code == 2 and err.count("\n") == 1 and "no *.tfrecords" in err
    code, _, _ = _main(capsys, "extract", tmp_path / "ds", tmp_path / "png", "--level", "1", "--max", "5")
    assert code == 0 and sorted(os.listdir(tmp_path / "png"))[-1] == "img00000004.png"
    assert Image.open(tmp_path / "png" / "img00000000.png").size == (8, 8)
    code, _, err = _main(capsys, "extract", tmp_path / "ds", tmp_path / "png", "--level", "3")
    assert code == 2 and "--level 3" in err
    code, _, _ = _main(capsys, "grid", tmp_path / "ds", tmp_path / "grid.png", "--count", "9")
    assert code == 0 and Image.open(tmp_path / "grid.png").size == (48, 48)
    code, out, _ = _main(capsys, "compare", tmp_path / "ds", tmp_path / "ds")
    assert code == 0 and "identical images 12 / 12" in out
    code, _, _ = _main(capsys, "create_from_images", tmp_path / "ds2", tmp_path / "src", "--resolution", "16",
                       "--shuffle", "0", "--max-images", "5", "--workers", "1", "--quiet")
    assert code == 0
    code, out, _ = _main(capsys, "compare", tmp_path / "ds", tmp_path / "ds2")
    assert code == 1 and "images: A 12, B 5; identical images" in out
    # `info` checks that every level holds the same number of records.
    (tmp_path / "ds" / "ds-r02.tfrecords").write_bytes((tmp_path / "ds2" / "ds2-r02.tfrecords").read_bytes())
    code, _, err = _main(capsys, "info", tmp_path / "ds")
    assert code == 2 and err.count("\n") == 1 and "different image counts" in err and "r02: 5" in err
    code, _, _ = _main(capsys, "create_demo", tmp_path / "demo", "--count", "8", "--resolution", "16", "--quiet",
                       "--label-attribute", "eye_color")
    assert code == 0 and open_dataset(tmp_path / "demo").label_size == 6
    # Usage mistakes are one line too (argparse would print the whole usage first).
    with pytest.raises(SystemExit) as exit_info:
        _main(capsys, "create_from_images", tmp_path / "x", tmp_path / "src", "--workers", "0")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "--workers: must be >= 1" in err


def test_cli_ctrl_c_leaves_no_dataset(tmp_path, capsys, monkeypatch):
    _numbered(tmp_path / "src", 6)

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(imlib, "load_task", interrupted)  # Ctrl-C while images are being written
    code, _, err = _main(capsys, "create_from_images", tmp_path / "ds", tmp_path / "src", "--workers", "1",
                         "--quiet")
    assert code == 130 and err == "dataset_tool.py: interrupted; no dataset was written\n"
    assert sorted(os.listdir(tmp_path)) == ["src"]  # no dataset, no .partial folder


def test_workers_do_not_rerun_the_main_script(tmp_path):
    # train.py imports TensorFlow at the top and then builds the demo dataset: spawn/forkserver children
    # would re-run that script's top level (and import TF in every worker) unless the pool hides __main__.
    # The script below records each process that runs its top level, which is cheaper than importing TF.
    script, marker = tmp_path / "main_script.py", tmp_path / "ran.txt"
    script.write_text("import multiprocessing, os\n"
                      f"open({str(marker)!r}, 'a').write(f'{{os.getpid()}}\\n')\n"
                      "from stylegan_tf.data.workers import Workers, tensorflow_loaded\n"
                      "if __name__ == '__main__':\n"
                      "    with Workers(2) as w:\n"
                      "        print('workers', list(w.imap(tensorflow_loaded, range(4), chunksize=1)),\n"
                      "              len(multiprocessing.active_children()))\n"
                      "    print('parent', os.getpid())\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "workers [False, False, False, False] 2" in r.stdout  # the tasks ran, in two child processes
    parent = r.stdout.split("parent ")[1].split()[0]
    assert marker.read_text().split() == [parent]  # only the parent ran the script's top level


def test_mnist_and_cifar10_importers(tmp_path):
    import gzip
    import pickle
    from stylegan_tf.data import importers
    rng = np.random.RandomState(0)
    n = 12
    digits = rng.randint(0, 256, [n, 28, 28]).astype(np.uint8)
    classes = rng.randint(0, 10, n).astype(np.uint8)
    (tmp_path / "mnist").mkdir()
    with gzip.open(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(np.array([2051, n, 28, 28], ">u4").tobytes() + digits.tobytes())
    with gzip.open(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(np.array([2049, n], ">u4").tobytes() + classes.tobytes())
    info = importers.create_mnist(tmp_path / "m", tmp_path / "mnist")
    order = np.arange(n)
    np.random.RandomState(123).shuffle(order)
    got = np.concatenate(list(info.iterate_uint8()))[..., 0]
    assert got.shape == (n, 32, 32) and not got[:, :2].any() and not got[:, :, -2:].any()
    np.testing.assert_array_equal(got[:, 2:30, 2:30], digits[order])
    np.testing.assert_array_equal(info.labels.argmax(1), classes[order])
    assert info.label_size == 10
    # CIFAR-10, python version (a pickle, read with a numpy-only unpickler) and binary version.
    pics = rng.randint(0, 256, [5, 4, 3072]).astype(np.uint8)
    labs = rng.randint(0, 10, [5, 4])
    (tmp_path / "py").mkdir()
    (tmp_path / "bin").mkdir()
    for k in range(5):
        with open(tmp_path / "py" / f"data_batch_{k + 1}", "wb") as f:
            pickle.dump({"data": pics[k], "labels": labs[k].tolist()}, f, protocol=2)
        np.concatenate([labs[k][:, None].astype(np.uint8), pics[k]], 1).tofile(
            tmp_path / "bin" / f"data_batch_{k + 1}.bin")
    a = importers.create_cifar10(tmp_path / "ca", tmp_path / "py", shuffle=False)
    b = importers.create_cifar10(tmp_path / "cb", tmp_path / "bin", shuffle=False)
    want = pics.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    for info in (a, b):
        np.testing.assert_array_equal(np.concatenate(list(info.iterate_uint8())), want)
        np.testing.assert_array_equal(info.labels.argmax(1), labs.reshape(-1))
        assert info.label_names[0] == "airplane"
    # A pickle that would run code is refused.
    with open(tmp_path / "py" / "data_batch_1", "wb") as f:
        pickle.dump({"data": os.system, "labels": []}, f)
    with pytest.raises(ValueError, match="refusing to load"):
        importers.create_cifar10(tmp_path / "cc", tmp_path / "py")
    assert not (tmp_path / "cc").exists()


def test_cli_info_reads_every_record_and_names_the_damage(tmp_path, capsys):
    code, _, err = _main(capsys, "create_demo", tmp_path / "ds", "--count", "24", "--resolution", "16", "--quiet",
                         "--workers", "1")
    assert code == 0, err
    code, intact, _ = _main(capsys, "info", tmp_path / "ds")
    assert code == 0 and "16:24" in intact
    level = tmp_path / "ds" / "ds-r03.tfrecords"
    data = bytearray(level.read_bytes())
    step = len(data) // 24
    data[step * 10 + 100:step * 10 + 104] = b"\xff\xff\xff\xff"  # `dd` of 4 bytes of 0xff: same size, bad bytes
    level.write_bytes(bytes(data))
    code, out, err = _main(capsys, "info", tmp_path / "ds")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"dataset_tool.py: error: {level}: record 10: data damaged (checksum mismatch")
    code, out, _ = _main(capsys, "info", tmp_path / "ds", "--quick")  # sizes only, and it says so
    assert code == 0 and "not read: --quick" in out and "every record verified" in intact


def test_overwrite_replaces_only_a_dataset(tmp_path, capsys, monkeypatch):
    from stylegan_tf.data import importers
    _numbered(tmp_path / "src", 6)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "ideas.txt").write_text("my notes")
    (tmp_path / "afile").write_text("keep")
    for target in (notes, tmp_path / "afile"):
        for args in (("create_from_images", target, tmp_path / "src", "--workers", "1"),
                     ("create_demo", target, "--count", "4", "--resolution", "8", "--workers", "1")):
            code, _, err = _main(capsys, *args, "--overwrite", "--quiet")
            assert code == 2 and err.count("\n") == 1 and "--overwrite only replaces a dataset" in err, err
    with pytest.raises(ValueError, match="not a dataset \\(it holds ideas.txt\\)"):
        importers.write_arrays(notes, np.zeros([2, 1, 8, 8], np.uint8), np.array([0, 1]), ["a", "b"],
                               tmp_path, "test", overwrite=True)
    assert os.listdir(notes) == ["ideas.txt"] and (tmp_path / "afile").read_text() == "keep"
    # A dataset (level files and sidecars, or an empty folder) is replaced.
    (tmp_path / "empty").mkdir()
    for target in ("ds", "ds", "empty"):
        code, _, err = _main(capsys, "create_from_images", tmp_path / target, tmp_path / "src", "--workers", "1",
                             "--overwrite", "--quiet")
        assert code == 0, err
    # Checked again just before the swap: a file put into the dataset folder meanwhile is not deleted.
    real = imlib.load_task

    def note_meanwhile(args):
        (tmp_path / "ds" / "todo.txt").write_text("added while the new dataset was written")
        return real(args)

    monkeypatch.setattr(imlib, "load_task", note_meanwhile)
    code, _, err = _main(capsys, "create_from_images", tmp_path / "ds", tmp_path / "src", "--workers", "1",
                         "--overwrite", "--quiet")
    assert code == 2 and "it holds todo.txt" in err
    assert (tmp_path / "ds" / "todo.txt").exists() and open_dataset(tmp_path / "ds").num_images == 6
    assert sorted(os.listdir(tmp_path)) == ["afile", "ds", "empty", "notes", "src"]  # no temp folders left


def _mnist(folder, n=4):
    import gzip
    folder.mkdir()
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(np.array([2051, n, 28, 28], ">u4").tobytes() + bytes(n * 28 * 28))
    with gzip.open(folder / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(np.array([2049, n], ">u4").tobytes() + bytes(range(n)))
    return folder


def test_every_writer_overwrites_only_its_own_output(tmp_path, capsys):
    """--overwrite of each command that writes: a folder of the user's, a file, or a folder holding a dataset and
    something more is refused with one line and left as it was; so is a folder where grid writes its picture
    (a file of that name it replaces: the user named it)."""
    _numbered(tmp_path / "src", 5)
    mnist = _mnist(tmp_path / "mnist")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "ideas.txt").write_text("my notes")
    (tmp_path / "afile").write_text("keep")
    assert _main(capsys, "create_mnist", tmp_path / "ds", mnist)[0] == 0
    (tmp_path / "ds" / "mine.txt").write_text("mine")  # a dataset folder with a file of the user's in it
    writers = (("create_from_images", "{}", tmp_path / "src", "--workers", "1", "--quiet"),
               ("create_demo", "{}", "--count", "4", "--resolution", "8", "--workers", "1", "--quiet"),
               ("create_mnist", "{}", mnist), ("create_cifar10", "{}", mnist),
               ("grid", tmp_path / "ds", "{}"))
    for target in (notes, tmp_path / "afile", tmp_path / "ds"):
        for args in writers[:-1] if target.is_file() else writers:
            code, out, err = _main(capsys, *[target if a == "{}" else a for a in args], "--overwrite")
            assert code == 2 and out == "" and err.count("\n") == 1, (args, target, err)
    assert os.listdir(notes) == ["ideas.txt"] and (tmp_path / "afile").read_text() == "keep"
    assert (tmp_path / "ds" / "mine.txt").read_text() == "mine" and open_dataset(tmp_path / "ds").num_images == 4
    assert sorted(os.listdir(tmp_path)) == ["afile", "ds", "mnist", "notes", "src"]
    (tmp_path / "ds" / "mine.txt").unlink()
    assert _main(capsys, "create_mnist", tmp_path / "ds", mnist, "--overwrite")[0] == 0  # its own output: replaced


def test_overwrite_refuses_a_link_the_working_folder_and_sidecars_without_levels(tmp_path, capsys, monkeypatch):
    """The one rule of atomic.check_dir_target for datasets too, checked before any image is read: a link to a
    dataset, the dataset the tool runs in, a folder of sidecar names only (files.json alone proves nothing) and
    a folder holding a link named like a level file are refused."""
    _numbered(tmp_path / "src", 4)
    assert _main(capsys, "create_from_images", tmp_path / "ds", tmp_path / "src", "--workers", "1", "--quiet")[0] == 0
    before = sorted(os.listdir(tmp_path / "ds"))
    (tmp_path / "link").symlink_to(tmp_path / "ds")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "files.json").write_text("[]")
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "x-r02.tfrecords").symlink_to(tmp_path / "lists" / "files.json")

    def load_task(args):
        raise AssertionError(f"read {args[1]} before refusing the target")

    monkeypatch.setattr(imlib, "load_task", load_task)
    for target, reason in ((tmp_path / "link", "it is a link"), (tmp_path / "lists", "no <name>-rNN.tfrecords"),
                           (tmp_path / "linked", "it holds x-r02.tfrecords"), (".", "the working folder")):
        monkeypatch.chdir(tmp_path / "ds")
        code, out, err = _main(capsys, "create_from_images", target, tmp_path / "src", "--workers", "1", "--quiet",
                               "--overwrite")
        assert code == 2 and out == "" and err.count("\n") == 1 and reason in err, (target, err)
        assert "--overwrite only replaces a dataset: choose another folder" in err
    monkeypatch.chdir(tmp_path)
    assert os.path.islink(tmp_path / "link") and sorted(os.listdir(tmp_path / "ds")) == before
    assert os.listdir(tmp_path / "lists") == ["files.json"] and os.listdir(tmp_path / "linked") == ["x-r02.tfrecords"]
    assert sorted(os.listdir(tmp_path)) == ["ds", "link", "linked", "lists", "src"]


def test_grid_and_extract_refuse_to_replace_files(tmp_path, capsys):
    _numbered(tmp_path / "src", 5)
    assert _main(capsys, "create_from_images", tmp_path / "ds", tmp_path / "src", "--workers", "1", "--quiet")[0] == 0
    (tmp_path / "g.png").write_bytes(b"my picture")
    code, _, err = _main(capsys, "grid", tmp_path / "ds", tmp_path / "g.png")
    assert code == 2 and err.count("\n") == 1 and "already exists; pass --overwrite" in err
    assert (tmp_path / "g.png").read_bytes() == b"my picture"
    assert _main(capsys, "grid", tmp_path / "ds", tmp_path / "g.png", "--overwrite")[0] == 0
    assert Image.open(tmp_path / "g.png").size == (48, 32)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "img00000003.png").write_bytes(b"mine")
    (tmp_path / "out" / "other.png").write_bytes(b"other")
    code, _, err = _main(capsys, "extract", tmp_path / "ds", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1 and "already holds img00000003.png; pass --overwrite" in err
    assert sorted(os.listdir(tmp_path / "out")) == ["img00000003.png", "other.png"]  # checked before writing
    assert _main(capsys, "extract", tmp_path / "ds", tmp_path / "out", "--max", "3")[0] == 0  # no clash
    assert _main(capsys, "extract", tmp_path / "ds", tmp_path / "out", "--overwrite")[0] == 0
    assert len(os.listdir(tmp_path / "out")) == 6 and (tmp_path / "out" / "other.png").read_bytes() == b"other"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_disk_full_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    import errno
    import tensorflow as tf
    from stylegan_tf.data import tfrecords
    _numbered(tmp_path / "src", 6)
    parent = tmp_path / "out"
    parent.mkdir()
    # TensorFlow's own writer on a full device (/dev/full answers every write with ENOSPC).
    real_writer = tf.io.TFRecordWriter
    monkeypatch.setattr(tf.io, "TFRecordWriter", lambda path, *a: real_writer("/dev/full"))
    code, _, err = _main(capsys, "create_demo", parent / "demo", "--count", "300", "--resolution", "32",
                         "--workers", "1", "--quiet")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"dataset_tool.py: error: {parent / 'demo'}: disk full while writing the dataset "
                          "(it needs about 1.2 MB, ")
    monkeypatch.undo()
    assert os.listdir(parent) == []

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "dataset.json")

    monkeypatch.setattr(tfrecords, "write_metadata", no_space)
    code, _, err = _main(capsys, "create_from_images", parent / "ds", tmp_path / "src", "--workers", "1", "--quiet")
    assert code == 2 and err.count("\n") == 1 and f"{parent / 'ds'}: disk full while writing the dataset" in err
    assert os.listdir(parent) == []
    monkeypatch.undo()
    assert _main(capsys, "create_from_images", parent / "ds", tmp_path / "src", "--workers", "1", "--quiet")[0] == 0
    import stylegan_tf.image_grid as image_grid
    real_save, saved = image_grid.save_image, []

    def fills_up(image, path):
        if len(saved) == 4:
            raise OSError(errno.ENOSPC, "No space left on device", path)
        saved.append(real_save(image, path))

    monkeypatch.setattr(image_grid, "save_image", fills_up)
    code, _, err = _main(capsys, "extract", parent / "ds", tmp_path / "png")
    assert code == 2 and err.count("\n") == 1 and "disk full after 4 of 6 PNGs" in err
    assert sorted(os.listdir(tmp_path / "png")) == [f"img{i:08d}.png" for i in range(4)]  # whole files only


def test_next_run_removes_what_a_sigkilled_run_left(tmp_path, capsys):
    # What `kill -9` of dataset_tool leaves: its hidden temporary dataset folder (made here without TF).
    script = ("import os, sys\nfrom stylegan_tf.atomic import atomic_dir\n"
              "with atomic_dir(sys.argv[1]) as tmp:\n"
              "    open(os.path.join(tmp, 'ds-r05.tfrecords'), 'wb').write(b'x' * 1000000)\n"
              "    os.kill(os.getpid(), 9)\n")
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path / "ds")], cwd=REPO, capture_output=True)
    assert r.returncode == -9
    (left,) = os.listdir(tmp_path)
    assert left.startswith(".ds.") and left.endswith(".partial")
    (tmp_path / ".keep.partial").mkdir()  # a hidden folder of the user's: not ours, never touched
    code, _, err = _main(capsys, "create_demo", tmp_path / "other", "--count", "4", "--resolution", "8",
                         "--workers", "1", "--quiet")
    assert code == 0 and err == f"dataset_tool.py: cleaned up {tmp_path / left}, left by an interrupted run\n"
    assert sorted(os.listdir(tmp_path)) == [".keep.partial", "other"]
