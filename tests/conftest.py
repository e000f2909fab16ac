import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# XLA at its lowest optimisation level, for this process and every process a test starts: the JAX tests compile
# training steps of tiny networks, whose run time is nothing beside their compile time, and this cuts the JAX
# tests' time by about 40 % on a 2-core CPU. The numbers stay within every parity tolerance (the official
# iteration's 1e-4 included); the product itself compiles with XLA's defaults.
TEST_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_XLA_FLAGS}".strip()

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def xla_flags(devices=1):
    """XLA_FLAGS for a process that sees `devices` XLA CPU devices (a mesh for --gpus N on JAX), with the tests'
    own flags kept."""
    extra = f" --xla_force_host_platform_device_count={devices}" if devices > 1 else ""
    return os.environ["XLA_FLAGS"] + extra
# Numbers produced by running NVIDIA's official code (see fixtures/README.md), vendored so that a plain clone
# runs every test. The product never reads them.
FIXTURES = REPO / "tests" / "fixtures"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long test, skipped unless --runslow or STYLEGAN_TF_SLOW=1")


# The modules that take longest, longest first (CI's 2-core machine: 80-300 s each). They run first, so that the
# two workers (pytest-xdist, which hands out whole modules in collection order) finish at about the same time
# instead of one of them starting test_train.py when the other is nearly done.
LONGEST_MODULES = ["test_train", "test_jax", "test_notebooks", "test_multiworker", "test_callbacks", "test_cli",
                   "test_jax_step", "test_ada_training", "test_ppl", "test_networks", "test_archs"]


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))      # stable: the rest keep their order
    if config.getoption("--runslow") or os.environ.get("STYLEGAN_TF_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (CI keeps the suite under 15 minutes)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fixtures_dir():
    """tests/fixtures; a missing folder fails the test (it is part of the repository), never a skip."""
    if not (FIXTURES / "official-stylegan").is_dir() or not (FIXTURES / "fid-inception").is_dir():
        pytest.fail(f"test fixtures missing at {FIXTURES}: they are part of the repository (git checkout them)")
    return FIXTURES


# The tiny network configs, defined here once; a test file imports them (`from conftest import TINY_NET`).
# TINY_NET: the training options / network kwargs of a tiny StyleGAN (any resolution), the smallest feature
# maps that still have every kind of layer; the training, resume and JAX tests use it.
TINY_NET = dict(fmap_base=64, fmap_max=16, latent_size=16, dlatent_size=16, mapping_layers=2, mapping_fmaps=16)
# TINY_DCGAN: the same for --arch dcgan (its width flags instead of fmap_base).
TINY_DCGAN = dict(width=4, fmap_max=16, latent_size=16)
# TINY_G: the tiny random generator that the generate, editing and metrics tests share: 32x32 (two swd levels,
# a 4x4 to 32x32 synthesis).
TINY_G = dict(resolution=32, fmap_base=64, fmap_max=32, latent_size=32, dlatent_size=32, mapping_fmaps=32)


@pytest.fixture(scope="session")
def tiny_generator():
    """A built Generator(**TINY_G) with random weights. Shared by the whole session: use it, never modify it."""
    import numpy as np
    from stylegan_tf.networks import Generator
    G = Generator(**TINY_G)
    G(np.zeros([1, TINY_G["latent_size"]], np.float32))
    # Noise weights start at 0 (as the original), which would make every test of noise vacuous.
    for var in G.trainable_variables:
        if "noise" in var.path.lower():
            var.assign(np.full(var.shape, 0.3, np.float32))
    return G


@pytest.fixture(scope="session")
def tiny_network_path(tiny_generator, tmp_path_factory):
    """`tiny_generator` saved as our .keras network file (G = Gs, no D: what generate and metrics need)."""
    from stylegan_tf.network_io import save_network
    from stylegan_tf.networks import Networks
    path = tmp_path_factory.mktemp("tiny-net") / "tiny.keras"
    save_network(Networks(tiny_generator, None, tiny_generator), str(path))
    return str(path)


def write_random_dataset(folder, images, labels):
    """A dataset of uint8 [N, C, R, R] `images` (every level) with one-hot `labels` at `folder`; its DatasetInfo."""
    from stylegan_tf.data import DatasetWriter, build_pyramid, open_dataset
    folder.mkdir()
    with DatasetWriter(str(folder), folder.name, images.shape[-1], images.shape[1]) as w:
        for im in images:
            w.add(build_pyramid(im))
        w.write_labels(labels)
    return open_dataset(folder)


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory):
    """demo_dataset(resolution, count) -> path of the built-in demo faces (seed 0) as a dataset, built once per
    session for each size. Read-only for the tests: a test that changes a dataset makes its own."""
    built = {}

    def get(resolution, count):
        if (resolution, count) not in built:
            from stylegan_tf.data import create_demo
            path = tmp_path_factory.mktemp(f"demo-r{resolution}-n{count}") / "faces"
            create_demo(str(path), count=count, resolution=resolution, seed=0, progress=False, workers=1)
            built[resolution, count] = str(path)
        return built[resolution, count]
    return get


def free_port():
    """A TCP port on 127.0.0.1 that is free now."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_pids(pid):
    """The pids of process `pid`'s children (Linux: read from /proc; elsewhere [])."""
    found = []
    for name in os.listdir("/proc") if os.path.isdir("/proc/self") else []:
        try:
            with open(f"/proc/{name}/stat") as f:
                if name.isdigit() and int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def process_gone(pid, within=0.0):
    """Whether process `pid` has ended within `within` seconds (a zombie that nobody reaps counts as ended)."""
    import time
    deadline = time.monotonic() + within
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in "ZX":
                    return True
        except FileNotFoundError:
            if os.path.isdir("/proc/self"):
                return True
            try:                        # no /proc (macOS): whether a signal can still reach it
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@pytest.fixture(scope="session")
def explore_network(tiny_network_path):
    """The explorer tests' network: `tiny_network_path`, or $EXPLORE_NETWORK (any 32x32 StyleGAN) for the browser
    test's documentation screenshots."""
    return os.environ.get("EXPLORE_NETWORK") or tiny_network_path


@pytest.fixture(scope="session")
def explore_files(explore_network, demo_dataset, tmp_path_factory):
    """(directions, labeler) fitted once for `explore_network` (small, quick fits): the explorer's API and
    browser tests share them."""
    from stylegan_tf import editing
    folder = tmp_path_factory.mktemp("explore-editing")
    labeler = str(folder / "labeler.keras")
    editing.train_labeler(demo_dataset(32, 300), "smile,yaw", out=labeler, epochs=1, progress=False)
    directions = str(folder / "directions.npz")
    editing.fit_directions(explore_network, labeler, ["smile", "yaw"], samples=200, steps=200, out=directions,
                           progress=False)
    return directions, labeler


@pytest.fixture(scope="session")
def explore_server(explore_network, explore_files):
    """(url, app): the explorer for `explore_network` on a free 127.0.0.1 port, built once for the explorer's
    API and browser tests and closed at the end of the session."""
    pytest.importorskip("gradio", reason="the explorer's tests need Gradio: pip install -e \".[test]\"")
    from stylegan_tf.explore import build_app
    app = build_app(explore_network, *explore_files)
    _, url, _ = app.launch(server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield url, app
    finally:
        app.close(verbose=False)
