"""Process pools for decoding/drawing images, without TensorFlow in the workers."""
import collections
import concurrent.futures
import contextlib
import itertools
import multiprocessing
import os
import signal
import sys
import warnings

from stylegan_tf.data import interrupts


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


@contextlib.contextmanager
def _sigint_blocked():
    # A process started here (a worker, or the forkserver that forks them) inherits this thread's signal mask:
    # with SIGINT blocked it never receives a Ctrl-C, from its first instruction on, so none prints a
    # KeyboardInterrupt traceback or dies before the parent stops it (multiprocessing's resource tracker starts
    # the same way). A SIGINT to this process meanwhile waits, and reaches it when the mask is restored.
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _ignore_interrupts():
    # Worker initializer, for a worker forked by a forkserver that another part of the program started.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Workers:
    """`with Workers(n) as w: w.imap(func, items)`: an ordered map in `n` processes, or in this process
    when n <= 1. Processes start with forkserver/spawn, never fork: the parent may hold TF threads.

    Ctrl-C and SIGTERM are the parent's business (data/interrupts.py): the workers never see SIGINT, starting a
    worker and stopping the pool are never cut short by a signal, and `imap` raises KeyboardInterrupt after the
    result during which one came, even where Python swallowed the first. A concurrent.futures pool, not a
    multiprocessing.Pool: when a worker dies (SIGTERM to the whole process group), the former shuts down, the
    latter can wait forever for the queue lock the dead worker held.
    """

    def __init__(self, workers=None):
        self.workers = default_workers() if workers is None else max(1, int(workers))
        self._pool = None

    def __enter__(self):
        if self.workers > 1:
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
            if ctx.get_start_method() == "forkserver":
                # Imported once in the forkserver rather than in every worker it forks.
                ctx.set_forkserver_preload(["stylegan_tf.data.images", "stylegan_tf.data.demo_faces"])
            try:
                self._pool = concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=ctx,
                                                                    initializer=_ignore_interrupts)
            except OSError as e:  # e.g. no /dev/shm in a locked-down container: slower, but still works
                warnings.warn(f"cannot start worker processes ({e}); working in this process")
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            with interrupts.held():  # waits for the chunks being computed, cancels the others
                self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def imap(self, func, items, chunksize=8):
        """func(item) for each of `items`, in order; in the worker processes, `chunksize` items per task and
        at most two tasks per worker ahead of the results taken."""
        if self._pool is None:
            for item in items:
                result = func(item)
                interrupts.check()
                yield result
            return
        items, pending = iter(items), collections.deque()

        def submit():
            chunk = list(itertools.islice(items, chunksize))
            if chunk:
                with interrupts.held(), _hide_main_module(), _sigint_blocked():  # it may start a process
                    pending.append(self._pool.submit(_map_chunk, func, chunk))

        try:
            for _ in range(2 * self.workers):
                submit()
            while pending:
                results = pending.popleft().result()
                submit()
                for result in results:
                    interrupts.check()
                    yield result
        except Exception:
            interrupts.check()  # workers (or the forkserver) killed along with this process: a signal, no failure
            raise


def _map_chunk(func, chunk):
    return [func(item) for item in chunk]


def imap(func, items, workers, chunksize=8):
    """One-shot ordered map in a fresh pool (see Workers)."""
    with Workers(workers) as w:
        yield from w.imap(func, items, chunksize)


def tensorflow_loaded(_=None):
    """Whether TensorFlow is imported in the calling process (tests check that workers stay TF-free)."""
    return "tensorflow" in sys.modules
