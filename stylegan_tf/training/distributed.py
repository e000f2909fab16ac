"""Training on several machines: the cluster a worker belongs to, the backends' own multi-host runtimes, one writer,
and the checks that make N workers train what one process would.

A worker learns its cluster from the standard `TF_CONFIG` environment variable, on both backends
(`{"cluster": {"worker": ["host0:port", "host1:port", ...]}, "task": {"type": "worker", "index": i}}`; a
`"chief"` job counts as worker 0). On Keras' JAX backend, Keras' own variables
(`KERAS_DISTRIBUTION_JOB_ADDRESSES`, `KERAS_DISTRIBUTION_NUM_PROCESSES`, `KERAS_DISTRIBUTION_PROCESS_ID`) work
too. One worker (or none) is a one-process run, exactly as before. The description is read by
`stylegan_tf.cluster` (`Cluster`, re-exported here), which imports nothing heavy.

- TensorFlow: `tf.distribute.MultiWorkerMirroredStrategy` over the cluster (`ClusterStrategy`: two of Keras 3's
  reductions under it are fixed here); each worker's `--gpus` devices are its replicas.
- JAX: `jax.distributed.initialize` (the coordinator is worker 0's address; CPU collectives through gloo) and
  `keras.distribution.DataParallel` over every process's `--gpus` devices.
- Worker 0 is the chief and the one writer. The others run the same steps into a private scratch folder that is
  removed when they stop (what they write is only what a collective makes every worker compute).
- At start the workers compare their options and dataset (`check_same`) and, once the networks are loaded,
  their start state: a worker that differs stops them all with one line naming it.
- Decisions taken between steps (stop, time-based snapshot) are agreed (`agree`), so every worker takes them.
- A worker that is lost stops the others (`lost_worker`): one line naming it; `end_process` ends a TensorFlow
  worker's process, whose collective runtime does not shut down (and a JAX one that lost a peer). A killed
  worker's scratch folder is removed by the next worker to start (`sweep_scratch`). On JAX, where jaxlib aborts
  a worker whose coordination service is gone, train.py runs each worker under a supervising parent that turns
  that abort into the same line (`stylegan_tf.supervise`).
"""
import hashlib
import json
import os
import re
import shutil
import tempfile

import numpy as np

# The cluster description is read without numpy or Keras (train.py's supervising parent reads it too).
from stylegan_tf.cluster import KERAS_ENV, Cluster, ClusterError, lost_message  # noqa: F401 - re-exported
from stylegan_tf.training.options import OptionsError

# JAX's coordination service declares a process dead after this long without its heartbeat, and stops the others.
HEARTBEAT_TIMEOUT_S = 60
# How long the workers wait for each other at start-up (the slowest one's imports and dataset check).
INIT_TIMEOUT_S = 300


class WorkerLost(RuntimeError):
    """Another worker of the cluster is gone; the message is one line naming it."""


# ---------------------------------------------------------------------------------------------- the runtimes
_jax_connected = []


def connect_jax(cluster):
    """`jax.distributed.initialize` for `cluster` (once per process, before JAX computes anything), with gloo's
    collectives between CPU processes."""
    import jax
    if _jax_connected:
        if _jax_connected[0] != cluster:
            raise OptionsError("this process already belongs to another JAX cluster: start a new process")
        return
    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=cluster.addresses[0], num_processes=cluster.num_workers,
                                   process_id=cluster.index, initialization_timeout=INIT_TIMEOUT_S,
                                   heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S)
    except RuntimeError as e:
        raise OptionsError(f"{cluster.source}: JAX cannot join the cluster ({_first_line(e)}); start the worker in a "
                           "fresh process") from None
    _jax_connected.append(cluster)


def jax_devices(cluster, gpus):
    """The first `gpus` devices of every process, process by process: the DataParallel mesh, whose batch rows are
    then each process's share in process order."""
    import jax
    per_process = {}
    for d in jax.devices():
        per_process.setdefault(d.process_index, []).append(d)
    short = [p for p, ds in per_process.items() if len(ds) < gpus]
    if short or len(per_process) != cluster.num_workers:
        raise OptionsError(f"--gpus {gpus}: {cluster.name(short[0] if short else 0)} has "
                           f"{len(per_process.get(short[0] if short else 0, []))} JAX device(s); lower --gpus")
    return [d for p in sorted(per_process) for d in per_process[p][:gpus]]


_tf_strategies = {}


def tf_strategy(cluster, gpus):
    """A `ClusterStrategy` (MultiWorkerMirroredStrategy) over `cluster`, each worker's first `gpus` GPUs its
    replicas (its CPU without GPUs); one per process: TensorFlow's collectives are set up once."""
    import tensorflow as tf
    if cluster in _tf_strategies:
        return _tf_strategies[cluster]
    if _tf_strategies:
        raise OptionsError("this process already belongs to another TensorFlow cluster: start a new process")
    found = tf.config.list_physical_devices("GPU")
    if gpus > max(len(found), 1):
        raise OptionsError(f"--gpus {gpus}: {cluster.name(cluster.index)} has {len(found)} GPU(s); lower --gpus "
                           "(it counts the devices of each worker)")
    try:
        if found:
            tf.config.set_visible_devices(found[:gpus], "GPU")
        resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec({"worker": list(cluster.addresses)}), task_type="worker", task_id=cluster.index,
            rpc_layer="grpc")
        strategy = _strategy_class()(cluster_resolver=resolver)
    except (RuntimeError, ValueError) as e:
        raise OptionsError(f"{cluster.source}: cannot start the multi-worker strategy ({_first_line(e)}); the "
                           "cluster must be set up before TensorFlow runs anything: start a fresh process") from None
    _tf_strategies[cluster] = strategy
    return strategy


def _strategy_class():
    import tensorflow as tf

    class ClusterStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        """MultiWorkerMirroredStrategy with the two reductions Keras 3's `fit` asks of it made to work. `fit`'s
        symbolic build reduces its first batch, a structure, to learn the shapes (keras #20585): it gets this
        worker's first replica's batch (a cross-worker reduce of it fails, and of its int64 steps and empty label
        arrays crashes the collective). A scalar log reduced "along axis 0" (tensorflow #72388: "Invalid reduction
        dimension 0") is reduced over the replicas alone, which is what a scalar's mean means."""

        def reduce(self, reduce_op, value, axis):
            flat = tf.nest.flatten(value)
            if len(flat) != 1 or flat[0] is not value:
                return tf.nest.map_structure(lambda v: self.experimental_local_results(v)[0], value)
            if axis is not None and all(getattr(v, "shape", None) is not None and v.shape.rank == 0
                                        for v in self.experimental_local_results(value)):
                axis = None
            return super().reduce(reduce_op, value, axis)

    return ClusterStrategy


# ---------------------------------------------------------------------------------------------- collectives
def _allgather(strategy, vector):
    """[num_workers, n] float32: every worker's `vector` (n floats, the same n everywhere), through the backend's
    collectives: an all-reduce sum in which each worker fills its own row."""
    import keras
    vector = np.asarray(vector, np.float32).ravel()
    if keras.backend.backend() == "jax":
        from jax.experimental import multihost_utils
        return np.asarray(multihost_utils.process_allgather(vector)).reshape(-1, vector.size)
    import tensorflow as tf
    resolver = strategy.cluster_resolver
    workers, index = len(resolver.cluster_spec().as_dict()["worker"]), resolver.task_id
    rows = np.zeros([workers, vector.size], np.float32)
    rows[index] = vector
    local = len(strategy.extended.worker_devices)
    # One copy per worker: the first of its local replicas brings the rows, the others zeros.
    values = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(rows if ctx.replica_id_in_sync_group % local == 0 else np.zeros_like(rows)))
    return np.asarray(strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None)).reshape(workers, -1)


class Collectives:
    """The few cross-worker exchanges the loop needs, between steps: compare, broadcast a text, agree."""

    def __init__(self, cluster, strategy):
        self.cluster = cluster
        self._strategy = strategy

    def gather_digests(self, text):
        """Every worker's 8-byte digest of its `text`, as rows of byte values."""
        digest = np.frombuffer(hashlib.sha256(text.encode()).digest()[:8], np.uint8)
        return _allgather(self._strategy, digest.astype(np.float32)).astype(np.uint8)

    def check_same(self, what, text, advice):
        """Stop every worker (OptionsError, one line) when any worker's `text` differs from the chief's."""
        rows = self.gather_digests(text)
        differ = [i for i in range(len(rows)) if not np.array_equal(rows[i], rows[0])]
        if differ:
            names = ", ".join(self.cluster.name(i) for i in differ)
            raise OptionsError(f"{names}: {what} differ from the chief's ({self.cluster.name(0)}): {advice}")

    def broadcast_text(self, text):
        """The chief's `text` on every worker (the others' is ignored)."""
        data = np.frombuffer(text.encode(), np.uint8) if self.cluster.is_chief else np.zeros(0, np.uint8)
        size = int(_allgather(self._strategy, [data.size])[0, 0])
        padded = np.zeros(size, np.float32)
        padded[:data.size] = data
        return bytes(_allgather(self._strategy, padded)[0].astype(np.uint8)).decode()

    def agree(self, code):
        """The largest of every worker's integer `code` (a decision: 0 = nothing, higher = stronger)."""
        return int(_allgather(self._strategy, [code]).max())


def run_identity(opts, plan):
    """What must be equal on every worker, as text: every option but where things are written, and the dataset
    by what it holds (its folder may sit at another path on each machine): name, counts, shapes, level sizes."""
    options = {k: v for k, v in opts.to_dict().items() if k not in ("data", "outdir", "progress")}
    info = plan.info
    dataset = dict(name=info.name, images=info.num_images, resolution=plan.resolution, channels=info.num_channels,
                   labels=info.label_size, class_=getattr(info, "class_name", None),
                   levels={str(r): os.path.getsize(p) for r, p in sorted(info.levels.items())})
    return json.dumps({"options": options, "dataset": dataset}, sort_keys=True, default=str)


def state_digest(model, loop):
    """A text that is equal on two workers exactly when their model (every weight and optimizer variable) and loop
    state are: compared at start, so that N workers begin where one process would."""
    h = hashlib.sha256(json.dumps(loop, sort_keys=True).encode())
    for v in list(model.variables) + [v for opt in (model.g_optimizer, model.d_optimizer) for v in opt.variables]:
        h.update(np.ascontiguousarray(np.asarray(v.numpy() if hasattr(v, "numpy") else v)).tobytes())
    return h.hexdigest()


SCRATCH_PREFIX = "stylegan_tf-worker"
# A scratch folder without a lock file is one being made, or left by a worker killed as it started: swept when older.
UNLOCKED_SCRATCH_AGE_S = 3600


def scratch_dir(cluster):
    """Where a worker other than the chief writes (removed by `remove_scratch` when it stops). The folders that
    killed workers left behind are removed first (`sweep_scratch`)."""
    sweep_scratch()
    return tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{cluster.index}-")


def sweep_scratch(temp_dir=None):
    """Remove the scratch folders (of any worker index) under `temp_dir` (the system's temp folder) whose worker
    is gone: their `train.lock` is not held (the kernel drops the lock of a process that dies, SIGKILL included).
    A live worker's folder, its lock held, is never touched. Returns the removed paths."""
    import fcntl
    import time

    from stylegan_tf.training.rundir import LOCK_FILE
    temp_dir = temp_dir or tempfile.gettempdir()
    try:
        names = sorted(n for n in os.listdir(temp_dir) if re.fullmatch(re.escape(SCRATCH_PREFIX) + r"\d+-\w+", n))
    except OSError:
        return []
    removed = []
    for name in names:
        path = os.path.join(temp_dir, name)
        try:
            fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDONLY)
        except FileNotFoundError:
            try:
                stale = time.time() - os.path.getmtime(path) > UNLOCKED_SCRATCH_AGE_S
            except OSError:
                continue
            if stale:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
            continue
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue            # held: a live worker's (or a filesystem without flock: leave it)
        else:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        finally:
            os.close(fd)
    return removed


def remove_scratch(path):
    shutil.rmtree(path, ignore_errors=True)


_lost = []


def lost_worker(cluster, error):
    """The `WorkerLost` that `error` (a collective that failed because a peer is gone) means, or None when it is
    not such an error. The worker is named by the error (TensorFlow names the task), by the coordination service's
    list of live processes (JAX), or as the only other one of two."""
    names = {"UnavailableError", "AbortedError", "CancelledError", "DeadlineExceededError", "InternalError"}
    text = str(error)
    if type(error).__name__ not in names and not re.search(r"Gloo|gloo|peer|heartbeat", text):
        return None
    gone = sorted({int(t) for t in re.findall(r"/job:worker/(?:replica:\d+/)?task:(\d+)", text)} - {cluster.index})
    if not gone and _jax_connected:
        gone = _jax_gone(cluster)
    if not gone and cluster.num_workers == 2:
        gone = [1 - cluster.index]
    who = ", ".join(cluster.name(t) for t in gone) if gone else "another worker"
    _lost.append(who)
    return WorkerLost(lost_message(who, _reason(text)))


def _jax_gone(cluster, timeout=5.0):
    """The workers JAX's coordination service no longer counts as alive ([] when it cannot tell within `timeout`
    seconds: the service ran on the chief, which may be the one gone)."""
    import threading

    from jax._src import distributed as jax_distributed
    client, found = jax_distributed.global_state.client, []
    if client is None:
        return []

    def ask():
        try:
            found.append(set(client.get_live_nodes(list(range(cluster.num_workers)))))
        except Exception:       # the service is gone too: no answer, and the caller names the worker otherwise
            return

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout)
    return sorted(set(range(cluster.num_workers)) - found[0] - {cluster.index}) if found else []


def _reason(text):
    """What the failed collective says about the lost worker, in a few words."""
    if re.search(r"stopped sending heartbeats|heartbeat timeout", text):
        return "it stopped sending heartbeats"
    if re.search(r"Connection reset|Connection closed|Socket closed|connection refused|Connection refused", text):
        return "its connection was closed"
    return re.sub(r"\s+", " ", re.sub(r"\{\{[^}]*\}\}", "", _first_line(text))).strip()[:160]


def end_process(code):
    """`code`, for a process that never joined a cluster of TensorFlow (or lost a JAX peer); else the process ends
    here with `code`.

    TensorFlow's collective runtime does not shut down: a worker of MultiWorkerMirroredStrategy hangs in the
    interpreter's final garbage collection, waiting for peers that are done (or gone). A JAX process whose peer is
    gone would wait at JAX's shutdown barrier for the peer's heartbeat timeout, then abort with a stack trace.
    train.py ends through this; a script of your own that trains on several workers ends with `os._exit`
    likewise."""
    if not _tf_strategies and not (_jax_connected and _lost):
        return code
    import sys
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _first_line(error):
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    return lines[0] if lines else type(error).__name__
