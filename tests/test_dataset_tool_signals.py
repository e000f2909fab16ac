"""Ctrl-C (SIGINT to the whole process group, as a terminal sends it) and SIGTERM at several moments of
`dataset_tool.py create_from_images`, with real signals: one line, exit code 130, nothing written, no process left."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ONE_LINE = "dataset_tool.py: interrupted; no dataset was written"
TIMEOUT_S = 60

# Runs dataset_tool.py with one of its steps widened or disturbed, to signal it at a moment that is otherwise
# too short to hit from outside: "slow-final-write" sleeps in the write of dataset.json (after the images);
# "gc-swallows" makes a garbage-collector callback receive the SIGINT (Python prints and drops a KeyboardInterrupt
# raised there), as JAX's callback does when Ctrl-C lands in it.
WRAPPER = r"""
import gc, os, signal, sys, time
mode = sys.argv.pop(1)
import dataset_tool
from stylegan_tf.data import tfrecords
if mode == "slow-final-write":
    real = tfrecords.write_metadata
    def slow(*args):
        print("final write", flush=True)
        time.sleep(30)
        return real(*args)
    tfrecords.write_metadata = slow
elif mode == "gc-swallows":
    real_add, added = tfrecords.DatasetWriter.add, []
    def add(self, pyramid):
        real_add(self, pyramid)
        added.append(1)
        if len(added) == 3:
            gc.callbacks.append(ctrl_c_in_gc)
            gc.collect()
    def ctrl_c_in_gc(phase, info):
        gc.callbacks.remove(ctrl_c_in_gc)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)  # the handler runs here, inside the callback
    tfrecords.DatasetWriter.add = add
sys.exit(dataset_tool.main())
"""


@pytest.fixture(autouse=True)
def sigint_not_ignored():
    """The tool starts with SIGINT at its default, as under a terminal. A test runner started as a background job
    (`pytest &` in a script, `nohup`) ignores SIGINT, and a child inherits that: the tool would then rightly leave
    Ctrl-C alone, as a background job should, and these tests would test nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _images(folder, count, size):
    folder.mkdir()
    rng = np.random.RandomState(0)
    for i in range(count):
        small = Image.fromarray(rng.randint(0, 256, [8, 8, 3]).astype(np.uint8))
        small.resize((size, size), Image.BICUBIC).save(folder / f"{i:04d}.png")
    return folder


@pytest.fixture(scope="module")
def small_images(tmp_path_factory):
    return _images(tmp_path_factory.mktemp("small") / "images", 40, 32)


@pytest.fixture(scope="module")
def large_images(tmp_path_factory):
    return _images(tmp_path_factory.mktemp("large") / "images", 200, 256)


def _group(pgid):
    """{pid: state} of the processes of a process group (ps: the tool, its workers, the forkserver)."""
    out = subprocess.run(["ps", "-eo", "pid=,pgid=,stat="], capture_output=True, text=True).stdout
    return {int(p): s for p, g, s in (line.split() for line in out.splitlines()) if int(g) == pgid}


def _interrupt(tmp_path, images, when, sig=signal.SIGINT, to_group=True, wrapper=None, args=()):
    """Start create_from_images in its own process group, send `sig` once `when(output so far)` says so, and check
    the outcome. Returns the processes of the group at the moment of the signal."""
    out = tmp_path / "out"
    out.mkdir()
    cmd = ["dataset_tool.py", "create_from_images", str(out / "ds"), str(images), *args]
    cmd = [sys.executable, "-c", WRAPPER, wrapper, *cmd[1:]] if wrapper else [sys.executable, *cmd]
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    p = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        os.set_blocking(p.stdout.fileno(), False)
        seen, deadline = b"", time.time() + TIMEOUT_S
        while when is not None and not when(seen.decode(errors="replace")):
            assert p.poll() is None and time.time() < deadline, f"the moment never came:\n{seen.decode()}"
            seen += p.stdout.read() or b""
            time.sleep(0.01)
        at_signal = _group(p.pid)
        if when is not None:
            os.killpg(p.pid, sig) if to_group else os.kill(p.pid, sig)
        p.wait(timeout=TIMEOUT_S)
        os.set_blocking(p.stdout.fileno(), True)
        seen += p.stdout.read()
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    # Progress bars aside (they end in \r), the output is the one line, and the exit code 130.
    lines = [line for line in seen.decode(errors="replace").replace("\r", "\n").splitlines()
             if line.strip() and not line.startswith(("scanning:", "images:", "final write"))]
    assert (p.returncode, lines) == (130, [ONE_LINE]), seen.decode(errors="replace")
    assert os.listdir(out) == []  # no dataset, no .partial folder
    # No process of the group runs on: the workers were stopped before the tool exited; the forkserver (which
    # waits for its parent to exit) follows within moments. Zombies are dead, waiting for init to reap them.
    deadline = time.time() + 10
    while any("Z" not in s for s in _group(p.pid).values()) and time.time() < deadline:
        time.sleep(0.1)
    assert all("Z" in s for s in _group(p.pid).values()), _group(p.pid)
    return at_signal


def test_ctrl_c_while_the_worker_processes_start(tmp_path, large_images):
    _interrupt(tmp_path, large_images, lambda out: "scanning:" in out, args=["--workers", "2"])


def test_ctrl_c_mid_run_with_workers_busy(tmp_path, large_images):
    def some_written(out):
        counts = [int(line.split("|")[2].split("/")[0]) for line in out.replace("\r", "\n").splitlines()
                  if line.startswith("images:") and line.count("|") >= 2]
        return any(n >= 10 for n in counts)

    at_signal = _interrupt(tmp_path, large_images, some_written, args=["--workers", "2", "--resolution", "128"])
    assert len(at_signal) >= 3  # the tool and its two workers (and the forkserver) were there to be stopped


def test_sigterm_while_tensorflow_is_imported(tmp_path, large_images):
    _interrupt(tmp_path, large_images, lambda out: "scanning: 100%" in out, sig=signal.SIGTERM, to_group=False,
               args=["--workers", "2", "--resolution", "128"])


def test_ctrl_c_during_the_final_write(tmp_path, small_images):
    _interrupt(tmp_path, small_images, lambda out: "final write" in out, wrapper="slow-final-write",
               args=["--workers", "2"])


def test_ctrl_c_that_a_garbage_collector_callback_swallows(tmp_path, small_images):
    _interrupt(tmp_path, small_images, None, wrapper="gc-swallows", args=["--workers", "1"])
