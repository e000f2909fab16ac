"""train.py's supervising parent of a JAX worker (stylegan_tf/supervise.py), with real processes: a small script
that starts as train.py does (`supervise.run_supervised`), whose child writes some output and then what the test
asks: jaxlib's fatal block and an abort, an exit code, or a wait for a signal. No JAX, Keras or TensorFlow: each
test takes a fraction of a second."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, process_gone
from stylegan_tf import supervise
from stylegan_tf.cluster import Cluster

pytestmark = pytest.mark.skipif(os.name == "nt", reason="the supervisor runs on POSIX only")

# What jaxlib 0.10.2 wrote before aborting a worker (copied from two real workers on 127.0.0.1): worker 1 when
# worker 0, with the coordination service, was killed; worker 0 when worker 1 stopped sending heartbeats.
CHIEF_GONE = b"""E1207 18:09:06.409100    4576 coordination_service_agent.cc:289] Polled an error from coordination \
service (this can be an error from this or another task).
F1207 18:09:06.409189    4576 client.h:80] Terminating process because the JAX distributed service detected fatal \
errors. This most likely indicates that another task died; see the other task logs for more details. Disable Python \
buffering, i.e. `python -u`, to be sure to see all the previous output. absl::Status: UNAVAILABLE: Failed to send \
RPC to coordination service. Either the leader task was preempted/died/restarted unexpectedly or this task is \
experiencing network issues. Check earlier logs from 1) this task, 2) the leader (usually slice 0 task 0), and 3) \
cluster scheduler to debug further.
Additional GRPC error information from remote target coordination_service while calling \
/xla.coordination.CoordinationService/PollForError:
:UNKNOWN:Error received from peer  {grpc_status:14, grpc_message:"Socket closed"}
*** Check failure stack trace: ***
    @     0x7f7db4040634  absl::lts_20260107::log_internal::LogMessage::SendToLog()
    @     0x7f7db40405b6  absl::lts_20260107::log_internal::LogMessage::Flush()
    @     0x7f7db01040ee  xla::CoordinationServiceAgent::SetError()
    @     0x7f7dbb4a71f5  (unknown)"""
HEARTBEATS = b"""E1207 18:09:18.860289    4630 coordination_service.cc:1549] [771995624416537416] Use error polling \
to propagate the following error to all tasks: UNAVAILABLE: The following tasks are unhealthy (stopped sending \
heartbeats):
1
The tasks have crashed. Check the task logs for an earlier error, or scheduler events (e.g. preemption, eviction) \
to debug further. [type.googleapis.com/tensorflow.CoordinationServiceError='']
E1207 18:09:18.861379    4646 coordination_service_agent.cc:289] Polled an error from coordination service (this \
can be an error from this or another task).
F1207 18:09:18.861635    4646 client.h:80] Terminating process because the JAX distributed service detected fatal \
errors. This most likely indicates that another task died; see the other task logs for more details. Disable Python \
buffering, i.e. `python -u`, to be sure to see all the previous output. absl::Status: UNAVAILABLE: The following \
tasks are unhealthy (stopped sending heartbeats):
1
The tasks have crashed. Check the task logs for an earlier error, or scheduler events (e.g. preemption, eviction) \
to debug further.

RPC: /xla.coordination.CoordinationService/PollForError [type.googleapis.com/tensorflow.CoordinationServiceError='']
*** Check failure stack trace: ***
    @     0x7f73e0240634  absl::lts_20260107::log_internal::LogMessage::SendToLog()
    @     0x7f73e76a71f5  (unknown)"""
# What the child writes before the test's ending: tqdm-like \r updates, and lines that start like a C++ log line
# without being one.
STDOUT = b"step 1\rstep 2\rstep 3\n"
STDERR = b"tick 1 \r 50%|####  \r100%|#####\nE-mail is not a log line\nEpoch 2\nF1 car\n"
ADDRESSES = ["127.0.0.1:41561", "127.0.0.1:41563"]
# A line that the child prints itself when it notices the lost chief.
OWN_LINE = b"train.py: error: training stopped: worker 0 (127.0.0.1:41561) is gone (its connection was closed)\n"

# Started as train.py starts; the child (which run_supervised returns None in) then does what argv[1] says.
FAKE_TRAIN = r"""
import os, signal, sys, time
from stylegan_tf import supervise
code = supervise.run_supervised(__file__)
if code is not None:
    sys.exit(code)
os.write(1, STDOUT)
os.write(2, STDERR)
what = sys.argv[1]
if what == "abort":             # jaxlib's block in small pieces (the fatal line split across them), then SIGABRT
    block = open(sys.argv[2], "rb").read()
    for i in range(0, len(block), 97):
        os.write(2, block[i:i + 97])
        time.sleep(0.002)
    if len(sys.argv) > 3:       # the child's own exit, racing jaxlib's abort
        sys.exit(int(sys.argv[3]))
    os.abort()
elif what == "exit":
    os.write(2, b"E1207 18:09:06.409100    4576 foo.cc:1] a log line of its own\nafter it\n")
    sys.exit(int(sys.argv[2]))
elif what == "wait":            # for a signal; Ctrl-C as train.py answers it
    try:                        # a signal may land as soon as the pid is out
        print(os.getpid(), flush=True)
        time.sleep(60)
    except KeyboardInterrupt:
        print("train.py: interrupted", file=sys.stderr)
        sys.exit(130)
"""


def _env(index, **extra):
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(REPO),
               TF_CONFIG=json.dumps({"cluster": {"worker": ADDRESSES}, "task": {"type": "worker", "index": index}}))
    env.pop(supervise.CHILD_ENV, None)
    env.update(extra)
    return env


@pytest.fixture
def fake_train(tmp_path):
    path = tmp_path / "fake_train.py"
    path.write_text(f"STDOUT = {STDOUT!r}\nSTDERR = {STDERR!r}\n" + FAKE_TRAIN)
    return path


def _run(fake_train, *args, index=1):
    t = time.monotonic()
    done = subprocess.run([sys.executable, str(fake_train), *map(str, args)], env=_env(index), capture_output=True,
                          timeout=60)
    return done, time.monotonic() - t


@pytest.mark.parametrize("index, block, named", [(1, CHIEF_GONE, "worker 0 (127.0.0.1:41561)"),
                                                 (0, HEARTBEATS, "worker 1 (127.0.0.1:41563)")])
def test_a_jax_abort_becomes_one_line_and_exit_code_2(fake_train, tmp_path, index, block, named):
    """jaxlib's fatal block and SIGABRT: the parent writes everything before the block as it came, then one line
    naming the lost worker (worker 0 when the coordination service is gone; the unhealthy task otherwise) instead
    of the block and its stack trace, and exits with code 2."""
    (tmp_path / "block").write_bytes(block)
    done, took = _run(fake_train, "abort", tmp_path / "block", index=index)
    err = done.stderr.decode()
    assert done.returncode == 2 and took < 30, err
    assert done.stdout == STDOUT
    assert done.stderr.startswith(STDERR), err
    lines = err[len(STDERR):].splitlines()
    assert len(lines) == 1 and lines[0].startswith("train.py: error: training stopped: " + named), err
    assert "--resume auto" in lines[0]
    assert not any(s in err for s in ("Terminating process", "Check failure", "E1207", "    @ ")), err


def test_the_childs_own_error_line_stays_the_only_one(tmp_path, fake_train):
    """A child that printed its own line before jaxlib aborted it: no second line."""
    (tmp_path / "block").write_bytes(OWN_LINE + CHIEF_GONE)
    done, _ = _run(fake_train, "abort", tmp_path / "block")
    assert done.returncode == 2 and done.stderr == STDERR + OWN_LINE, done.stderr.decode()


# jaxlib's block up to its stack trace: a child whose own exit beats the abort gets no further.
CHIEF_GONE_HEAD = CHIEF_GONE[:CHIEF_GONE.index(b"*** Check failure")]


@pytest.mark.parametrize("block", [CHIEF_GONE_HEAD + OWN_LINE, OWN_LINE + CHIEF_GONE_HEAD])
def test_a_child_exiting_on_its_own_line_during_the_block_keeps_only_that_line(tmp_path, fake_train, block):
    """The child's Python code notices the lost worker while jaxlib writes its block, prints its own line and
    exits with code 2 before the abort: that line (before or within the block) is the only one, code 2."""
    (tmp_path / "block").write_bytes(block)
    done, _ = _run(fake_train, "abort", tmp_path / "block", 2)
    assert done.returncode == 2 and done.stderr == STDERR + OWN_LINE, done.stderr.decode()


@pytest.mark.parametrize("args, code", [(["exit", 0], 0), (["exit", 3], 3), (["abort", "none"], -signal.SIGABRT)])
def test_any_other_end_passes_through(tmp_path, fake_train, args, code):
    """An exit code is the parent's exit code, with every byte of output (held C++ log lines included); a signal
    death (an abort without jaxlib's block) is the parent's, with its text."""
    if args[1] == "none":
        (tmp_path / "none").write_bytes(b"E1207 18:09:06.409100    4576 foo.cc:1] not jaxlib's block\n")
        args = ["abort", tmp_path / "none"]
    done, _ = _run(fake_train, *args)
    assert done.returncode == code and done.stdout == STDOUT
    tail = b"not jaxlib's block\n" if code < 0 else b"a log line of its own\nafter it\n"
    assert done.stderr.startswith(STDERR) and done.stderr.endswith(tail), done.stderr.decode()


def _start_waiting(fake_train):
    parent = subprocess.Popen([sys.executable, str(fake_train), "wait"], env=_env(1), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, start_new_session=True)
    assert parent.stdout.readline() == STDOUT
    return parent, int(parent.stdout.readline())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux'")
def test_a_killed_parent_takes_its_child(fake_train):
    parent, child = _start_waiting(fake_train)
    try:
        assert child != parent.pid
        parent.kill()
        parent.wait(10)
        assert process_gone(child, 10), "the child outlived its killed parent"
    finally:
        if not process_gone(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_reach_the_child(fake_train, how):
    """Ctrl-C (SIGINT to the process group): the child stops as train.py does (130), and so does the parent,
    without a traceback. SIGTERM to the parent alone: passed on to the child, whose death is the parent's."""
    parent, child = _start_waiting(fake_train)
    try:
        if how == "ctrl-c":
            os.killpg(parent.pid, signal.SIGINT)
        else:
            parent.send_signal(signal.SIGTERM)
        code = parent.wait(20)
        err = parent.stderr.read().decode()
        assert code == (130 if how == "ctrl-c" else -signal.SIGTERM), err
        assert "Traceback" not in err and process_gone(child)
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.stdout.close()
        parent.stderr.close()


def test_who_is_supervised(tmp_path):
    """JAX with a cluster of several workers only: not TensorFlow, not one worker, not the child itself, not a
    description that cannot be used (the run reports it). The backend comes from KERAS_BACKEND, else keras.json."""
    assert supervise.supervision_wanted(_env(1)) == Cluster(tuple(ADDRESSES), 2, 1)
    assert supervise.supervision_wanted(_env(1, KERAS_BACKEND="tensorflow")) is None
    assert supervise.supervision_wanted(_env(1, **{supervise.CHILD_ENV: "123"})) is None
    assert supervise.supervision_wanted(_env(1, TF_CONFIG="{not json")) is None
    one = json.dumps({"cluster": {"worker": ADDRESSES[:1]}, "task": {"type": "worker", "index": 0}})
    assert supervise.supervision_wanted(_env(0, TF_CONFIG=one)) is None
    keras_env = {"KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234", "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
                 "KERAS_DISTRIBUTION_PROCESS_ID": "1"}
    assert supervise.supervision_wanted(dict(keras_env, KERAS_BACKEND="jax")).name(0) == "worker 0 (10.0.0.1:1234)"
    (tmp_path / "keras.json").write_text('{"backend": "jax"}')
    home = dict(keras_env, KERAS_HOME=str(tmp_path))
    assert supervise.supervision_wanted(dict(home, KERAS_BACKEND="")) is not None
    assert supervise.supervision_wanted(dict(home, KERAS_BACKEND="tensorflow")) is None


def test_the_parent_imports_nothing_heavy():
    """train.py's parent decides and supervises with the standard library alone."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import train; from stylegan_tf import supervise; "
            "supervise.supervision_wanted(); print(sorted({'numpy', 'keras', 'jax', 'tensorflow'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code, str(REPO)], env=_env(1), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr
