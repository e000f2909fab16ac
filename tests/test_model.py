"""`StyleGAN` (training/model.py) and the iteration it runs (training/iteration.py, tf_step.py, jax_step.py):
a loss added in one place trains on both backends, the iteration's modules import one way, and misuse is one
clear error. The iteration's numbers are checked against NVIDIA's in tests/test_official_train_step.py and
between the backends in tests/test_jax_step.py."""
import ast
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import TINY_NET

from stylegan_tf.networks import Discriminator, Generator
from stylegan_tf.training import StyleGAN
from stylegan_tf.training import loss as L

REPO = pathlib.Path(__file__).resolve().parents[1]
TOY = "test-lsgan"


def register_toy_loss():
    """A least-squares GAN with a statistic of its own, `ls_margin`: the only place that knows this loss."""
    from keras import ops

    def scores(x):
        return ops.reshape(ops.cast(x, "float32"), [-1])

    def d_ls(d_fn, reals, fakes, **_):
        real, fake = scores(d_fn(reals)), scores(d_fn(fakes))
        loss = ops.square(real - 1.0) + ops.square(fake)
        return loss, {"real_score": real, "fake_score": fake, "ls_margin": real - fake}

    def g_ls(fake_scores):
        return ops.square(scores(fake_scores) - 1.0)

    return L.register_loss(TOY, g_ls, d_ls, stats=("ls_margin",), description="least squares (a test's own)")


def train_toy(deterministic, label_size=2):
    """A tiny conditional model trained with the toy loss: a 2-step `fit`, after a deterministic step if asked.
    Returns what the test checks as JSON-able numbers (this runs on TF here and on JAX in a subprocess)."""
    keras.utils.set_random_seed(0)
    res, n = 4, 4     # one level: the smallest graph to compile
    G = Generator(resolution=res, num_channels=3, label_size=label_size, **TINY_NET)
    D = Discriminator(resolution=res, num_channels=3, label_size=label_size, fmap_base=TINY_NET["fmap_base"],
                      fmap_max=TINY_NET["fmap_max"])
    eye = np.eye(label_size, dtype=np.float32)
    model = StyleGAN(G, D, mirror=True, g_smoothing_kimg=0.1, label_pool=eye[np.arange(6) % label_size])
    z, lab = np.zeros([1, 16], np.float32), eye[:1]
    G(z, labels=lab), model.Gs(z, labels=lab), D(np.zeros([1, res, res, 3], np.float32), labels=lab)
    model.ema_update_now(0.0)
    model.compile(g_optimizer=keras.optimizers.Adam(1e-3), d_optimizer=keras.optimizers.Adam(1e-3), loss=TOY)
    model.configure_phase(0, n)
    rng = np.random.default_rng(0)
    batches = [(rng.uniform(-1, 1, (n, res, res, 3)).astype(np.float32), eye[rng.integers(0, label_size, n)],
                np.full([n], i, np.int64)) for i in range(2)]
    d_before = [keras.ops.convert_to_numpy(v).copy() for v in D.trainable_variables]
    result = {"backend": keras.backend.backend()}
    if deterministic:
        out = model.deterministic_step(batches[0][0], batches[0][1], rng.normal(size=(n, 16)),
                                       rng.normal(size=(n, 16)), batches[1][1], step=2)
        result.update({k: out[k].tolist() for k in ("D_loss_per_sample", "real_score", "fake_score", "ls_margin")})
    hist = model.fit((b for b in batches), epochs=1, steps_per_epoch=2, verbose=0).history
    result["d_moved"] = max(float(np.abs(keras.ops.convert_to_numpy(v) - b).max())
                            for v, b in zip(D.trainable_variables, d_before))
    result["logs"] = {k: [float(x) for x in v] for k, v in hist.items()}
    return result


@pytest.fixture
def toy_loss():
    entry = register_toy_loss()
    yield entry
    del L.LOSSES[TOY]


def _check_toy_run(r):
    logs = r["logs"]
    # fit logs the loss's own statistic under its name, beside the trackers every loss has, and nothing else's.
    assert set(logs) >= {"G_loss", "D_loss", "real_score", "fake_score", "nonfinite_skips", "ls_margin"}
    assert "r1" not in logs and all(np.isfinite(logs["ls_margin"])) and r["d_moved"] > 0
    # The running means are linear: margin = real - fake holds for them too, so the registered D loss ran.
    np.testing.assert_allclose(logs["ls_margin"], np.subtract(logs["real_score"], logs["fake_score"]),
                               rtol=1e-5, atol=1e-5 * np.abs(logs["real_score"]).max())


def test_a_loss_registered_in_one_place_trains_on_tensorflow_and_jax(toy_loss):
    """The toy loss is known to `register_toy_loss` only; the D step runs its D loss, fit logs its statistic."""
    assert keras.backend.backend() == "tensorflow"
    r = train_toy(deterministic=True)
    real, fake = np.array(r["real_score"]), np.array(r["fake_score"])
    terms = np.stack([(real - 1) ** 2, fake ** 2])
    np.testing.assert_allclose(r["D_loss_per_sample"], terms.sum(0), rtol=0, atol=1e-5 * terms.max())
    np.testing.assert_allclose(r["ls_margin"], real - fake, rtol=0, atol=1e-5 * np.abs([real, fake]).max())
    _check_toy_run(r)
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]))
    code = ("import json, test_model as t; t.register_toy_loss(); "
            "print('RESULT ' + json.dumps(t.train_toy(deterministic=False)))")
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(proc.stdout.split("RESULT ", 1)[1].splitlines()[0])
    assert r["backend"] == "jax"
    _check_toy_run(r)


def _training_imports():
    """{module: the stylegan_tf.training modules it imports (at the top or inside a function)}."""
    graph = {}
    for path in sorted((REPO / "stylegan_tf" / "training").glob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "stylegan_tf.training":
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stylegan_tf.training."):
                names.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                names.update(a.name.split(".")[2] for a in node.names if a.name.startswith("stylegan_tf.training."))
        graph[path.stem] = names & {p.stem for p in (REPO / "stylegan_tf" / "training").glob("*.py")} - {path.stem}
    return graph


def test_the_training_modules_import_without_a_circle():
    graph = _training_imports()
    done, path = set(), []

    def visit(m):
        if m in path:
            pytest.fail(f"import circle: {' -> '.join(path[path.index(m):] + [m])}")
        if m not in done:
            path.append(m)
            for n in sorted(graph.get(m, ())):
                if n != "__init__":
                    visit(n)
            path.pop()
            done.add(m)

    for module in sorted(graph):
        if module != "__init__":
            visit(module)
    # The model picks its backend's step; the steps share the iteration, which knows neither.
    assert {"iteration", "tf_step", "jax_step"} <= graph["model"]
    assert "iteration" in graph["tf_step"] & graph["jax_step"] and not graph["iteration"] - {"loss"}


def _tiny(label_size=0, **kw):
    G = Generator(resolution=8, num_channels=3, label_size=label_size, **TINY_NET)
    D = Discriminator(resolution=8, num_channels=3, label_size=label_size, fmap_base=64, fmap_max=16)
    return StyleGAN(G, D, **kw)


def test_misuse_is_one_clear_error():
    model = _tiny()
    x, z = np.zeros([4, 8, 8, 3], np.float32), np.zeros([4, 16], np.float32)
    with pytest.raises(ValueError, match="needs compile"):
        model.deterministic_step(x, None, z, z)
    model.compile(g_optimizer=keras.optimizers.Adam(), d_optimizer=keras.optimizers.Adam())
    with pytest.raises(ValueError, match="needs configure_phase"):
        model.deterministic_step(x, None, z, z)
    with pytest.raises(ValueError, match="unknown loss 'lsq': choose one of logistic, "):
        model.compile(loss="lsq")
    assert model.loss_name == "logistic" and model.loss_entry is L.get_loss("logistic")
    conditional = _tiny(label_size=2)
    conditional.compile(g_optimizer=keras.optimizers.Adam(), d_optimizer=keras.optimizers.Adam())
    conditional.configure_phase(0, 4)
    with pytest.raises(ValueError, match="needs labels and labels_g"):
        conditional.deterministic_step(x, None, z, z)
    # A conditional model's G step draws its labels from the dataset's: without them, one line, not a traceback.
    batch = (x, np.zeros([4, 2], np.float32), np.zeros([4], np.int64))
    with pytest.raises(ValueError, match="a conditional model needs label_pool"):
        conditional.fit((b for b in [batch]), epochs=1, steps_per_epoch=1, verbose=0)


def test_lazy_r1_is_due_every_kth_step():
    model = _tiny(loss_kwargs={"gamma": 10.0, "r1_interval": 3})
    assert [bool(model.r1_due(s)) for s in range(7)] == [True, False, False, True, False, False, True]
    model.loss_kwargs = {"gamma": 10.0}
    assert all(bool(model.r1_due(s)) for s in range(4))
