"""The cluster a training process belongs to, and its Keras backend, read from the environment alone.

This module imports only the standard library (no numpy, Keras, JAX or TensorFlow): train.py's supervising parent
(`stylegan_tf.supervise`) reads it before anything heavy is loaded. `stylegan_tf.training.distributed`, which runs
the cluster, re-exports `Cluster`.

A worker learns its cluster from the standard `TF_CONFIG` environment variable, on both backends
(`{"cluster": {"worker": ["host0:port", "host1:port", ...]}, "task": {"type": "worker", "index": i}}`; a
`"chief"` job counts as worker 0). On Keras' JAX backend, Keras' own variables
(`KERAS_DISTRIBUTION_JOB_ADDRESSES`, `KERAS_DISTRIBUTION_NUM_PROCESSES`, `KERAS_DISTRIBUTION_PROCESS_ID`) work
too. One worker (or none) is a one-process run.
"""
import dataclasses
import json
import os
import re

KERAS_ENV = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES", "KERAS_DISTRIBUTION_PROCESS_ID")


class ClusterError(ValueError):
    """The environment's cluster description cannot be used; the message is one line naming the variable."""


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The workers of a multi-worker run and this process's place in it.

    Attributes:
        addresses: `host:port` of every worker, the chief (worker 0) first; on JAX only the first is used (the
            coordinator), and with Keras' variables only it may be known.
        num_workers: how many workers train together.
        index: this worker's index; 0 is the chief.
        source: where the description came from (`TF_CONFIG`, or Keras' variables), for messages.

    Example:
        >>> Cluster.from_env({"TF_CONFIG": '{"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}, '
        ...                                '"task": {"type": "worker", "index": 1}}'}).is_chief
        False
    """
    addresses: tuple
    num_workers: int
    index: int
    source: str = "TF_CONFIG"

    @property
    def is_chief(self):
        return self.index == 0

    def name(self, i):
        """How messages name worker `i`: its index and, when known, its address."""
        return f"worker {i} ({self.addresses[i]})" if i < len(self.addresses) else f"worker {i}"

    @classmethod
    def from_env(cls, environ=None, backend="tensorflow"):
        """The cluster the environment describes; None for a one-worker run. ClusterError (one line) for a
        description that cannot be used."""
        environ = os.environ if environ is None else environ
        if environ.get("TF_CONFIG"):
            return _from_tf_config(environ["TF_CONFIG"])
        if backend == "jax" and any(environ.get(k) for k in KERAS_ENV):
            return _from_keras_env(environ)
        return None


def _from_tf_config(text):
    try:
        config = json.loads(text)
        cluster, task = config.get("cluster") or {}, config.get("task") or {}
        chief, workers = list(cluster.get("chief") or []), list(cluster.get("worker") or [])
        kind, index = task.get("type", "worker"), int(task.get("index", 0))
    except (ValueError, TypeError, AttributeError) as e:
        raise ClusterError(f"TF_CONFIG is not a cluster description ({e}): give "
                           '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}') \
            from None
    addresses = tuple(str(a) for a in chief + workers)
    if kind not in ("worker", "chief") or (kind == "chief" and not chief):
        raise ClusterError(f"TF_CONFIG: task type {kind!r}: training runs workers only (type 'worker', or 'chief' "
                           "when the cluster has a chief job)")
    index = index if kind == "chief" else index + len(chief)
    if not addresses or not 0 <= index < len(addresses):
        raise ClusterError(f"TF_CONFIG: task index {task.get('index')} is not one of the cluster's "
                           f"{len(workers)} workers")
    if len(addresses) == 1:
        return None
    if any(not re.fullmatch(r"\S+:\d+", a) for a in addresses):
        raise ClusterError(f"TF_CONFIG: every worker needs a host:port address, got {list(addresses)}")
    return Cluster(addresses=addresses, num_workers=len(addresses), index=index)


def _from_keras_env(environ):
    names = ", ".join(KERAS_ENV)
    try:
        addresses = tuple(a.strip() for a in environ.get(KERAS_ENV[0], "").split(",") if a.strip())
        count = int(environ.get(KERAS_ENV[1]) or len(addresses))
        index = int(environ[KERAS_ENV[2]])
    except (KeyError, ValueError):
        raise ClusterError(f"{names}: give the coordinator's host:port (or every worker's, comma-separated), the "
                           "number of processes and this process's id (0 = the chief)") from None
    if not addresses or not 0 <= index < count or (len(addresses) > 1 and len(addresses) != count):
        raise ClusterError(f"{names}: {len(addresses)} address(es), {count} process(es) and process id {index} do "
                           "not fit together (ids run from 0 to the number of processes - 1)")
    return None if count == 1 else Cluster(addresses, count, index, source="KERAS_DISTRIBUTION_*")


def keras_backend(environ=None):
    """The backend Keras will pick, found as Keras finds it but without importing it: `KERAS_BACKEND` when set
    and not empty, else the `"backend"` of `keras.json` in `KERAS_HOME` (default `~/.keras`, or `/tmp/.keras`
    when the home folder is not writable), else TensorFlow."""
    environ = os.environ if environ is None else environ
    if environ.get("KERAS_BACKEND"):
        return environ["KERAS_BACKEND"]
    if "KERAS_HOME" in environ:
        folder = environ["KERAS_HOME"]
    else:
        home = os.path.expanduser("~")
        folder = os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    try:
        with open(os.path.expanduser(os.path.join(folder, "keras.json")), encoding="utf-8") as f:
            backend = json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"
    return backend if isinstance(backend, str) and backend else "tensorflow"


def lost_message(who, reason):
    """The one line (without `train.py: error: `) that stops a worker whose peer `who` is gone for `reason`."""
    return (f"training stopped: {who} is gone ({reason}); the last snapshot is complete: restart every worker with "
            "--resume auto to continue from it")
