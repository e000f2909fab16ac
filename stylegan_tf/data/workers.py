"""Process pools for decoding/drawing images, without TensorFlow in the workers."""
import contextlib
import multiprocessing
import os
import sys
import warnings


def default_workers():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def _hide_main_module():
    # spawn/forkserver children re-import the parent's __main__ (e.g. train.py, which imports TensorFlow)
    # unless it looks like an interactive session. Our task functions live in TF-free library modules,
    # so the children do not need __main__; hiding it while the pool starts keeps TF out of them.
    main = sys.modules.get("__main__")
    saved = {k: getattr(main, k) for k in ("__file__", "__spec__") if main is not None and hasattr(main, k)}
    try:
        for k in saved:
            if k == "__spec__":
                main.__spec__ = None
            else:
                delattr(main, k)
        yield
    finally:
        for k, v in saved.items():
            setattr(main, k, v)


class Workers:
    """`with Workers(n) as w: w.imap(func, items)`: an ordered map in `n` processes, or in this process
    when n <= 1. Processes start with forkserver/spawn, never fork: the parent may hold TF threads."""

    def __init__(self, workers=None):
        self.workers = default_workers() if workers is None else max(1, int(workers))
        self._pool = None

    def __enter__(self):
        if self.workers > 1:
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
            try:
                with _hide_main_module():
                    self._pool = ctx.Pool(self.workers)
            except OSError as e:  # e.g. no /dev/shm in a locked-down container: slower, but still works
                warnings.warn(f"cannot start worker processes ({e}); working in this process")
                self._pool = None
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def imap(self, func, items, chunksize=8):
        if self._pool is None:
            return map(func, items)
        return self._pool.imap(func, items, chunksize=chunksize)


def imap(func, items, workers, chunksize=8):
    """One-shot ordered map in a fresh pool (see Workers)."""
    with Workers(workers) as w:
        yield from w.imap(func, items, chunksize)


def tensorflow_loaded(_=None):
    """Whether TensorFlow is imported in the calling process (tests check that workers stay TF-free)."""
    return "tensorflow" in sys.modules
