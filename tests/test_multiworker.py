"""Multi-worker training (training/distributed.py, docs/distributed.md): two worker processes on 127.0.0.1, CPU,
a tiny network, on each backend. Every process is started by `train.py` with one extra environment variable
(TF_CONFIG), as on real machines, and stopped by the test. On JAX each worker is two processes: train.py's
supervising parent (stylegan_tf/supervise.py), which the test starts and stops, and the child that trains, which
dies with its parent.

The reference is one process with the same global batch over the same two devices (`--gpus 2`: MirroredStrategy
over two logical CPUs, DataParallel over two XLA CPU devices), so that the replicas, their draws and the
gradient sums are laid out as the two workers lay them out.

The runs the tests need are started in the background as soon as what they resume from exists, at most
MAX_PROCESSES training processes at once (two cores stay busy while workers start up or wait for each other);
each test waits for its runs and asserts on what they left."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import REPO, TINY_NET, child_pids, free_port, process_gone, xla_flags
from stylegan_tf.cluster import ClusterError
from stylegan_tf.training import distributed
from stylegan_tf.training import snapshot as snap
from stylegan_tf.training.rundir import sweep_stale_temps

K_STEPS = 4          # one tick: minibatch 4, --tick-kimg 0.016
RUN_TIMEOUT_S = 600  # one run: under a minute on an idle 2-core machine, minutes on a loaded one
LOST_WITHIN_S = 90   # a killed worker's peer must have stopped by then (TensorFlow: ~10 s, JAX: at once)
MAX_PROCESSES = 4    # training processes of this module at once (a JAX worker's supervising parent not counted)
BACKENDS = ["tensorflow", "jax"]
# The worker the kill test kills, per backend, so that both directions are tested: on JAX the chief, whose death
# is the hardest one there (the coordination service lives in its process: jaxlib aborts the other worker, and
# its supervising parent turns that into our line); on TensorFlow worker 1, which the chief must notice and name.
KILLED = {"tensorflow": 1, "jax": 0}
# 1 to N on JAX: two more JAX processes, and worker 1 compiles its step again (JAX's persistent cache serves
# process 0 only), which does not fit CI's budget; TensorFlow's run takes the same loading path.
ONE_TO_N_BACKENDS = ["tensorflow", pytest.param("jax", marks=pytest.mark.slow)]
JAX_CACHE = None     # set by the `runs` fixture

# Logical CPU devices for the one-process reference on TensorFlow (set before TensorFlow starts).
TF_TWO_CPUS = ("import sys, tensorflow as tf; cpu = tf.config.list_physical_devices('CPU')[0]; "
               "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2); "
               "sys.path.insert(0, sys.argv[1]); import train; sys.exit(train.main(sys.argv[2:]))")


@pytest.fixture(scope="module")
def dataset(demo_dataset):
    return demo_dataset(resolution=16, count=48)


def _flags(dataset, outdir, steps, **extra):
    # The fakes grid only at the start and the end, and small: on JAX every process draws it op by op over the
    # cluster's mesh.
    opts = dict(data=dataset, outdir=outdir, minibatch=4, lrate=0.002, tick_kimg=0.016, snap_ticks=1, seed=5,
                resolution=8, lod_initial_resolution=8, total_kimg=0.004 * steps, image_snap_ticks=1000, grid="2x2",
                **TINY_NET, **extra)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in opts.items()]
    return flags + ["--mirror", "--no-progress"]


def _env(backend, tmp, devices=1):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu",
               PYTHONPATH=str(REPO), TMPDIR=str(tmp))
    env.pop("TF_CONFIG", None)
    if backend == "jax" and JAX_CACHE is not None:     # (None: a test without the `runs` fixture)
        # One compilation cache for the module's JAX processes: a restart's worker 0 (and the one-process resume)
        # loads the steps that the first run of its kind compiled, instead of compiling them again. JAX writes
        # and finds entries for process 0 only: worker 1 compiles at every start.
        env.update(JAX_COMPILATION_CACHE_DIR=str(JAX_CACHE), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    if devices > 1:
        env["XLA_FLAGS"] = xla_flags(devices)
    return env


def _tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def _weights(path):
    model = snap.load_snapshot(str(path))
    arrays = [w.numpy() for net in (model.G, model.D, model.Gs) for w in net.weights]
    return arrays + [v.numpy() for opt in (model.g_optimizer, model.d_optimizer) for v in opt.variables]


def _step(path):
    return snap.snapshot_config(str(path))["training_state"]["loop"]["step"]


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if x.size:      # to 1e-5 of the tensor's magnitude (floored for tensors that are ~0)
            assert float(np.max(np.abs(x - y))) <= 1e-5 * max(float(np.max(np.abs(y))), 1e-3)


def _only_run(outdir):
    runs = sorted(os.listdir(outdir))
    assert len(runs) == 1, runs
    return outdir / runs[0]


def _snapshots(outdir):
    return [p for _, p in snap.list_snapshots(str(_only_run(outdir)))]


def _scratch(tmp):
    return [n for n in os.listdir(tmp) if n.startswith(distributed.SCRATCH_PREFIX)]


def _one_process_args(backend, flags):
    """One process over two devices (--gpus 2), laid out as the two workers' replicas."""
    if backend == "tensorflow":
        return [sys.executable, "-c", TF_TWO_CPUS, str(REPO), *flags, "--gpus=2"]
    return [sys.executable, str(REPO / "train.py"), *flags, "--gpus=2"]


class Job:
    """One run of `processes` training processes, made by `make(job)` on a thread of its own once the jobs it
    depends on are done and a share of MAX_PROCESSES is free; `result()` waits for it (and re-raises what it
    raised)."""

    def __init__(self, runs, name, processes, make, after=()):
        self.runs, self.name, self.processes, self._make, self.after = runs, name, processes, make, after
        self._value = self._error = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        try:
            for job in self.after:
                job.result()
            with self.runs.slots(self.processes):
                self._value = self._make(self)
        except BaseException as e:      # noqa: B036 - handed to the test that asks for the result
            self._error = e

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value

    def popen(self, args, env, log_path):
        """A training process whose output goes to `log_path`; killed by the module's teardown if still alive."""
        log = open(log_path, "w+")
        with self.runs.lock:
            if self.runs.stopping:
                log.close()
                raise RuntimeError("the module's tests are over")
            proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
            self.runs.live.append(proc)
        return proc, log

    def workers(self, backend, flags, tmp):
        """Two `train.py` processes of one cluster; each one's output in a file beside it."""
        _, launches = _worker_launches(backend, flags, tmp)
        return [self.popen(args, env, tmp / f"worker{i}.log") for i, (args, env) in enumerate(launches)]


def _worker_launches(backend, flags, tmp):
    """The ports of a two-worker cluster on 127.0.0.1, and each worker's `train.py` command and environment."""
    ports = [free_port(), free_port()]
    return ports, [([sys.executable, str(REPO / "train.py"), *flags], dict(_env(backend, tmp),
                                                                            TF_CONFIG=_tf_config(ports, i)))
                   for i in range(2)]


def _finish(procs, timeout):
    """Wait for every process (killing all of them past `timeout`); returns [(exit code, output)]."""
    deadline = time.monotonic() + timeout
    out = []
    try:
        for proc, log in procs:
            proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.seek(0)
            out.append((proc.returncode, log.read()))
            log.close()
    return out


def _succeeded(results):
    for code, text in results:
        assert code == 0, text[-3000:]
    return results


class Runs:
    """The runs of this module, per backend, each made once (Job) and started by the `runs` fixture when a
    selected test needs it:
    - reference: one process (--gpus 2) trained straight to 2K steps (snapshots at K and 2K);
    - workers: two workers' first K steps;
    - restart: both workers restarted with `--resume auto` on a copy of the workers' run, one of them (KILLED)
      killed once the run has its 2K snapshot;
    - n_to_1: the workers' K snapshot resumed on one process (--gpus 2) up to 2K;
    - one_to_n: the reference's K snapshot resumed on two workers (--gpus 1 each) up to 2K."""

    NEEDS = {"test_two_workers_train_as_one_process": ("reference", "workers"),
             "test_killed_worker_stops_the_other_with_one_line_and_a_restart_resumes": ("reference", "restart"),
             "test_two_workers_snapshot_resumes_on_one_process": ("reference", "n_to_1"),
             "test_one_process_snapshot_resumes_on_two_workers": ("reference", "one_to_n")}
    AFTER = {"reference": (), "workers": (), "restart": ("workers",), "n_to_1": ("workers", "reference"),
             # after the workers too: their worker 0 has put the two-process step in JAX's cache by then
             "one_to_n": ("reference", "workers")}
    PROCESSES = {"workers": 2, "reference": 1, "restart": 2, "n_to_1": 1, "one_to_n": 2}
    # The order in which they start where they compete for processes: the JAX workers first (their restart, where
    # worker 1 compiles again, is the longest chain), then the TensorFlow ones, then the references.
    ORDER = [("jax", "workers"), ("tensorflow", "workers"), ("tensorflow", "reference"), ("jax", "reference")]

    def __init__(self, dataset, factory):
        self.dataset, self.factory = dataset, factory
        self.jobs, self.live, self.lock, self.stopping = {}, [], threading.Lock(), False
        self._free, self._cond = MAX_PROCESSES, threading.Condition()
        self._weights = {}

    def start(self, wanted):
        """Start the jobs `wanted` ({(backend, name)}) and what they depend on, in the order of ORDER, then of
        BACKENDS and PROCESSES."""
        closure, todo = set(), list(wanted)
        while todo:
            backend, name = todo.pop()
            if (backend, name) not in closure:
                closure.add((backend, name))
                todo += [(backend, n) for n in self.AFTER[name]]
        order = self.ORDER + [(b, n) for n in self.PROCESSES for b in BACKENDS if (b, n) not in self.ORDER]
        for backend, name in order:
            if (backend, name) in closure and (backend, name) not in self.jobs:
                after = tuple(self.jobs[backend, n] for n in self.AFTER[name])
                self.jobs[backend, name] = Job(self, f"{name}-{backend}", self.PROCESSES[name],
                                               lambda job, b=backend, n=name: getattr(self, "_" + n)(job, b),
                                               after).start()

    def get(self, backend, name):
        if (backend, name) not in self.jobs:       # a test run on its own (pytest -k): start what it needs
            self.start({(backend, name)})
        return self.jobs[backend, name].result()

    def weights(self, path):
        """The weights of snapshot `path`, loaded once (on the test's thread: Keras is not thread-safe)."""
        if path not in self._weights:
            self._weights[path] = _weights(path)
        return self._weights[path]

    class _Slots:
        def __init__(self, runs, n):
            self.runs, self.n = runs, n

        def __enter__(self):
            with self.runs._cond:
                self.runs._cond.wait_for(lambda: self.runs._free >= self.n)
                self.runs._free -= self.n

        def __exit__(self, *exc):
            with self.runs._cond:
                self.runs._free += self.n
                self.runs._cond.notify_all()

    def slots(self, n):
        return self._Slots(self, n)

    # ------------------------------------------------------------------------------------------ the runs
    def _reference(self, job, backend):
        base = self.factory.mktemp(f"reference-{backend}")
        flags = _flags(self.dataset, str(base / "out"), 2 * K_STEPS)
        _succeeded(_finish([job.popen(_one_process_args(backend, flags), _env(backend, base, devices=2),
                                      base / "output.txt")], RUN_TIMEOUT_S))
        paths = _snapshots(base / "out")
        assert len(paths) == 2                                  # at K and at 2K steps
        return {"K": paths[0], "2K": paths[1]}

    def _workers(self, job, backend):
        base = self.factory.mktemp(f"workers-{backend}")
        tmp = base / "tmp"
        tmp.mkdir()
        _succeeded(_finish(job.workers(backend, _flags(self.dataset, str(base / "out"), K_STEPS), tmp),
                           RUN_TIMEOUT_S))
        run_dir = _only_run(base / "out")
        return dict(outdir=base / "out", run_dir=run_dir, snapshots=snap.list_snapshots(str(run_dir)),
                    ticks=[json.loads(line)["tick"] for line in open(run_dir / "stats.jsonl")],
                    scratch=_scratch(tmp))

    def _restart(self, job, backend):
        base = self.factory.mktemp(f"restart-{backend}")
        outdir, tmp = base / "out", base / "tmp"
        shutil.copytree(job.after[0].result()["outdir"], outdir)
        tmp.mkdir()
        procs = job.workers(backend, _flags(self.dataset, str(outdir), 1000, resume="auto"), tmp)
        killed, children = KILLED[backend], []
        try:
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while len(list(outdir.glob("*/network-snapshot-*.keras"))) < 2:
                assert time.monotonic() < deadline, "no snapshot at 2K steps"
                assert all(p.poll() is None for p, _ in procs), [log.name for _, log in procs]
                time.sleep(0.2)
            # What train.py started under each process the test started: on JAX the worker that trains, under
            # its supervising parent. The kill is the parent's (the process a user started); its child dies with
            # it (PR_SET_PDEATHSIG).
            children = [child_pids(p.pid) for p, _ in procs]
            procs[killed][0].send_signal(signal.SIGKILL)
            t = time.monotonic()
            try:
                procs[1 - killed][0].wait(timeout=LOST_WITHIN_S)
                waited = time.monotonic() - t
            except subprocess.TimeoutExpired:   # still running: the test fails on `waited`, showing its output
                waited = float("inf")
        finally:
            results = _finish(procs, 1)
        code, text = results[1 - killed]
        survivors = [pid for pids in children for pid in pids if not process_gone(pid, within=10)]
        return dict(outdir=outdir, tmp=tmp, killed=killed, code=code, text=text, waited=waited, children=children,
                    survivors=survivors)

    def _n_to_1(self, job, backend):
        base = self.factory.mktemp(f"n-to-1-{backend}")
        resume = job.after[0].result()["snapshots"][0][1]
        flags = _flags(self.dataset, str(base / "out"), 2 * K_STEPS, resume=resume)
        _succeeded(_finish([job.popen(_one_process_args(backend, flags), _env(backend, base, devices=2),
                                      base / "output.txt")], RUN_TIMEOUT_S))
        return _snapshots(base / "out")

    def _one_to_n(self, job, backend):
        base = self.factory.mktemp(f"one-to-n-{backend}")
        tmp = base / "tmp"
        tmp.mkdir()
        # --gpus 1: the snapshot's run recorded --gpus 2 (one process over two devices), each worker has one
        flags = _flags(self.dataset, str(base / "out"), 2 * K_STEPS, resume=job.after[0].result()["K"], gpus=1)
        _succeeded(_finish(job.workers(backend, flags, tmp), RUN_TIMEOUT_S))
        return dict(snapshots=_snapshots(base / "out"), scratch=_scratch(tmp))

    def stop(self):
        with self.lock:
            self.stopping = True
            for proc in self.live:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


@pytest.fixture(scope="module")
def runs(dataset, tmp_path_factory, request):
    """The module's runs; those that the selected tests need start at once, in the background."""
    global JAX_CACHE
    JAX_CACHE = tmp_path_factory.mktemp("jax-cache")
    made = Runs(dataset, tmp_path_factory)
    wanted = set()
    for item in request.session.items:
        needs = Runs.NEEDS.get(getattr(item, "originalname", None))
        if item.module is request.module and needs and not item.get_closest_marker("skip"):
            wanted |= {(item.callspec.params["backend"], name) for name in needs}
    made.start(wanted)
    yield made
    made.stop()


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_workers_train_as_one_process(backend, runs):
    """K steps on two workers give the weights and Adam states of one process over the same two devices; only the
    chief wrote: one run directory, one stats row per tick, the other worker's scratch folder gone."""
    first = runs.get(backend, "workers")
    assert len(first["snapshots"]) == 1 and first["ticks"] == [1] and first["scratch"] == []
    _assert_same(runs.weights(first["snapshots"][0][1]), runs.weights(runs.get(backend, "reference")["K"]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_worker_stops_the_other_with_one_line_and_a_restart_resumes(backend, runs):
    """Both workers restarted with `--resume auto` on the two-worker run continue it exactly (their snapshot at 2K
    steps is the straight one-process run's). Then one worker is killed (SIGKILL; KILLED: worker 1 on TensorFlow,
    the chief on JAX, through its supervising parent): the other exits with code 2 within LOST_WITHIN_S with one
    line naming the killed worker, and no JAX fatal block or stack trace; no process of either worker is left (on
    JAX: both parents and both children, the killed parent's child through PR_SET_PDEATHSIG); the run directory
    holds only whole snapshots once the next start has swept what a killed write left."""
    run = runs.get(backend, "restart")
    killed, text = run["killed"], run["text"]
    assert run["code"] == 2 and run["waited"] < LOST_WITHIN_S, text[-3000:]
    errors = [ln for ln in text.splitlines() if ln.startswith("train.py: error:")]
    assert len(errors) == 1 and f"worker {killed} (127.0.0.1:" in errors[0] and "--resume auto" in errors[0], \
        text[-3000:]
    assert not any(s in text for s in ("Terminating process", "Check failure stack trace", "    @ ")), text[-3000:]
    if backend == "jax":    # each worker: the parent the test started, and the child that trained
        assert [len(pids) for pids in run["children"]] == [1, 1], run["children"]
    assert run["survivors"] == [], f"processes left running: {run['survivors']}"
    run_dir = _only_run(run["outdir"])                          # resumed in the chief's run directory
    sweep_stale_temps(str(run["outdir"]))   # the chief may die in a snapshot write: the next start removes its temp
    assert not [n for n in os.listdir(run_dir) if ".tmp-" in n]
    snapshots = _snapshots(run["outdir"])
    assert all(snap.snapshot_damage(p) is None for p in snapshots)
    assert _step(snapshots[1]) == 2 * K_STEPS
    _assert_same(runs.weights(snapshots[1]), runs.weights(runs.get(backend, "reference")["2K"]))
    # Worker 1's scratch folder is left when it was killed (TensorFlow) and may be when jaxlib aborted it (JAX);
    # the next worker to start removes it (its lock is no longer held).
    assert len(_scratch(run["tmp"])) <= 1
    distributed.sweep_scratch(str(run["tmp"]))
    assert _scratch(run["tmp"]) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_workers_snapshot_resumes_on_one_process(backend, runs):
    """A snapshot holds nothing about the number of workers: the two workers' snapshot at K, resumed on one
    process (--resume FILE, the same global minibatch), reaches the straight run's weights at 2K."""
    last = runs.get(backend, "n_to_1")[-1]
    assert _step(last) == 2 * K_STEPS
    _assert_same(runs.weights(last), runs.weights(runs.get(backend, "reference")["2K"]))


@pytest.mark.parametrize("backend", ONE_TO_N_BACKENDS)
def test_one_process_snapshot_resumes_on_two_workers(backend, runs):
    """And the other way round: the one-process reference's snapshot at K, resumed on two workers (--resume FILE,
    --gpus 1 each), reaches the straight run's weights at 2K; only the chief wrote."""
    run = runs.get(backend, "one_to_n")
    assert _step(run["snapshots"][-1]) == 2 * K_STEPS and run["scratch"] == []
    _assert_same(runs.weights(run["snapshots"][-1]), runs.weights(runs.get(backend, "reference")["2K"]))


@pytest.mark.slow   # ~1 min a backend: two more workers, which CI's budget has no room for
@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_on_one_worker_stops_every_worker_with_a_snapshot(backend, dataset, tmp_path):
    """Ctrl-C in worker 1's terminal (SIGINT to its process group: on JAX its supervising parent and the child):
    the workers agree on the stop, so both stop after the same tick with exit code 0 and the chief writes a last
    snapshot there; worker 1 names the chief's run directory, not its scratch folder; no process is left."""
    outdir, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    ports, launches = _worker_launches(backend, _flags(dataset, str(outdir), 1000), tmp)
    procs = []
    try:
        for i, (args, env) in enumerate(launches):       # each in a session of its own, as from two terminals
            log = open(tmp_path / f"worker{i}.log", "w+")
            procs.append((subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True), log))
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while len(list(outdir.glob("*/network-snapshot-*.keras"))) < 2:     # the start's and tick 1's
            assert time.monotonic() < deadline and all(p.poll() is None for p, _ in procs), "no snapshot at tick 1"
            time.sleep(0.2)
        children = [pid for p, _ in procs for pid in child_pids(p.pid)]
        os.killpg(procs[1][0].pid, signal.SIGINT)
        for p, _ in procs:
            p.wait(timeout=RUN_TIMEOUT_S)
    finally:
        results = _finish(procs, 1)
    for code, text in results:
        assert code == 0 and "Training stopped (interrupt)" in text, text[-3000:]
    ticks = [[int(line.split()[1]) for line in text.splitlines() if line.startswith("tick ")] for _, text in results]
    run_dir = _only_run(outdir)
    last_row = json.loads(open(run_dir / "stats.jsonl").readlines()[-1])
    assert ticks[0] and ticks[0][-1] == ticks[1][-1] == last_row["tick"]
    last = _snapshots(outdir)[-1]
    assert _step(last) == ticks[0][-1] * K_STEPS
    worker1 = results[1][1]
    assert f"Run directory: {run_dir} on worker 0 (127.0.0.1:{ports[0]})" in worker1, worker1[-3000:]
    assert f"Done: {run_dir} " in worker1, worker1[-3000:]
    assert all(process_gone(pid, within=10) for pid in children) and _scratch(tmp) == []


def test_a_stale_scratch_folder_is_swept_and_a_live_one_kept(tmp_path):
    """`sweep_scratch` removes a scratch folder whose lock nobody holds (its worker was killed) and keeps one whose
    worker still runs (here: this process holds its lock)."""
    from stylegan_tf.training.rundir import RunDirLock
    stale, live = tmp_path / "stylegan_tf-worker1-abc", tmp_path / "stylegan_tf-worker2-def"
    for d in (stale, live):
        d.mkdir()
        (d / "fakes000000.png").write_bytes(b"x")
    RunDirLock(str(stale)).acquire().release()
    lock = RunDirLock(str(live)).acquire()
    try:
        assert distributed.sweep_scratch(str(tmp_path)) == [str(stale)]
        assert not stale.exists() and live.exists()
    finally:
        lock.release()


def test_cluster_description_from_the_environment():
    """TF_CONFIG (a chief job counts as worker 0) and Keras' variables on JAX; one worker is a one-process run;
    what cannot be used is one line naming the variable (ClusterError, a ValueError: train.py prints it as
    `train.py: error: ...`)."""
    workers = {"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}, "task": {"type": "worker", "index": 1}}
    c = distributed.Cluster.from_env({"TF_CONFIG": json.dumps(workers)})
    assert (c.num_workers, c.index, c.is_chief, c.name(0)) == (2, 1, False, "worker 0 (10.0.0.1:2222)")
    chief = {"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker", "index": 0}}
    assert distributed.Cluster.from_env({"TF_CONFIG": json.dumps(chief)}).index == 1
    alone = {"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}
    assert distributed.Cluster.from_env({"TF_CONFIG": json.dumps(alone)}) is None
    assert distributed.Cluster.from_env({}) is None
    keras_env = {"KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234", "KERAS_DISTRIBUTION_NUM_PROCESSES": "4",
                 "KERAS_DISTRIBUTION_PROCESS_ID": "3"}
    c = distributed.Cluster.from_env(keras_env, backend="jax")
    assert (c.num_workers, c.index, c.name(3)) == (4, 3, "worker 3")
    assert distributed.Cluster.from_env(keras_env, backend="tensorflow") is None
    for bad, needle in [("{not json", "TF_CONFIG is not a cluster description"),
                        (json.dumps(dict(workers, task={"type": "ps", "index": 0})), "task type 'ps'"),
                        (json.dumps(dict(workers, task={"type": "worker", "index": 2})), "task index 2"),
                        (json.dumps({"cluster": {"worker": ["a", "b"]}, "task": {"index": 0}}), "host:port")]:
        with pytest.raises(ClusterError, match=needle) as e:
            distributed.Cluster.from_env({"TF_CONFIG": bad})
        assert "\n" not in str(e.value)


def test_each_worker_reads_its_share_of_the_global_batch(dataset):
    """BatchStream(shard=(i, W)): batch k of worker i is rows [i·B/W, (i+1)·B/W) of one process's batch k, flips
    and labels included, on tf.data and numpy alike; a batch that does not split is refused."""
    from stylegan_tf.data import open_dataset
    from stylegan_tf.data.batches import BatchStream
    info = open_dataset(dataset)
    kw = dict(batch_size=6, mirror=True, seed=3)
    whole = BatchStream(info, 8, **kw)
    shares = [BatchStream(info, 8, shard=(i, 2), **kw) for i in range(2)]
    for k in (0, 7, 9):          # 48 images: batch 8 starts the second epoch
        images, labels = whole.batch(k)
        parts = [s.batch(k) for s in shares]
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), images)
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), labels)
    first = next(iter(info.make_tf_dataset(8, shard=(1, 2), start=7, **kw)))[0].numpy()
    np.testing.assert_array_equal(first, whole.batch(7)[0][3:])
    with pytest.raises(ValueError, match="shard 0 of 4: the batch of 6 must split into 4 equal shares"):
        BatchStream(info, 8, shard=(0, 4), **kw)
