"""Ctrl-C and SIGTERM while a dataset is written: one clean stop, wherever the signal lands.

Python raises KeyboardInterrupt in whatever Python code the main thread runs when SIGINT arrives, and some code
swallows it: a garbage-collector callback (JAX registers one), a `__del__`, a weakref callback; the run then goes
on and writes the whole dataset. Raised while a process pool starts or stops, it leaves worker processes behind.
SIGTERM kills the process outright, leaving its workers and its `.partial` folder.

Inside `stop_on_signals()` both signals record themselves and raise KeyboardInterrupt; `check()` raises it again
where the writers pass (after every image, before the dataset is committed), so a swallowed one is not lost; and
inside `held()` (starting or stopping worker processes, committing the dataset) a signal is only recorded. Worker
processes never see SIGINT (data/workers.py): the parent stops them.

Example:
    >>> with stop_on_signals():
    ...     for image in images:
    ...         check()
    ...         write(image)
"""
import contextlib
import signal
import sys
import threading

_state = {"signal": None, "held": 0, "active": False}


def _handler(signum, frame):
    _state["signal"] = signum
    if not _state["held"]:
        raise KeyboardInterrupt


def quiet_swallowed_interrupts(hook, recorded):
    """`sys.unraisablehook` that drops what Python prints for a KeyboardInterrupt it could not pass on ("Exception
    ignored in ...") while `recorded()` is true: the signal was recorded and will be raised again at the next
    check, so the message would only be noise. Anything else goes to `hook`."""
    def quiet(unraisable):
        if not (issubclass(unraisable.exc_type, KeyboardInterrupt) and recorded()):
            hook(unraisable)
    return quiet


@contextlib.contextmanager
def stop_on_signals():
    """SIGINT and SIGTERM raise KeyboardInterrupt inside the block (see the module's docstring).

    A handler the program installed itself (or SIGINT ignored, as in a background job) is left alone; nested
    blocks and threads other than the main one change nothing."""
    if _state["active"] or threading.current_thread() is not threading.main_thread():
        yield
        return
    ours = {sig: signal.getsignal(sig) for sig, default in ((signal.SIGINT, signal.default_int_handler),
                                                             (signal.SIGTERM, signal.SIG_DFL))
            if signal.getsignal(sig) is default}
    hook = sys.unraisablehook
    _state.update(signal=None, held=0, active=True)
    try:
        for sig in ours:
            signal.signal(sig, _handler)
        sys.unraisablehook = quiet_swallowed_interrupts(hook, lambda: _state["signal"] is not None)
        yield
    finally:
        for sig, previous in ours.items():
            signal.signal(sig, previous)
        sys.unraisablehook = hook
        _state.update(signal=None, held=0, active=False)


def check():
    """Raise KeyboardInterrupt if SIGINT or SIGTERM came (its first KeyboardInterrupt may have been swallowed)."""
    if _state["signal"] is not None:
        raise KeyboardInterrupt


@contextlib.contextmanager
def held():
    """A block that a signal does not cut short (starting or stopping worker processes, committing a dataset):
    the signal is only recorded, for the next `check()`."""
    _state["held"] += 1
    try:
        yield
    finally:
        _state["held"] -= 1


@contextlib.contextmanager
def guarded(manager):
    """`with guarded(atomic_dir(...)) as tmp:` enters and leaves `manager` (which makes, then commits or
    removes, a temporary folder) without a signal cutting either short; the block in between stops at a signal
    as usual, and a signal its last lines swallowed stops it before the commit."""
    with held():
        value = manager.__enter__()
    try:
        yield value
        check()
    except BaseException:
        with held():
            if not manager.__exit__(*sys.exc_info()):
                raise
    else:
        with held():
            manager.__exit__(None, None, None)
