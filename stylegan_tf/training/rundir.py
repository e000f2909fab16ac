"""The run directories as shared resources: one training process at a time in each (a file lock), the temp
files of killed snapshot writes, and the stats rows a resumed run trains again."""
import datetime
import json
import os
import re
import socket

from stylegan_tf.atomic import atomic_path, remove_stale_temps
from stylegan_tf.training.options import OptionsError

LOCK_FILE = "train.lock"
STATS_FILE = "stats.jsonl"


class RunDirInUse(OptionsError):
    """Another live process trains into this run directory."""


class RunDirLock:
    """An exclusive `flock` on <run_dir>/train.lock for as long as this process trains there. The kernel drops
    it when the process dies however it dies, so there is never a stale lock to remove by hand; the file's
    text (pid, host, start time) is only for the message the next process prints."""

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.path = os.path.join(run_dir, LOCK_FILE)
        self._fd = None

    def acquire(self):
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "a process that is starting"
            os.close(fd)
            raise RunDirInUse(f"{self.run_dir} is in use by another training run ({holder}): wait for it to "
                              "finish or stop it (abort.txt or Ctrl-C), or train into another --outdir") from None
        except OSError:
            # A filesystem without flock (some network mounts): train unlocked rather than not at all.
            os.close(fd)
            return self
        started = datetime.datetime.now().isoformat(timespec="seconds")
        text = f"pid {os.getpid()} on {socket.gethostname()} since {started}\n".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, text, 0)
        self._fd = fd
        return self

    def release(self):
        if self._fd is not None:
            import fcntl
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def sweep_stale_temps(outdir):
    """Delete the temp files that killed snapshot writes left in the run directories under `outdir` (only our
    temps, only those whose process is gone: a live run's temp is never touched). Returns their paths."""
    try:
        names = sorted(os.listdir(outdir))
    except OSError:
        return []
    removed = []
    for name in names:
        path = os.path.join(outdir, name)
        if re.match(r"^\d+-", name) and os.path.isdir(path):
            removed += remove_stale_temps(path)
    return removed


def continue_stats(run_dir, tick):
    """Before a run continues in `run_dir` from a snapshot taken at `tick`: drop the stats.jsonl rows of later
    ticks, which the resumed run trains again, so the file continues without repeating a tick. Returns the
    number of rows dropped."""
    path = os.path.join(run_dir, STATS_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return 0
    keep = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:        # a row cut short by a kill: the tick it belonged to is trained again
            continue
        if isinstance(row, dict) and isinstance(row.get("tick"), int) and row["tick"] <= tick:
            keep.append(line)
    dropped = len(lines) - len(keep)
    if dropped:
        with atomic_path(path) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in keep))
    return dropped
