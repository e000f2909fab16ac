"""Import of NVIDIA's official StyleGAN pickles: fixture parity, safety, conversion."""
import os
import pickle

import numpy as np
import pytest

import stylegan_tf
from stylegan_tf.network_io import NetworkFileError, convert_network
from stylegan_tf.official_pickle import UnsafePickleError, read_official_pickle

FIXTURES = ["official-r32", "official-r16-cond"]


def _nhwc(a):
    return a.transpose(0, 2, 3, 1) if a.ndim == 4 else a


def _close(name, got, ref):
    ref = _nhwc(ref)
    assert got.shape == ref.shape, name
    err = np.abs(got - ref).max() / np.abs(ref).max()
    assert err <= 1e-4, f"{name}: relative error {err:.2e}"


@pytest.fixture(scope="module", params=FIXTURES)
def fixture(request, fixtures_dir):
    folder = fixtures_dir / "official-stylegan"
    nets = stylegan_tf.load_network(str(folder / f"{request.param}.pkl"))
    expected = dict(np.load(folder / f"{request.param}-expected.npz"))
    return request.param, folder, nets, expected


def test_fixture_parity(fixture):
    name, _, nets, e = fixture
    Gs, D = nets.Gs, nets.D
    z, labels = e["z"], e.get("labels")
    _close("dlatents", Gs.map_latents(z, labels), e["dlatents"])
    img = Gs.run(z, labels)
    _close("img", img, e["img"])
    _close("img_trunc", Gs.run(z, labels, truncation_psi=0.7, truncation_cutoff=8), e["img_trunc"])
    # The original's G_style skips truncation altogether when truncation_cutoff is None, so its
    # `truncation_psi=0.5, truncation_cutoff=None` output is the plain image (bit-identical in the fixture).
    # Our API reads cutoff=None as "all layers"; the original's call is our cutoff=0 (or psi=1).
    np.testing.assert_array_equal(e["img_trunc05_all"], e["img"])
    _close("img_trunc05_all", Gs.run(z, labels, truncation_psi=0.5, truncation_cutoff=0), e["img_trunc05_all"])
    _close("d_scores", D.run(_nhwc(e["img"]), labels), e["d_scores"])
    Gs.lod.assign(1.5)
    D.lod.assign(1.5)
    try:
        _close("img_lod15", Gs.run(z, labels), e["img_lod15"])
        _close("d_scores_lod15", D.run(_nhwc(e["img_lod15"]), labels), e["d_scores_lod15"])
    finally:
        Gs.lod.assign(0.0)
        D.lod.assign(0.0)


def test_static_kwargs_and_separate_weights(fixture):
    name, folder, nets, e = fixture
    g, d, gs = read_official_pickle(folder / f"{name}.pkl")
    kw = gs.static_kwargs
    assert nets.Gs.resolution == kw["resolution"] and nets.Gs.dlatent_size == kw["dlatent_size"]
    assert nets.Gs.label_size == kw.get("label_size", 0) and nets.D.resolution == d.static_kwargs["resolution"]
    # G and Gs are imported from their own variables (they differ in the fixtures).
    np.testing.assert_array_equal(nets.G.mapping.dense_layers[0].weight.numpy(),
                                  g.components["mapping"].variables["Dense0/weight"])
    np.testing.assert_array_equal(nets.Gs.mapping.dense_layers[0].weight.numpy(),
                                  gs.components["mapping"].variables["Dense0/weight"])
    assert not np.allclose(nets.G.run(e["z"], e.get("labels")), nets.Gs.run(e["z"], e.get("labels")))
    np.testing.assert_array_equal(nets.Gs.dlatent_avg.numpy(), gs.variables["dlatent_avg"])
    # Training pairs G's and Gs's weights by position for the EMA: same structure, same order.
    assert [(v.path.split("/", 1)[-1], v.shape, v.trainable) for v in nets.G.weights] == \
        [(v.path.split("/", 1)[-1], v.shape, v.trainable) for v in nets.Gs.weights]
    # Layout conversions: NCHW noise buffers and constant become NHWC.
    np.testing.assert_array_equal(nets.Gs.synthesis.noise_buffers[2].numpy()[0, :, :, 0],
                                  gs.components["synthesis"].variables["noise2"][0, 0])
    np.testing.assert_array_equal(nets.Gs.synthesis.input_layer.const.numpy()[0, 1, 2, :],
                                  gs.components["synthesis"].variables["4x4/Const/const"][0, :, 1, 2])


@pytest.mark.parametrize("fixture", ["official-r16-cond"], indirect=True)  # once: it has every kind of variable
def test_convert_to_keras(fixture, tmp_path):
    name, folder, nets, e = fixture
    out = convert_network(folder / f"{name}.pkl", tmp_path / f"{name}.keras")
    again = stylegan_tf.load_network(out)
    z, labels = e["z"], e.get("labels")
    np.testing.assert_array_equal(again.Gs.run(z, labels), nets.Gs.run(z, labels))
    np.testing.assert_array_equal(again.D.run(_nhwc(e["img"]), labels), nets.D.run(_nhwc(e["img"]), labels))


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("payload", ["os.system", "builtins.eval", "nested"])
def test_malicious_pickle_refused(tmp_path, payload):
    marker = tmp_path / "pwned"
    if payload == "os.system":
        obj = _Evil(marker)
    elif payload == "builtins.eval":
        class EvalIt:
            def __reduce__(self):
                return eval, (f"open({str(marker)!r}, 'w')",)
        obj = EvalIt()
    else:
        obj = ({"variables": [("x", np.zeros(2))]}, _Evil(marker))
    path = tmp_path / "network-snapshot.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=4))
    with pytest.raises(UnsafePickleError, match="network-snapshot.pkl.*refused"):
        stylegan_tf.load_network(str(path))
    assert not marker.exists()
    pickle.loads(path.read_bytes())  # control: Python's own unpickler does run the payload
    assert marker.exists()


def test_not_a_network_pickle(tmp_path):
    path = tmp_path / "labels.pkl"
    path.write_bytes(pickle.dumps({"a": np.arange(3)}, protocol=4))
    with pytest.raises(ValueError, match="labels.pkl.*expected an official StyleGAN pickle"):
        stylegan_tf.load_network(str(path))
    trunc = tmp_path / "cut.pkl"
    trunc.write_bytes(pickle.dumps({"a": np.arange(300)}, protocol=4)[:50])
    with pytest.raises(ValueError, match="cut.pkl"):
        stylegan_tf.load_network(str(trunc))
    junk = tmp_path / "photo.pkl"
    junk.write_bytes(b"\xff\xd8\xff\xe0 not a pickle")
    with pytest.raises(NetworkFileError, match="photo.pkl") as e:
        stylegan_tf.load_network(str(junk))
    assert "\n" not in str(e.value)


def test_numpy1_spelling_accepted(fixtures_dir, tmp_path):
    """NVIDIA's pickles were written with numpy 1.x, whose array globals live in `numpy.core`."""
    src = (fixtures_dir / "official-stylegan" / "official-r16-cond.pkl").read_bytes()
    new_name, old_name = b"numpy._core.multiarray", b"numpy.core.multiarray"
    patched = src.replace(bytes([0x8c, len(new_name)]) + new_name, bytes([0x8c, len(old_name)]) + old_name)
    assert patched != src
    path = tmp_path / "old-numpy.pkl"
    path.write_bytes(patched)
    _, d_new, gs_new = read_official_pickle(fixtures_dir / "official-stylegan" / "official-r16-cond.pkl")
    _, d_old, gs_old = read_official_pickle(path)
    for name, value in gs_new.components["synthesis"].variables.items():
        np.testing.assert_array_equal(gs_old.components["synthesis"].variables[name], value)
    assert gs_old.static_kwargs == gs_new.static_kwargs


def test_convert_cli_error_is_one_line(tmp_path, capsys):
    from stylegan_tf.network_io import main
    bad = tmp_path / "notes.pkl"
    bad.write_bytes(b"plain text")
    assert main([str(bad), str(tmp_path / "out.keras")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "notes.pkl" in err
    assert not (tmp_path / "out.keras").exists()
