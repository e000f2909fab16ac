"""Multi-worker training (training/distributed.py, docs/distributed.md): two worker processes on 127.0.0.1, CPU,
a tiny network, on each backend. Every process is started by `train.py` with one extra environment variable
(TF_CONFIG), as on real machines, and stopped by the test.

The reference is one process with the same global batch over the same two devices (`--gpus 2`: MirroredStrategy
over two logical CPUs, DataParallel over two XLA CPU devices), so that the replicas, their draws and the
gradient sums are laid out as the two workers lay them out."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, TINY_NET, free_port, xla_flags
from stylegan_tf.training import distributed
from stylegan_tf.training import snapshot as snap
from stylegan_tf.training.options import OptionsError

K_STEPS = 4          # one tick: minibatch 4, --tick-kimg 0.016
RUN_TIMEOUT_S = 600  # one run: under a minute on an idle 2-core machine, minutes on a loaded one
LOST_WITHIN_S = 90   # a killed worker's peer must have stopped by then (TensorFlow: ~10 s, JAX: at once)
# JAX is marked slow: each JAX worker compiles the training step for the two-process mesh (XLA on the CPU), which
# makes the JAX tests cost twice the TensorFlow ones' CPU time; docs/distributed.md ("Tests") has the numbers.
BACKENDS = ["tensorflow", pytest.param("jax", marks=pytest.mark.slow)]
JAX_CACHE = None     # set by the `runs` fixture

# Logical CPU devices for the one-process reference on TensorFlow (set before TensorFlow starts).
TF_TWO_CPUS = ("import sys, tensorflow as tf; cpu = tf.config.list_physical_devices('CPU')[0]; "
               "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2); "
               "sys.path.insert(0, sys.argv[1]); import train; sys.exit(train.main(sys.argv[2:]))")


@pytest.fixture(scope="module")
def dataset(demo_dataset):
    return demo_dataset(resolution=16, count=48)


def _flags(dataset, outdir, steps, **extra):
    # The fakes grid only at the start, and small: on JAX every process draws it op by op over the cluster's mesh.
    opts = dict(data=dataset, outdir=outdir, minibatch=4, lrate=0.002, tick_kimg=0.016, snap_ticks=1, seed=5,
                resolution=8, lod_initial_resolution=8, total_kimg=0.004 * steps, image_snap_ticks=1000, grid="2x2",
                **TINY_NET, **extra)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in opts.items()]
    return flags + ["--mirror", "--no-progress"]


def _env(backend, tmp, devices=1):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu",
               PYTHONPATH=str(REPO), TMPDIR=str(tmp))
    env.pop("TF_CONFIG", None)
    if backend == "jax":
        # One compilation cache for the module's JAX processes: a restart (or the one-process resume) loads the
        # steps that the first run of its kind compiled, instead of compiling them again.
        env.update(JAX_COMPILATION_CACHE_DIR=str(JAX_CACHE), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    if devices > 1:
        env["XLA_FLAGS"] = xla_flags(devices)
    return env


def _tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def _start_workers(backend, flags, tmp):
    """Two `train.py` processes of one cluster; each one's output in a file beside it."""
    ports = [free_port(), free_port()]
    procs = []
    for i in range(2):
        env = dict(_env(backend, tmp), TF_CONFIG=_tf_config(ports, i))
        log = open(tmp / f"worker{i}-{time.monotonic_ns()}.log", "w+")
        procs.append((subprocess.Popen([sys.executable, str(REPO / "train.py"), *flags], env=env, cwd=REPO,
                                       stdout=log, stderr=subprocess.STDOUT), log))
    return procs


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


def _run_workers(backend, flags, tmp):
    results = _finish(_start_workers(backend, flags, tmp), RUN_TIMEOUT_S)
    for code, text in results:
        assert code == 0, text[-3000:]
    return results


def _one_process_args(backend, flags):
    """One process over two devices (--gpus 2), laid out as the two workers' replicas."""
    if backend == "tensorflow":
        return [sys.executable, "-c", TF_TWO_CPUS, str(REPO), *flags, "--gpus=2"]
    return [sys.executable, str(REPO / "train.py"), *flags, "--gpus=2"]


def _one_process(backend, flags, tmp):
    proc = subprocess.run(_one_process_args(backend, flags), env=_env(backend, tmp, devices=2), cwd=REPO,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]


def _weights(path):
    model = snap.load_snapshot(str(path))
    arrays = [w.numpy() for net in (model.G, model.D, model.Gs) for w in net.weights]
    return arrays + [v.numpy() for opt in (model.g_optimizer, model.d_optimizer) for v in opt.variables]


def _step(path):
    return snap.load_snapshot(str(path)).training_state["loop"]["step"]


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if x.size:      # to 1e-5 of the tensor's magnitude (floored for tensors that are ~0)
            assert float(np.max(np.abs(x - y))) <= 1e-5 * max(float(np.max(np.abs(y))), 1e-3)


def _only_run(outdir):
    runs = sorted(os.listdir(outdir))
    assert len(runs) == 1, runs
    return outdir / runs[0]


def _scratch(tmp):
    return [n for n in os.listdir(tmp) if n.startswith(distributed.SCRATCH_PREFIX)]


class Runs:
    """The runs the tests share, each made once per backend on first use: the one-process reference (2K steps,
    snapshots at K and 2K) and two workers' first K steps. The reference starts beside the workers (three processes
    on two cores waste less of them than two while the workers start up or wait for each other)."""

    def __init__(self, dataset, factory):
        self.dataset, self.factory, self._made, self._started = dataset, factory, {}, {}

    def _once(self, key, make):
        if key not in self._made:
            self._made[key] = make()
        return self._made[key]

    def _start_reference(self, backend):
        if backend not in self._started:
            base = self.factory.mktemp(f"reference-{backend}")
            log = open(base / "output.txt", "w+")
            proc = subprocess.Popen(_one_process_args(backend, _flags(self.dataset, str(base / "out"), 2 * K_STEPS)),
                                    env=_env(backend, base, devices=2), cwd=REPO, stdout=log,
                                    stderr=subprocess.STDOUT)
            self._started[backend] = (base, proc, log)
        return self._started[backend]

    def reference(self, backend):
        """{"K": weights, "2K": weights} of one process (--gpus 2) trained straight to 2K steps."""
        def make():
            base, proc, log = self._start_reference(backend)
            [(code, text)] = _finish([(proc, log)], RUN_TIMEOUT_S)
            assert code == 0, text[-3000:]
            paths = [p for _, p in snap.list_snapshots(str(_only_run(base / "out")))]
            assert len(paths) == 2                                  # at K and at 2K steps
            return {"K": _weights(paths[0]), "2K": _weights(paths[1])}
        return self._once(("reference", backend), make)

    def workers(self, backend):
        """Two workers' first K steps: their --outdir, its run directory's listing and stats rows, what was left
        in their temp folder, and the snapshot."""
        def make():
            self._start_reference(backend)
            base = self.factory.mktemp(f"workers-{backend}")
            tmp = base / "tmp"
            tmp.mkdir()
            _run_workers(backend, _flags(self.dataset, str(base / "out"), K_STEPS), tmp)
            run_dir = _only_run(base / "out")
            return dict(outdir=base / "out", run_dir=run_dir, snapshots=snap.list_snapshots(str(run_dir)),
                        ticks=[json.loads(line)["tick"] for line in open(run_dir / "stats.jsonl")],
                        scratch=_scratch(tmp))
        return self._once(("workers", backend), make)

    def stop(self):
        for _, proc, log in self._started.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()


@pytest.fixture(scope="module")
def runs(dataset, tmp_path_factory):
    global JAX_CACHE
    JAX_CACHE = tmp_path_factory.mktemp("jax-cache")
    made = Runs(dataset, tmp_path_factory)
    yield made
    made.stop()


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_workers_train_as_one_process(backend, runs):
    """K steps on two workers give the weights and Adam states of one process over the same two devices; only the
    chief wrote: one run directory, one stats row per tick, the other worker's scratch folder gone."""
    first = runs.workers(backend)
    assert len(first["snapshots"]) == 1 and first["ticks"] == [1] and first["scratch"] == []
    _assert_same(_weights(first["snapshots"][0][1]), runs.reference(backend)["K"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_worker_stops_the_other_with_one_line_and_a_restart_resumes(backend, runs, tmp_path):
    """Both workers restarted with `--resume auto` on the two-worker run continue it exactly (their snapshot at 2K
    steps is the straight one-process run's). Then one worker is killed (SIGKILL): the chief exits non-zero within
    LOST_WITHIN_S with one line naming it, and the run directory holds only whole snapshots. The killed worker's
    scratch folder is left behind, and swept by the next worker to start."""
    outdir = tmp_path / "out"
    shutil.copytree(runs.workers(backend)["outdir"], outdir)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    procs = _start_workers(backend, _flags(runs.dataset, str(outdir), 1000, resume="auto"), tmp)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while time.monotonic() < deadline and len(list(outdir.glob("*/network-snapshot-*.keras"))) < 2:
            assert all(p.poll() is None for p, _ in procs), [log.name for _, log in procs]
            time.sleep(0.2)
        procs[1][0].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        procs[0][0].wait(timeout=LOST_WITHIN_S)
        waited = time.monotonic() - killed
    finally:
        (code, text), _ = _finish(procs, 1)
    assert code == 2 and waited < LOST_WITHIN_S, text[-3000:]
    errors = [ln for ln in text.splitlines() if ln.startswith("train.py: error:")]
    assert len(errors) == 1 and "worker 1 (127.0.0.1:" in errors[0] and "--resume auto" in errors[0], text[-3000:]
    run_dir = _only_run(outdir)                                 # resumed in the chief's run directory
    assert not [n for n in os.listdir(run_dir) if ".tmp-" in n]
    snapshots = [p for _, p in snap.list_snapshots(str(run_dir))]
    assert all(snap.snapshot_damage(p) is None for p in snapshots)
    assert _step(snapshots[1]) == 2 * K_STEPS
    _assert_same(_weights(snapshots[1]), runs.reference(backend)["2K"])
    # SIGKILL left worker 1's scratch folder; the next worker to start removes it (its lock is no longer held).
    assert len(_scratch(tmp)) == 1
    assert distributed.sweep_scratch(str(tmp)) and _scratch(tmp) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_workers_snapshot_resumes_on_one_process(backend, runs, tmp_path):
    """A snapshot holds nothing about the number of workers: the two workers' snapshot at K, resumed on one
    process (--resume FILE, the same global minibatch), reaches the straight run's weights at 2K."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    resume = runs.workers(backend)["snapshots"][0][1]
    _one_process(backend, _flags(runs.dataset, str(tmp_path / "out"), 2 * K_STEPS, resume=resume), tmp)
    last = snap.list_snapshots(str(_only_run(tmp_path / "out")))[-1][1]
    assert _step(last) == 2 * K_STEPS
    _assert_same(_weights(last), runs.reference(backend)["2K"])


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
    what cannot be used is one line naming the variable."""
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
        with pytest.raises(OptionsError, match=needle) as e:
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
