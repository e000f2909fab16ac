"""Keras' JAX backend: the TF-free TFRecord reader against tf.data, the layer/network parity tests and a growing
`fit` run on JAX without TensorFlow, snapshots that move between the backends, and the GPU check's CPU mode.

The JAX parts run in subprocesses (a process has one Keras backend; this suite's is TensorFlow), with
TensorFlow made unimportable there, as on a GPU machine that has only JAX.
"""
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_NET, xla_flags

from stylegan_tf.data import numpy_reader, open_dataset
from stylegan_tf.data.tfrecords import DatasetError

REPO = pathlib.Path(__file__).resolve().parents[1]

pytest.importorskip("jax")


@pytest.fixture(scope="module")
def dataset(demo_dataset):
    return demo_dataset(resolution=16, count=48)


def _without_tf(tmp_path):
    """An environment for a subprocess on the JAX backend where `import tensorflow` fails."""
    hide = tmp_path / "no_tensorflow" / "tensorflow"
    hide.mkdir(parents=True, exist_ok=True)
    (hide / "__init__.py").write_text("raise ImportError('TensorFlow is hidden from this test process')\n")
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=os.pathsep.join([str(hide.parent), str(REPO)]),
               TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu")
    return env


def _run(args, env, timeout):
    proc = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


# ------------------------------------------------------------------ the TF-free reader
def test_examples_parse_as_tensorflow_parses_them(dataset):
    info = open_dataset(dataset)
    for r, path in info.levels.items():
        for record in numpy_reader.read_records(path, check_crc=True, limit=3):
            ours = numpy_reader.parse_example(record)
            assert ours.shape == (3, r, r)
            # TensorFlow's own protobuf class decodes the same record: the reference our parser must match.
            feature = tf.train.Example.FromString(record).features.feature
            shape = tuple(feature["shape"].int64_list.value)
            theirs = np.frombuffer(feature["data"].bytes_list.value[0], np.uint8).reshape(shape)
            np.testing.assert_array_equal(ours, theirs)


def test_unshuffled_batches_equal_tf_data(dataset):
    info = open_dataset(dataset)
    ds = info.make_tf_dataset(8, batch_size=5, shuffle=False, repeat=False, seed=3)
    ours = list(numpy_reader.iterate_batches(info, 8, batch_size=5, shuffle=False, repeat=False, seed=3))
    theirs = [(x.numpy(), y.numpy()) for x, y in ds]
    assert len(ours) == len(theirs) == 10                          # 48 images: the last batch holds 3
    for (a, la), (b, lb) in zip(ours, theirs):
        assert a.dtype == np.float32 and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    uint8 = np.concatenate(list(numpy_reader.iterate_uint8(info, 16, batch_size=7)))
    np.testing.assert_array_equal(uint8, np.concatenate(list(info.iterate_uint8(16, batch_size=7))))


def test_shuffled_mirrored_stream_has_tf_data_semantics(dataset):
    """Every epoch is a permutation (reshuffled), reproducible for a seed, full batches when repeating, and
    mirroring flips whole images left-right (tests/test_batches.py checks these batches equal tf.data's)."""
    info = open_dataset(dataset)
    plain = np.concatenate(list(info.iterate_uint8(16))).astype(np.float32) * (2 / 255) - 1
    keys = {plain[i].tobytes(): i for i in range(len(plain))}
    flipped = {plain[i, :, ::-1].tobytes(): i for i in range(len(plain))}

    def stream(seed):
        it = numpy_reader.iterate_batches(info, 16, batch_size=8, shuffle=True, repeat=True, seed=seed, mirror=True)
        return [next(it) for _ in range(12)]                              # two epochs of 48

    for (x, lx), (y, ly) in zip(stream(7), stream(7)):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(lx, ly)
        assert x.shape == (8, 16, 16, 3)
    epochs, flips = [], 0
    it = numpy_reader.iterate_batches(info, 16, batch_size=8, seed=11, mirror=True)
    for _ in range(2):
        order = []
        for _ in range(6):
            images, _ = next(it)
            for img in images:
                key = img.tobytes()
                if key in keys:
                    order.append(keys[key])
                else:
                    order.append(flipped[key])
                    flips += 1
        assert sorted(order) == list(range(48))
        epochs.append(order)
    assert epochs[0] != epochs[1] and epochs[0] != list(range(48))     # shuffled, and reshuffled
    assert 20 < flips < 76                                             # p = 0.5 of 96


def test_damaged_record_is_named(dataset, tmp_path):
    info = open_dataset(dataset)
    data = bytearray(open(info.level_path(8), "rb").read())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.tfrecords"
    bad.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"bad\.tfrecords: record \d+ fails its checksum|corrupted length"):
        list(numpy_reader.read_records(str(bad), check_crc=True))


# ------------------------------------------------------------------ JAX, without TensorFlow
def test_layer_pickle_and_official_iteration_parity_on_jax():
    """The layer, official-pickle and official-iteration parity tests, unchanged, on the JAX backend: the JAX
    step reproduces NVIDIA's recorded iteration (losses, gradients, Adam, G/D/Gs and the EMA step itself) to
    1e-4 as the TF step does. test_layers compares against TensorFlow's own ops, so TensorFlow stays
    importable here; the pickle check runs without it in gpu_check."""
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu")
    out = _run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "tests/test_layers.py",
                "tests/test_official_pickle.py", "tests/test_official_train_step.py"], env, timeout=900)
    assert " passed" in out and " failed" not in out


_TRAIN = textwrap.dedent("""
    import json, sys
    import keras
    import numpy as np
    from stylegan_tf.training import TrainingOptions, training_loop
    kw = json.loads(sys.argv[1])
    res = training_loop(TrainingOptions(**kw))
    m = res.model
    print("RESULT " + json.dumps({
        "backend": keras.backend.backend(), "stopped_by": res.stopped_by, "nimg": res.state.nimg,
        "tick": res.state.tick, "snapshots": res.snapshots, "lods": res.history.history.get("lod", []),
        "d_loss": res.history.history.get("D_loss", []),
        "g_iter": int(keras.ops.convert_to_numpy(m.g_optimizer.iterations)),
        "d_iter": int(keras.ops.convert_to_numpy(m.d_optimizer.iterations)), "run_dir": res.run_dir}))
""")


def _train(env, timeout=600, **kw):
    out = _run([sys.executable, "-c", _TRAIN, json.dumps(kw)], env, timeout)
    return json.loads(out.split("RESULT ", 1)[1].splitlines()[0])


def _opts(dataset, outdir, **kw):
    base = dict(data=dataset, outdir=str(outdir), minibatch=4, lrate=0.002, tick_kimg=0.016, progress=False,
                snap_ticks=100, seed=5, **TINY_NET)
    base.update(kw)
    return base


@pytest.mark.slow   # ~100 s: three training runs in subprocesses (CI's short JAX fit is gpu_check's CPU mode)
def test_jax_fit_grows_and_snapshots_move_between_backends(dataset, tmp_path):
    """A growing `fit` on JAX (no TensorFlow): 8x8 -> fade -> 16x16. Its snapshot resumes on TensorFlow, and that
    run's snapshot resumes on JAX: weights, both Adam states and the schedule position carry over."""
    env_jax = _without_tf(tmp_path)
    env_tf = dict(os.environ, KERAS_BACKEND="tensorflow", PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    out = tmp_path / "results"
    grow = dict(resolution=16, lod_initial_resolution=8, lod_training_kimg=0.016, lod_transition_kimg=0.016,
                mirror=True)
    a = _train(env_jax, **_opts(dataset, out, total_kimg=0.032, **grow))
    assert a["backend"] == "jax" and a["stopped_by"] == "done" and a["nimg"] == 32
    assert [round(v, 2) for v in a["lods"]] == [1.0, 1.0]      # lod at each tick's last group start
    assert all(np.isfinite(a["d_loss"]))
    options = json.load(open(os.path.join(a["run_dir"], "training_options.json")))
    assert options["backend"] == "jax"
    # One Adam state through both ticks: the fade's only group starts at lod 1.0, the phase's (floor, ceil).
    assert a["g_iter"] == a["d_iter"] == 8

    b = _train(env_tf, **_opts(dataset, out, total_kimg=0.048, resume="auto", **grow))
    assert b["backend"] == "tensorflow" and b["run_dir"] == a["run_dir"] and b["nimg"] == 48
    assert b["g_iter"] == b["d_iter"] == 4          # the 16x16 phase started fresh on TF after the fade

    c = _train(env_jax, **_opts(dataset, out, total_kimg=0.064, resume="auto", **grow))
    assert c["nimg"] == 64 and c["run_dir"] == a["run_dir"] and c["lods"] == [0.0] and all(np.isfinite(c["d_loss"]))
    assert c["g_iter"] == c["d_iter"] == 8          # continued TF's Adam state: 4 + 4 steps in the same phase


@pytest.mark.slow   # ~90 s of CPU: two training runs in subprocesses
def test_msg_stylegan_trains_and_resumes_on_jax_without_tensorflow(dataset, tmp_path):
    """`--arch msg-stylegan` on JAX without TensorFlow: the numpy reader's pyramid batches (every level, lowest
    first) feed the JAX step; the run snapshots, records the backend and resumes."""
    env = _without_tf(tmp_path)
    net = dict(arch="msg-stylegan", resolution=16, mirror=True)
    a = _train(env, **_opts(dataset, tmp_path / "r", total_kimg=0.016, snap_ticks=1, **net))
    assert a["backend"] == "jax" and a["stopped_by"] == "done" and a["nimg"] == 16 and all(np.isfinite(a["d_loss"]))
    assert json.load(open(os.path.join(a["run_dir"], "training_options.json")))["backend"] == "jax"
    b = _train(env, **_opts(dataset, tmp_path / "r", total_kimg=0.032, snap_ticks=1, resume="auto", **net))
    assert b["run_dir"] == a["run_dir"] and b["nimg"] == 32 and all(np.isfinite(b["d_loss"]))
    assert b["g_iter"] == b["d_iter"] == 8          # no growing: one Adam state over both runs


def test_gpu_check_cpu_mode(tmp_path):
    """benchmarks/gpu_check.py --cpu: fixture parity, inference, the jitted train step and `fit`, tiny."""
    env = _without_tf(tmp_path)
    report = tmp_path / "gpu_check.json"
    _run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--cpu", "--budget-s", "1000", "--json",
          str(report)], env, timeout=900)
    r = json.load(open(report))
    assert r["fixture_ok"] and r["tensorflow"] is False
    assert [c["case"] for c in r["cases"]] == ["inference", "train", "fit"]
    assert all(c["img_per_s"] > 0 for c in r["cases"]) and r["cases"][2]["finite"]


@pytest.mark.slow   # ~60 s: a training run in a subprocess with two XLA CPU devices
def test_data_parallel_over_two_devices(dataset, tmp_path):
    """--gpus 2 on JAX is keras.distribution.DataParallel: the run trains on a 2-device mesh (CPU devices here)."""
    env = _without_tf(tmp_path)
    env["XLA_FLAGS"] = xla_flags(2)
    script = _TRAIN.replace('"run_dir": res.run_dir}', '"run_dir": res.run_dir, "mesh": int(np.prod(list('
                            'm.G.trainable_variables[0].value.sharding.mesh.shape.values())))}')
    out = _run([sys.executable, "-c", script, json.dumps(_opts(dataset, tmp_path / "r", resolution=8,
                                                               lod_initial_resolution=8, total_kimg=0.016,
                                                               gpus=2))], env, timeout=600)
    r = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    assert r["mesh"] == 2 and r["nimg"] == 16 and all(np.isfinite(r["d_loss"]))
