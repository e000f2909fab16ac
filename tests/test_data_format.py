"""The official TFRecord layout: pyramid, records, labels, and compatibility with the original reader; the data
package's module structure."""
import ast
import errno
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from stylegan_tf.data import DatasetError, DatasetWriter, build_pyramid, open_dataset  # noqa: E402
from stylegan_tf.data import tfrecords  # noqa: E402
from stylegan_tf.data.records import (RecordWriter, crc32c, image_example, masked_crc32c,  # noqa: E402
                                      parse_example)
from stylegan_tf.data.tfrecords import scan_level, verify_level  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


def _exact_box_means(image_chw):
    """Independent integer reference: block sums, then round-half-to-even of sum / 4**k."""
    out = []
    c, r, _ = image_chw.shape
    k = 0
    while (r >> k) >= 4:
        f = 1 << k
        sums = image_chw.astype(np.int64).reshape(c, r // f, f, r // f, f).sum(axis=(2, 4))
        q, rem = np.divmod(sums, f * f)
        twice = 2 * rem
        up = (twice > f * f) | ((twice == f * f) & (q % 2 == 1))  # half to even
        out.append((q + up).astype(np.uint8))
        k += 1
    return out


def test_pyramid_is_exact_box_mean_rounded_half_to_even():
    rng = np.random.RandomState(0)
    for image in (rng.randint(0, 256, [3, 64, 64]).astype(np.uint8),
                  # many exact .5 ties: a checkerboard of 0/1 averages to 0.5 at every level
                  (np.indices([64, 64]).sum(0) % 2).astype(np.uint8)[None].repeat(1, 0),
                  np.full([1, 16, 16], 255, np.uint8)):
        levels = build_pyramid(image)
        ref = _exact_box_means(image)
        assert [lv.shape for lv in levels] == [r.shape for r in ref]
        for lv, r in zip(levels, ref):
            np.testing.assert_array_equal(lv, r)
    # A tie must round to even (0.5 -> 0 on the checkerboard), not up.
    assert build_pyramid((np.indices([8, 8]).sum(0) % 2).astype(np.uint8)[None])[1].max() == 0


def _write(folder, name, images, labels=None, use_tensorflow=None):
    os.makedirs(folder, exist_ok=True)
    with DatasetWriter(folder, name, images.shape[-1], images.shape[1], use_tensorflow=use_tensorflow) as w:
        for im in images:
            w.add(build_pyramid(im))
        if labels is not None:
            w.write_labels(labels)


def test_round_trip_every_level_and_official_parse(tmp_path):
    rng = np.random.RandomState(1)
    images = rng.randint(0, 256, [5, 3, 32, 32]).astype(np.uint8)
    labels = np.eye(5, dtype=np.float32)[[0, 2, 4, 1, 3]]
    _write(tmp_path / "ds", "ds", images, labels)
    names = sorted(os.listdir(tmp_path / "ds"))
    assert names == ["ds-r02.tfrecords", "ds-r03.tfrecords", "ds-r04.tfrecords", "ds-r05.tfrecords",
                     "ds-rxx.labels"]
    for lod, res in enumerate([32, 16, 8, 4]):
        path = str(tmp_path / "ds" / f"ds-r{int(np.log2(res)):02d}.tfrecords")
        # Exactly the original reader's parse: fixed-length shape [3] int64 + one bytes string, raw uint8 CHW.
        parsed = []
        for rec in tf.data.TFRecordDataset(path, compression_type=""):
            f = tf.io.parse_single_example(rec, features={
                "shape": tf.io.FixedLenFeature([3], tf.int64), "data": tf.io.FixedLenFeature([], tf.string)})
            parsed.append(tf.reshape(tf.io.decode_raw(f["data"], tf.uint8), f["shape"]).numpy())
        want = [build_pyramid(im)[lod] for im in images]
        np.testing.assert_array_equal(np.stack(parsed), np.stack(want))
        assert parsed[0].shape == (3, res, res)
    loaded = np.load(tmp_path / "ds" / "ds-rxx.labels")
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, labels)


def _official_exporter(folder, images_chw, labels=None, deterministic=False):
    """What the original TFRecordExporter writes, re-expressed with TF2 names (no TF1 in this env)."""
    os.makedirs(folder, exist_ok=True)
    prefix = os.path.join(folder, os.path.basename(folder))
    res_log2 = int(np.log2(images_chw.shape[2]))
    writers = [tf.io.TFRecordWriter(prefix + "-r%02d.tfrecords" % (res_log2 - lod),
                                    tf.io.TFRecordOptions(compression_type=""))
               for lod in range(res_log2 - 1)]
    for img in images_chw:
        for lod, w in enumerate(writers):
            if lod:
                img = img.astype(np.float32)
                img = (img[:, 0::2, 0::2] + img[:, 0::2, 1::2] + img[:, 1::2, 0::2] + img[:, 1::2, 1::2]) * 0.25
            quant = np.rint(img).clip(0, 255).astype(np.uint8)
            ex = tf.train.Example(features=tf.train.Features(feature={
                "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=quant.shape)),
                "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[quant.tobytes()]))}))
            w.write(ex.SerializeToString(deterministic=deterministic))
    for w in writers:
        w.close()
    if labels is not None:
        with open(prefix + "-rxx.labels", "wb") as f:
            np.save(f, labels.astype(np.float32))


def test_official_dataset_is_read_and_ours_is_byte_identical(tmp_path):
    rng = np.random.RandomState(2)
    images = rng.randint(0, 256, [6, 1, 16, 16]).astype(np.uint8)
    labels = rng.rand(6, 2).astype(np.float32)
    _official_exporter(str(tmp_path / "official"), images, labels)
    _write(tmp_path / "ours", "official", images, labels)
    for name in os.listdir(tmp_path / "official"):
        assert (tmp_path / "official" / name).read_bytes() == (tmp_path / "ours" / name).read_bytes(), name
    info = open_dataset(tmp_path / "official")
    assert (info.resolution, info.num_channels, info.num_images, info.label_size) == (16, 1, 6, 2)
    assert info.name == "official" and info.label_names is None and info.metadata == {}
    assert sorted(info.levels) == [4, 8, 16]
    got = np.concatenate(list(info.iterate_uint8(resolution=8, batch_size=4)))
    np.testing.assert_array_equal(got, np.stack([build_pyramid(im)[1] for im in images]).transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(info.labels, labels)


def test_the_numpy_writer_writes_tensorflows_bytes(tmp_path, monkeypatch):
    """Without TensorFlow, DatasetWriter writes what tf.io.TFRecordWriter writes for the official exporter's
    examples serialized deterministically: byte for byte, for 1 and 3 channels, varint lengths of 1 to 3 bytes,
    across buffer flushes. TensorFlow's default serialization differs only in the order of the two features
    (it changes from process to process), so it parses to the same example."""
    monkeypatch.setattr(DatasetWriter, "BUFFER_BYTES", 5000)    # several flushes, a partial one at close
    monkeypatch.setattr(DatasetWriter, "MIN_BUFFERED", 2)
    rng = np.random.RandomState(7)
    for count, channels, res in ((7, 1, 16), (9, 3, 32), (2, 3, 256)):
        images = rng.randint(0, 256, [count, channels, res, res]).astype(np.uint8)
        labels = rng.rand(count, 3).astype(np.float32)
        name = f"c{channels}r{res}"
        _official_exporter(str(tmp_path / "tf" / name), images, labels, deterministic=True)
        _write(tmp_path / "np" / name, name, images, labels, use_tensorflow=False)
        names = sorted(os.listdir(tmp_path / "tf" / name))
        assert names == sorted(os.listdir(tmp_path / "np" / name)) and len(names) == int(np.log2(res))
        for n in names:
            assert (tmp_path / "tf" / name / n).read_bytes() == (tmp_path / "np" / name / n).read_bytes(), n
    for image in (images[0], images[0, :, :4, :4], np.zeros([1, 0, 0], np.uint8)):
        ours = image_example(image)
        default = tf.train.Example(features=tf.train.Features(feature={
            "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=image.shape)),
            "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.tobytes()]))})).SerializeToString()
        assert len(default) == len(ours) and tf.train.Example.FromString(default) == tf.train.Example.FromString(ours)
        np.testing.assert_array_equal(parse_example(ours), image)
    # The framing of any payload, one record at a time or as rows, empty and short ones included.
    payloads = [b"", b"ab", b"abcd", rng.bytes(200), rng.bytes(70000)]
    with tf.io.TFRecordWriter(str(tmp_path / "tf.rec")) as w:
        for p in payloads + [b"wxyz"] * 3:
            w.write(p)
    with RecordWriter(tmp_path / "np.rec") as w:
        for p in payloads:
            w.write(p)
        w.write_rows(np.frombuffer(b"wxyz" * 3, np.uint8).reshape(3, 4))
    assert (tmp_path / "tf.rec").read_bytes() == (tmp_path / "np.rec").read_bytes()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_the_numpy_writer_on_a_full_disk_is_one_error_and_leaves_nothing(tmp_path, monkeypatch):
    from stylegan_tf.data import create_demo
    real = tfrecords.RecordWriter
    opened = []

    def full(path):
        opened.append(path)
        writer = real("/dev/full")
        writer.path = path
        return writer

    monkeypatch.setattr(tfrecords, "_tensorflow_or_none", lambda: None)
    monkeypatch.setattr(tfrecords, "RecordWriter", full)
    with pytest.raises(DatasetError) as e:
        create_demo(tmp_path / "out" / "demo", count=300, resolution=32, workers=1, progress=False)
    assert str(e.value).startswith(f"{tmp_path / 'out' / 'demo'}: disk full while writing the dataset (it needs "
                                   "about 1.2 MB, ") and "\n" not in str(e.value)
    assert len(opened) == 4 and os.listdir(tmp_path / "out") == []
    with pytest.raises(OSError) as e:
        with full(str(tmp_path / "x.tfrecords")) as w:
            w.write_rows(np.zeros([4, 10000], np.uint8))
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(tmp_path / "x.tfrecords")


def test_a_dataset_is_created_and_read_without_tensorflow(tmp_path):
    """On a JAX-only machine (TensorFlow made unimportable): create_demo with worker processes writes a dataset
    that the JAX side reads back, and the same images TensorFlow's reader sees."""
    hide = tmp_path / "no_tensorflow" / "tensorflow"
    hide.mkdir(parents=True)
    (hide / "__init__.py").write_text("raise ImportError('TensorFlow is hidden from this test process')\n")
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=os.pathsep.join([str(hide.parent), str(REPO)]),
               JAX_PLATFORMS="cpu")
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from stylegan_tf.data import create_demo, open_dataset
        from stylegan_tf.data.demo_faces import render
        from stylegan_tf.data.pyramid import build_pyramid
        info = create_demo({str(tmp_path / "demo")!r}, count=70, resolution=32, seed=3, workers=2, progress=False)
        assert (info.num_images, info.resolution, sorted(info.levels)) == (70, 32, [4, 8, 16, 32]), info
        for res in (32, 4):
            got = np.concatenate(list(info.iterate_uint8(resolution=res, batch_size=16)))
            want = [build_pyramid(render(3, i, 32)[0].transpose(2, 0, 1))[5 - res.bit_length() + 1] for i in (0, 69)]
            np.testing.assert_array_equal(got[[0, 69]], np.stack(want).transpose(0, 2, 3, 1))
        assert "tensorflow" not in sys.modules or sys.modules["tensorflow"] is None
        import keras
        assert keras.backend.backend() == "jax"
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stdout[-3000:] + proc.stderr[-3000:]
    info = open_dataset(tmp_path / "demo")
    assert info.verify(32) == 70 and info.verify(4) == 70


def test_reader_rejects_broken_layouts(tmp_path):
    rng = np.random.RandomState(3)
    images = rng.randint(0, 256, [4, 3, 8, 8]).astype(np.uint8)
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no \\*.tfrecords"):
        open_dataset(tmp_path / "empty")
    _write(tmp_path / "cut", "cut", images)
    top = tmp_path / "cut" / "cut-r03.tfrecords"
    assert scan_level(str(top)) == ((3, 8, 8), 4)
    top.write_bytes(top.read_bytes()[:-7])  # an interrupted write
    with pytest.raises(DatasetError, match="truncated"):
        open_dataset(tmp_path / "cut")
    _write(tmp_path / "flipped", "flipped", images)
    level = tmp_path / "flipped" / "flipped-r03.tfrecords"
    data = bytearray(level.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one bad byte inside a record: same size, wrong checksum
    level.write_bytes(bytes(data))
    info = open_dataset(tmp_path / "flipped")  # sizes alone look right...
    with pytest.raises(DatasetError, match="flipped-r03.tfrecords: record 2: length field damaged"):
        list(info.iterate_uint8())  # ...the checksum does not
    _write(tmp_path / "gap", "gap", images)
    os.remove(tmp_path / "gap" / "gap-r02.tfrecords")
    with pytest.raises(DatasetError, match="missing"):
        open_dataset(tmp_path / "gap")
    _write(tmp_path / "uneven", "uneven", images)
    _write(tmp_path / "other", "uneven", images[:3])
    os.replace(tmp_path / "other" / "uneven-r02.tfrecords", tmp_path / "uneven" / "uneven-r02.tfrecords")
    with pytest.raises(DatasetError, match="different image counts"):
        open_dataset(tmp_path / "uneven")
    _write(tmp_path / "badlabels", "badlabels", images)
    np.save(tmp_path / "badlabels" / "badlabels-rxx.labels", np.zeros([3, 2], np.float32))
    os.replace(tmp_path / "badlabels" / "badlabels-rxx.labels.npy", tmp_path / "badlabels" / "badlabels-rxx.labels")
    with pytest.raises(DatasetError, match="labels have shape"):
        open_dataset(tmp_path / "badlabels")
    _write(tmp_path / ".x.partial", "x", images)
    with pytest.raises(DatasetError, match="interrupted"):
        open_dataset(tmp_path / ".x.partial")


def test_crc32c_matches_the_standard_and_tfrecord_checksums(tmp_path):
    assert crc32c(b"") == 0 and crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert crc32c(bytes(32)) == 0x8A9136AA and crc32c(b"\xff" * 32) == 0x62A8AB43  # RFC 3720 B.4

    def bitwise(data):
        crc = 0xFFFFFFFF
        for b in data:
            crc ^= b
            for _ in range(8):
                crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        return crc ^ 0xFFFFFFFF

    rng = np.random.RandomState(4)
    for n in (1, 4, 63, 64, 65, 1000, 4099):  # both code paths, chunk sizes that do and do not divide n
        data = rng.bytes(n)
        assert crc32c(data) == bitwise(data), n
    # TFRecord's masked checksums of a file TensorFlow wrote: header (length) and data.
    path = str(tmp_path / "x.tfrecords")
    with tf.io.TFRecordWriter(path) as w:
        w.write(rng.bytes(5000))
    raw = open(path, "rb").read()
    assert masked_crc32c(raw[:8]) == int.from_bytes(raw[8:12], "little")
    assert masked_crc32c(raw[12:-4]) == int.from_bytes(raw[-4:], "little")


def _damaged_copies(path, step, record):
    """[(kind, bytes)]: `path` damaged in record `record` the ways a disk or a bad copy damages a file."""
    data = open(path, "rb").read()
    start = step * record

    def poke(offset):
        b = bytearray(data)
        b[offset:offset + 4] = b"\xff\xff\xff\xff"  # what `dd` of 4 bytes of 0xff does
        return bytes(b)

    return [("data damaged", poke(start + 12 + (step - 16) // 2)), ("length field damaged", poke(start + 2)),
            ("length field damaged", poke(start + 8)), ("data damaged", poke(start + step - 4)),
            ("truncated", data[:start + step - 7])]


def test_verify_level_names_the_file_and_record_of_any_damage(tmp_path):
    rng = np.random.RandomState(5)
    images = rng.randint(0, 256, [40, 3, 8, 8]).astype(np.uint8)
    _write(tmp_path / "ds", "ds", images)
    level = str(tmp_path / "ds" / "ds-r03.tfrecords")
    assert verify_level(level, (3, 8, 8)) == 40
    step = os.path.getsize(level) // 40
    bad = str(tmp_path / "bad.tfrecords")
    for kind, data in _damaged_copies(level, step, 23):
        open(bad, "wb").write(data)
        with pytest.raises(DatasetError, match=f"^{bad}: record 23: {kind} .*; recreate the dataset$"):
            verify_level(bad, (3, 8, 8))
    # Checksums fine, contents wrong: another level's records, or records that are not image Examples.
    with pytest.raises(DatasetError, match="record 0: shape \\[3, 8, 8\\], expected \\[3, 16, 16\\]"):
        verify_level(level, (3, 16, 16))
    with tf.io.TFRecordWriter(bad) as w:
        for k in range(5):
            w.write(b"\x01\x02not a protobuf" if k == 3 else tf.train.Example().SerializeToString()
                    if k == 4 else open(level, "rb").read()[12:step - 4])
    with pytest.raises(DatasetError, match="record 3: not an image record"):
        verify_level(bad, (3, 8, 8))


def test_open_dataset_refuses_a_level_missing_from_dataset_json(tmp_path):
    from stylegan_tf.data.tfrecords import write_metadata
    rng = np.random.RandomState(6)
    images = rng.randint(0, 256, [4, 3, 16, 16]).astype(np.uint8)
    _write(tmp_path / "ds", "ds", images)
    write_metadata(str(tmp_path / "ds"), "test", {"count": 4, "resolution": 16, "channels": 3, "levels": [16, 8, 4]})
    assert open_dataset(tmp_path / "ds").resolution == 16
    os.remove(tmp_path / "ds" / "ds-r04.tfrecords")  # the top level lost: it must not train at 8x8
    with pytest.raises(DatasetError, match="ds-r04.tfrecords is missing \\(dataset.json lists levels"):
        open_dataset(tmp_path / "ds")
    _write(tmp_path / "few", "few", images[:3])
    write_metadata(str(tmp_path / "few"), "test", {"count": 4, "resolution": 16, "levels": [16, 8, 4]})
    with pytest.raises(DatasetError, match="dataset.json says 4 images but the level files hold 3"):
        open_dataset(tmp_path / "few")
    # NVIDIA's datasets have no dataset.json, and another tool's is not ours to check.
    (tmp_path / "few" / "dataset.json").write_text('{"labels": null, "resolution": 64}')
    assert open_dataset(tmp_path / "few").num_images == 3


def test_the_one_parser_reads_examples_as_protobuf_does():
    """records.parse_example (by hand, no TensorFlow) against TensorFlow's protobuf class, on examples written
    the ways other tools write them: feature order, packed and unpacked int64 lists, extra features."""
    image = np.random.RandomState(3).randint(0, 256, [3, 4, 4]).astype(np.uint8)
    shape = tf.train.Feature(int64_list=tf.train.Int64List(value=image.shape))
    data = tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.tobytes()]))
    extra = tf.train.Feature(float_list=tf.train.FloatList(value=[0.5, -1.0]))
    unpacked = bytes([0x1A, 3 * 2]) + b"".join(bytes([0x08, v]) for v in image.shape)  # Int64List, field by field
    for features in ({"shape": shape, "data": data}, {"data": data, "label": extra, "shape": shape}):
        serialized = tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()
        theirs = tf.train.Example.FromString(serialized).features.feature
        want = np.frombuffer(theirs["data"].bytes_list.value[0], np.uint8).reshape(theirs["shape"].int64_list.value)
        np.testing.assert_array_equal(parse_example(serialized), want)
    entry = b"\x0a\x05shape\x12" + bytes([len(unpacked)]) + unpacked
    data_entry = tf.train.Features(feature={"data": data}).SerializeToString()[2:]   # the map entry of "data"
    serialized = b"\x0a" + bytes([len(entry) + len(data_entry) + 4]) + b"\x0a" + bytes([len(entry)]) + entry + \
        b"\x0a" + bytes([len(data_entry)]) + data_entry
    theirs = tf.train.Example.FromString(serialized).features.feature
    assert list(theirs["shape"].int64_list.value) == [3, 4, 4]
    np.testing.assert_array_equal(parse_example(serialized), image)
    with pytest.raises(DatasetError, match="official 'shape'"):
        parse_example(tf.train.Example(features=tf.train.Features(feature={"data": data})).SerializeToString())


DATA = pathlib.Path(__file__).resolve().parents[1] / "stylegan_tf" / "data"


def _imports(path):
    """{data module it imports (function-level imports too): [names it takes from it, or attributes it reads]}."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found, aliases = {}, {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "stylegan_tf.data":
            for a in node.names:             # `from stylegan_tf.data import tfrecords` imports a module
                if (DATA / f"{a.name}.py").exists():
                    found.setdefault(a.name, [])
                    aliases[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stylegan_tf.data."):
            found.setdefault(node.module.split(".")[2], []).extend(a.name for a in node.names)
    for node in ast.walk(tree):                   # `tfrecords._name`: a name read through the module
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            found[aliases[node.value.id]].append(node.attr)
    return found


def test_data_modules_import_one_way_and_share_no_private_names():
    graph = {p.stem: _imports(p) for p in sorted(DATA.glob("*.py")) if p.stem != "__init__"}
    private = [f"{m} takes {d}.{n}" for m, deps in graph.items() for d, names in deps.items() for n in names
               if n.startswith("_")]
    assert not private, private

    def cycle_from(module, path):
        for dep in graph.get(module, {}):
            if dep in path:
                return path[path.index(dep):] + [dep]
            found = cycle_from(dep, path + [dep])
            if found:
                return found
        return None

    cycles = [c for c in (cycle_from(m, [m]) for m in graph) if c]
    assert not cycles, f"import circles in data/: {cycles}"
    parsers = [p.stem for p in DATA.glob("*.py") if "def parse_example(" in p.read_text(encoding="utf-8")]
    assert parsers == ["records"]
