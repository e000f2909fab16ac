"""FID-Inception: torch-free .pth reader, the Keras network, both preprocessing modes, weights handling.

Parity uses the random weights of tests/fixtures/fid-inception (rebuilt here from their numpy recipe)
and the features pytorch-fid and the TF1 pipeline computed for them.
"""
import collections
import json
import os
import pickle
import struct
import sys
import types
import zipfile

import numpy as np
import pytest

from stylegan_tf.metrics import inception, torch_pth

FIXTURE = "fid-inception"


# ------------------------------------------------------------------------------------------------
# Helpers (also imported by test_metrics.py).

def recipe_state_dict(fixtures_dir):
    """The fixture's random pytorch-fid state dict, rebuilt from its recipe (numpy only)."""
    with open(fixtures_dir / FIXTURE / "pt_inception_random_recipe.json") as f:
        recipe = json.load(f)
    rules = {
        "he": lambda rs, s: rs.standard_normal(s) * np.sqrt(2.0 / np.prod(s[1:])),
        "half_plus_uniform": lambda rs, s: 0.5 + rs.random_sample(s),
        "normal_0.2": lambda rs, s: 0.2 * rs.standard_normal(s),
        "normal_0.01": lambda rs, s: 0.01 * rs.standard_normal(s),
    }
    out = collections.OrderedDict()
    for t in recipe["tensors"]:
        shape = tuple(t["shape"])
        if t["rule"] == "zero_int":
            out[t["name"]] = np.zeros(shape, np.int64)
        else:
            out[t["name"]] = rules[t["rule"]](np.random.RandomState(t["index"]), shape).astype(np.float32)
    return out


def _fake_torch_modules():
    """Stand-ins for the torch globals a state-dict pickle names, so tests can WRITE .pth files without torch."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    for name in ("FloatStorage", "LongStorage"):
        cls = type(name, (), {"__module__": "torch", "__qualname__": name})
        setattr(torch, name, cls)

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    return {"torch": torch, "torch._utils": utils}


class _StorageRef:
    def __init__(self, key, array):
        self.key, self.array = key, array


class _Tensor:
    def __init__(self, storage, size, stride, rebuild):
        self.storage, self.size, self.stride, self.rebuild = storage, size, stride, rebuild

    def __reduce__(self):
        return self.rebuild, (self.storage, 0, self.size, self.stride, False, collections.OrderedDict())


def write_pth(path, state, legacy=False, transposed=()):
    """Write `state` (name -> ndarray) as torch.save would: zip (>= 1.6) or the legacy stream.
    Names in `transposed` are stored as non-contiguous (transposed) views, to exercise strides."""
    mods = _fake_torch_modules()
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        storages, obj = [], collections.OrderedDict()
        for i, (name, value) in enumerate(state.items()):
            value = np.asarray(value)
            if name in transposed and value.ndim == 2:
                data = np.ascontiguousarray(value.T)
                stride = (1, value.shape[0])
            else:
                data = np.ascontiguousarray(value)
                stride = tuple(s // value.itemsize for s in value.strides) if value.ndim else ()
            ref = _StorageRef(str(i), data)
            storages.append(ref)
            obj[name] = _Tensor(ref, tuple(value.shape), stride, mods["torch._utils"]._rebuild_tensor_v2)

        def storage_type(ref):
            return mods["torch"].LongStorage if ref.array.dtype == np.int64 else mods["torch"].FloatStorage

        class Pickler(pickle.Pickler):
            def persistent_id(self, o):
                if isinstance(o, _StorageRef):
                    pid = ("storage", storage_type(o), o.key, "cpu", o.array.size)
                    return pid + (None,) if legacy else pid
                return None

        import io
        buf = io.BytesIO()
        Pickler(buf, protocol=2).dump(obj)
        if legacy:
            with open(path, "wb") as f:
                pickle.dump(0x1950A86A20F9469CFC6C, f, protocol=2)
                pickle.dump(1001, f, protocol=2)
                pickle.dump({"protocol_version": 1001, "little_endian": True}, f, protocol=2)
                f.write(buf.getvalue())
                pickle.dump([r.key for r in storages], f, protocol=2)
                for r in storages:
                    f.write(struct.pack("<q", r.array.size))
                    f.write(r.array.astype(r.array.dtype.newbyteorder("<")).tobytes())
        else:
            with zipfile.ZipFile(path, "w") as z:
                z.writestr("archive/data.pkl", buf.getvalue())
                z.writestr("archive/byteorder", "little")
                z.writestr("archive/version", "3\n")
                for r in storages:
                    z.writestr(f"archive/data/{r.key}", r.array.tobytes())
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


# ------------------------------------------------------------------------------------------------
# The .pth reader.

def test_tiny_state_dict_loads_exactly(fixtures_dir):
    got = torch_pth.load_state_dict(fixtures_dir / FIXTURE / "tiny_state_dict.pth")
    expected = np.load(fixtures_dir / FIXTURE / "tiny_state_dict_expected.npz")
    assert list(got) == list(expected.files)
    for name in expected.files:
        assert got[name].dtype == expected[name].dtype and got[name].shape == expected[name].shape
        np.testing.assert_array_equal(got[name], expected[name])


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_written_pth_roundtrips_with_strides(tmp_path, legacy):
    rs = np.random.RandomState(0)
    state = collections.OrderedDict(
        w=rs.randn(5, 3).astype(np.float32), t=rs.randn(2, 3, 4, 1).astype(np.float32),
        n=np.array(7, np.int64), e=np.zeros((0, 3), np.float32))
    path = tmp_path / "w.pth"
    write_pth(path, state, legacy=legacy, transposed=("w",))
    got = torch_pth.load_state_dict(path)
    assert list(got) == list(state)
    for k in state:
        assert got[k].dtype == state[k].dtype
        np.testing.assert_array_equal(got[k], state[k])


def test_reader_refuses_code_and_leaves_no_side_effect(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"w": Evil()}, protocol=2))
    with pytest.raises(torch_pth.UnsafePickleError, match="system"):
        torch_pth.load_state_dict(path)
    assert not marker.exists()
    # The same payload through load_fid_inception: one clear error naming the file.
    with pytest.raises(inception.InceptionWeightsError, match="evil.pth"):
        inception.load_fid_inception(str(path))


def test_reader_rejects_non_torch_files(tmp_path):
    p = tmp_path / "x.pth"
    p.write_bytes(b"not a pickle at all")
    with pytest.raises((ValueError, pickle.UnpicklingError)):
        torch_pth.load_state_dict(p)
    with pytest.raises(FileNotFoundError):
        torch_pth.load_state_dict(tmp_path / "missing.pth")


# ------------------------------------------------------------------------------------------------
# Preprocessing and quantisation.

def _np_resize_bilinear(img, out, half_pixel):
    """Reference bilinear resize of one HWC float image, written from the definitions."""
    h, w, _ = img.shape

    def coords(n_in):
        d = np.arange(out, dtype=np.float64)
        if half_pixel:
            src = np.maximum((d + 0.5) * n_in / out - 0.5, 0.0)
        else:
            src = d * n_in / out
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, src - lo

    y0, y1, fy = coords(h)
    x0, x1, fx = coords(w)
    top = img[y0][:, x0] * (1 - fx)[None, :, None] + img[y0][:, x1] * fx[None, :, None]
    bot = img[y1][:, x0] * (1 - fx)[None, :, None] + img[y1][:, x1] * fx[None, :, None]
    return top * (1 - fy)[:, None, None] + bot * fy[:, None, None]


def test_preprocess_modes_follow_their_definitions():
    rs = np.random.RandomState(1)
    img = rs.randint(0, 256, size=(1, 37, 53, 3)).astype(np.uint8)
    tf1 = np.asarray(inception.preprocess(img, "tf1"))[0]
    ref = (_np_resize_bilinear(img[0].astype(np.float64), 299, half_pixel=False) - 128) / 128
    np.testing.assert_allclose(tf1, ref, atol=2e-5)
    pt = np.asarray(inception.preprocess(img, "pytorch"))[0]
    ref = 2 * _np_resize_bilinear(img[0].astype(np.float64) / 255, 299, half_pixel=True) - 1
    np.testing.assert_allclose(pt, ref, atol=5e-5)
    # Downscaling too (no antialias in either reference): 600 -> 299. TF computes source coordinates in
    # float32 (~4e-5 px off at the far edge), hence the looser bound; a half-pixel slip would be ~0.5.
    big = rs.randint(0, 256, size=(1, 600, 600, 3)).astype(np.uint8)
    got = np.asarray(inception.preprocess(big, "pytorch"))[0]
    np.testing.assert_allclose(got, 2 * _np_resize_bilinear(big[0] / 255.0, 299, True) - 1, atol=5e-4)
    with pytest.raises(ValueError, match="mode"):
        inception.preprocess(img, "keras")


def test_quantize_images_truncates_like_nvidia():
    x = np.array([-2.0, -1.0, -0.5, 0.0, 0.999, 1.0, 3.0], np.float32)
    got = inception.quantize_images(x)
    np.testing.assert_array_equal(got, [0, 0, 64, 128, 255, 255, 255])
    assert got.dtype == np.uint8


# ------------------------------------------------------------------------------------------------
# The network: parity with pytorch-fid and the TF1 pipeline.

@pytest.fixture(scope="session")
def random_state_dict(fixtures_dir):
    return recipe_state_dict(fixtures_dir)


@pytest.fixture(scope="session")
def nets(random_state_dict):
    tf1 = inception.load_fid_inception(random_state_dict, mode="tf1")
    # Same Keras model, other preprocessing: no second build.
    pt = inception.FIDInception(tf1.model, mode="pytorch", weights_id=tf1.weights_id)
    return {"tf1": tf1, "pytorch": pt}


@pytest.fixture(scope="session")
def expected(fixtures_dir):
    return dict(np.load(fixtures_dir / FIXTURE / "pt_inception_random_expected.npz"))


@pytest.mark.parametrize("mode", ["tf1", "pytorch"])
@pytest.mark.parametrize("size", [64, 128])
def test_features_match_reference(nets, expected, mode, size):
    feats = nets[mode].features(expected[f"images{size}"])
    ref = expected[f"features_{mode}_{size}"]
    assert feats.shape == (4, 2048) and feats.dtype == np.float32
    rel = np.abs(feats - ref).max() / np.abs(ref).max()
    assert rel <= 1e-5, f"{mode} {size}px: max relative error {rel:.2e}"


def test_features_accept_float_grayscale_and_batching(nets, expected):
    imgs = expected["images64"]
    a = nets["tf1"].features(imgs[:3], batch_size=2)
    b = nets["tf1"].features(imgs[:3].astype(np.float32), batch_size=3)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    gray = imgs[:1, :, :, :1]
    np.testing.assert_allclose(nets["tf1"].features(gray), nets["tf1"].features(np.repeat(gray, 3, axis=-1)),
                               rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="NHWC"):
        nets["tf1"].features(imgs[0])


def _assert_same_weights(a, b):
    for wa, wb in zip(a.model.weights, b.model.weights):
        assert wa.path == wb.path
        np.testing.assert_array_equal(wa.numpy(), wb.numpy())


def test_converted_weights_file_roundtrip(nets, random_state_dict, tmp_path):
    path = tmp_path / "fid_inception.weights.h5"
    nets["tf1"].save_weights(str(path))
    again = inception.load_fid_inception(str(path), mode="tf1")
    # Same content hash as the dict it came from: cached statistics are shared, never mixed up.
    assert again.weights_id == nets["tf1"].weights_id == inception.state_dict_digest(random_state_dict)
    _assert_same_weights(again, nets["tf1"])


def test_full_pth_loads_through_load_fid_inception(random_state_dict, nets, tmp_path):
    path = tmp_path / "pt_inception.pth"
    write_pth(path, random_state_dict, legacy=True)  # pytorch-fid's file predates the zip format
    net = inception.load_fid_inception(str(path), mode="tf1")
    assert net.weights_id == nets["tf1"].weights_id
    _assert_same_weights(net, nets["tf1"])
    # Other weights, other key.
    other = dict(random_state_dict, **{"fc.bias": random_state_dict["fc.bias"] + 1})
    assert inception.state_dict_digest(other) != net.weights_id


def test_wrong_weights_are_named(random_state_dict, nets):
    broken = dict(random_state_dict)
    del broken["Mixed_6b.branch7x7_2.conv.weight"]
    with pytest.raises(inception.InceptionWeightsError, match="Mixed_6b.branch7x7_2.conv.weight"):
        inception.load_fid_inception(broken)
    # The other checks on the already built model (they fail before assigning anything new).
    model = nets["tf1"].model
    broken = dict(random_state_dict)
    broken["fc.bias"] = np.zeros(1000, np.float32)
    with pytest.raises(inception.InceptionWeightsError, match="fc.bias.*shape"):
        inception.assign_state_dict(model, broken)
    broken = dict(random_state_dict, **{"extra.weight": np.zeros(3, np.float32)})
    with pytest.raises(inception.InceptionWeightsError, match="extra.weight"):
        inception.assign_state_dict(model, broken)


def test_weights_location_never_downloads_in_tests(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    with pytest.raises(inception.InceptionWeightsError) as e:
        inception.default_weights_path(download=False)
    msg = str(e.value)
    assert inception.WEIGHTS_URL in msg and str(tmp_path / "stylegan_tf" / inception.PTH_NAME) in msg
    assert "\n" not in msg
    pth = tmp_path / "stylegan_tf" / inception.PTH_NAME
    pth.parent.mkdir(parents=True)
    pth.write_bytes(b"x")
    assert inception.default_weights_path(download=False) == str(pth)
    monkeypatch.setenv(inception.ENV_VAR, str(tmp_path / "nope.pth"))
    with pytest.raises(inception.InceptionWeightsError, match="nope.pth"):
        inception.default_weights_path(download=False)


def test_network_layout_matches_the_state_dict(nets, random_state_dict):
    # Every tensor of pytorch-fid's 566 has a home, and the classifier is the 1008-way head.
    model = nets["tf1"].model
    assert model.get_layer("fc").kernel.shape == (2048, 1008)
    convs = [l for l in model.layers if isinstance(l, inception.BasicConv2d)]
    assert len(convs) == 94 and len(random_state_dict) == 94 * 6 + 2
    layer = model.get_layer("Mixed_6b_branch7x7_2")
    assert layer.kernel_size == (1, 7) and layer.get_config()["filters"] == 128


def test_network_stays_float32_under_mixed_precision():
    import keras
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = inception.build_fid_inception()
    finally:
        keras.config.set_dtype_policy(old)
    assert keras.config.dtype_policy().name == old.name
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}


def test_inception_layers_register_under_the_projects_one_package_name():
    """The Keras package name is part of the file format and is spelled once (layers.serialization.PACKAGE):
    with that one constant changed, the Inception layers register under the new name too."""
    import subprocess
    code = ("import keras, stylegan_tf.layers.serialization as s\n"
            "s.PACKAGE = 'renamed'\n"
            "from stylegan_tf.metrics import inception\n"
            "print(keras.saving.get_registered_name(inception.BasicConv2d))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "renamed>BasicConv2d"
