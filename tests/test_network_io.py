"""load_network on our .keras files: the classes a file holds are found through the modules it records (never
by network_io importing the training package), only modules of this package are imported, and damaged files
give one line naming the file."""
import json
import os
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import stylegan_tf
from stylegan_tf.network_io import NetworkFileError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def training_snapshot(tmp_path_factory):
    """A tiny training model (G, D, Gs and its training state) written as train.py writes its snapshots."""
    import keras
    from stylegan_tf.networks import Discriminator, Generator
    from stylegan_tf.training import StyleGAN
    from stylegan_tf.training.snapshot import save_snapshot
    keras.utils.set_random_seed(0)
    g_kw = dict(resolution=8, num_channels=3, fmap_base=64, fmap_max=16, latent_size=16, dlatent_size=16,
                mapping_layers=2, mapping_fmaps=16)
    model = StyleGAN(Generator(**g_kw), Discriminator(resolution=8, num_channels=3, fmap_base=64, fmap_max=16),
                     Generator(**g_kw), seed=5, training_state={"kimg": 1.5})
    model.ema_update_now(0.0)
    return save_snapshot(model, str(tmp_path_factory.mktemp("run") / "network-snapshot-000001.keras"))


def test_training_snapshot_loads_without_importing_training_first(training_snapshot):
    """A fresh process that has only imported `stylegan_tf` opens a training snapshot: the file names the
    training model's module, and load_network imports it (the class registers itself there)."""
    code = ("import sys, stylegan_tf\n"
            "assert 'stylegan_tf.training' not in sys.modules\n"
            "nets = stylegan_tf.load_network(sys.argv[1])\n"
            "print(type(nets).__module__, type(nets).__name__, nets.training_state['kimg'], nets.G.resolution)\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, "-c", code, training_snapshot], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["stylegan_tf.training.model", "StyleGAN", "1.5", "8"]


def _keras_file(path, config):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        archive.writestr("config.json", json.dumps(config))
    return str(path)


def test_only_modules_of_this_package_are_imported(tmp_path):
    """A crafted file naming other modules (here `this`, which prints on import, and one of our entry points)
    gets them not imported, and a one-line refusal."""
    assert "this" not in sys.modules
    config = {"module": "this", "class_name": "Zen", "registered_name": "Zen",
              "config": {"inner": {"module": "stylegan_tf.metrics.__main__", "class_name": "Main", "config": {}},
                         "gone": {"module": "stylegan_tf.no_such_module", "class_name": "X", "config": {}}}}
    path = _keras_file(tmp_path / "crafted.keras", config)
    main_loaded = "stylegan_tf.metrics.__main__" in sys.modules
    with pytest.raises(NetworkFileError, match="crafted.keras: could not load the network") as e:
        stylegan_tf.load_network(path)
    assert "\n" not in str(e.value)
    assert "this" not in sys.modules
    assert ("stylegan_tf.metrics.__main__" in sys.modules) == main_loaded


def test_damaged_keras_files_are_one_line(training_snapshot, tmp_path):
    data = open(training_snapshot, "rb").read()
    cut = tmp_path / "cut.keras"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(NetworkFileError, match=r"cut.keras: damaged network file \(an incomplete zip") as e:
        stylegan_tf.load_network(str(cut))
    assert "\n" not in str(e.value)

    # Bytes overwritten inside the compressed config.json: the zip's checksum (or inflate) catches it.
    with zipfile.ZipFile(training_snapshot) as archive:
        info = archive.getinfo("config.json")
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len  # the entry's data, after its local header
    garbled = bytearray(data)
    garbled[start + 10:start + 14] = b"\xff\xff\xff\xff"
    bad = tmp_path / "garbled.keras"
    bad.write_bytes(bytes(garbled))
    with pytest.raises(NetworkFileError, match="garbled.keras: damaged network file") as e:
        stylegan_tf.load_network(str(bad))
    assert "\n" not in str(e.value)

    text = tmp_path / "notes.keras"
    text.write_text("my notes")
    with pytest.raises(NetworkFileError, match="notes.keras: not a network file"):
        stylegan_tf.load_network(str(text))


def test_open_network_turns_any_reader_failure_into_one_line_of_the_callers_error(tmp_path):
    from stylegan_tf.network_io import open_network

    class ToolError(ValueError):
        pass

    (tmp_path / "log.keras").write_text('{"kimg": 1}\n')  # a metrics log saved under a network's name
    with pytest.raises(ToolError, match=r"^--net: .*log\.keras: not a network file \(expected a \.keras file or "
                                        r"an official StyleGAN \.pkl\)$"):
        open_network(str(tmp_path / "log.keras"), "--net", ToolError)
    with pytest.raises(ToolError, match=r"^--net: .*missing\.pkl does not exist \(give a \.keras snapshot or an "
                                        r"official \.pkl\)$"):
        open_network(str(tmp_path / "missing.pkl"), "--net", ToolError)


def test_every_tool_reports_a_bad_network_file_with_the_same_line(tmp_path):
    """generate's figures and convert, projection and the metrics all load through open_network: one message."""
    from stylegan_tf import editing
    from stylegan_tf.generate import commands
    from stylegan_tf.generate.sampling import load_generator
    from stylegan_tf.metrics import metric_base
    bad = tmp_path / "half.pkl"
    bad.write_bytes(b"\x80\x04\x95" + b"\x00" * 20)  # a pickle cut after its first bytes
    calls = [lambda: load_generator(str(bad)), lambda: commands.convert(str(bad), str(tmp_path / "n.keras")),
             lambda: editing.project(str(bad), np.zeros([32, 32, 3], np.uint8)),
             lambda: metric_base.calc_metrics(str(bad), "swd1k", str(tmp_path))]
    messages = set()
    for call in calls:
        with pytest.raises(ValueError) as info:
            call()
        messages.add(str(info.value))
    assert len(messages) == 1, messages
    message = messages.pop()
    assert message.startswith(f"--network: {bad}") and "\n" not in message


def test_convert_cli_speaks_the_project_conventions(tmp_path, capsys):
    """`python -m stylegan_tf.network_io`: a usage mistake and a bad file are one line each, named by the tool."""
    from stylegan_tf.network_io import main
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "only-one.pkl")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m stylegan_tf.network_io: error: ") and err.count("\n") == 1, err
    (tmp_path / "notes.pkl").write_text("plain text")
    assert main([str(tmp_path / "notes.pkl"), str(tmp_path / "out.keras")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"python -m stylegan_tf.network_io: error: {tmp_path / 'notes.pkl'}: not a network file")
    assert err.count("\n") == 1 and not (tmp_path / "out.keras").exists()
