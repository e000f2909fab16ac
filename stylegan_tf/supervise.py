"""train.py's supervising parent for a JAX worker of a multi-worker run.

Why it exists: on JAX, the cluster's coordination service runs inside worker 0's process. When worker 0 dies (or
when a worker reaches no collective within the heartbeat timeout of a peer's death), jaxlib's coordination client
ends every other worker from a C++ thread: `Terminating process because the JAX distributed service detected
fatal errors ...`, a C++ stack trace and SIGABRT. No Python code runs in that process any more (and jaxlib's
`missed_heartbeat_callback` takes no Python function), so the worker cannot say which worker is gone itself.

So train.py, when Keras' backend is JAX and the environment names a cluster of several workers, does not train in
the process the user started: that process re-runs the same command as a child (marked by `CHILD_ENV`, so that it
trains) and watches it, importing nothing but the standard library. Two processes per worker:

    python train.py ...            the parent: waits for the child, relays its stderr, returns its exit code
      python train.py ...          the child: the worker that trains

- The child's stdout is the parent's (inherited: Keras' progress bar keeps its terminal). Its stderr passes through
  the parent in byte chunks as it comes (tqdm's `\\r` bars included), except jaxlib's fatal block: the C++ log
  lines (`E1207 18:09:06.409 ... ]`) are held back briefly (`HOLD_S`), and from jaxlib's "Terminating process"
  line on everything is kept back until the child ends.
- A child that ends with SIGABRT after that line: the parent prints one line instead, naming the lost worker
  (`train.py: error: training stopped: worker 0 (10.0.0.1:1234) is gone (...); the last snapshot is complete:
  restart every worker with --resume auto to continue from it`), and exits with code 2, as the workers that
  notice a lost peer themselves do. If the child printed its own `train.py: error:` line (its Python code can
  notice the lost worker at the same moment, and exit with code 2 before the abort), that one stays the only
  line, and the block is dropped all the same.
- Any other end passes through: the child's exit code, or, for a child killed by a signal, the same signal on the
  parent (a shell sees 128 + n). An abort without jaxlib's line keeps its text.
- Ctrl-C reaches the child through the terminal's process group; the parent ignores it and returns the child's
  code (130). SIGTERM to the parent is passed on to the child. A parent that dies (`kill -9`) takes the child with
  it: the child asks the kernel for SIGKILL when its parent goes (Linux' `PR_SET_PDEATHSIG`) and checks, right
  after, that its parent is still the one that started it.

One-process runs and TensorFlow never come here (`supervision_wanted`).
"""
import os
import re
import select
import signal
import subprocess
import sys
import time

from stylegan_tf.cluster import Cluster, ClusterError, keras_backend, lost_message

# Set in the child's environment to the parent's pid: the child trains, and dies with that parent.
CHILD_ENV = "STYLEGAN_TF_SUPERVISED_BY"
# jaxlib's line before it aborts a process whose coordination service reports an error.
FATAL = b"Terminating process because the JAX distributed service detected fatal errors"
# The start of a C++ log line of absl (severity E or F, then MMDD and a space: `E1207 18:09:06.409100 ...`), which
# jaxlib's fatal block starts with; such lines are held back until it is clear that no fatal line follows.
_LOG_START = re.compile(rb"[EF]\d{4} ")
_LOG_START_LEN = 6
# How long held C++ log lines wait for jaxlib's fatal line before they are written (it comes within milliseconds).
HOLD_S = 2.0
# How often the parent looks whether the child has ended while its stderr stays open (a grandchild holding it).
_POLL_S = 0.5
PR_SET_PDEATHSIG = 1


def supervision_wanted(environ=None):
    """The cluster to supervise a child of, or None when this process trains itself: the child (`CHILD_ENV`),
    a backend other than JAX, a one-process run, a cluster description that cannot be used (the run itself
    reports it), or a platform without `select` on pipes (Windows)."""
    environ = os.environ if environ is None else environ
    if environ.get(CHILD_ENV) or os.name == "nt" or keras_backend(environ) != "jax":
        return None
    try:
        return Cluster.from_env(environ, backend="jax")
    except ClusterError:
        return None


def run_supervised(script, argv=None, prog="train.py"):
    """train.py's first step. In a process that should train (see `supervision_wanted`): None, after a child
    has arranged to die with its parent; the caller trains. In a JAX worker of several: `script` with `argv`
    (default: this command's) is run as a child under this process, and the child's exit code is returned (a
    child killed by a signal: this process is killed by the same signal)."""
    parent = os.environ.pop(CHILD_ENV, None)
    if parent is not None:
        die_with_parent(int(parent) if parent.isdigit() else None)
        return None
    cluster = supervision_wanted()
    if cluster is None:
        return None
    argv = sys.argv[1:] if argv is None else list(argv)
    command = [sys.executable, *_interpreter_flags(), os.path.abspath(script), *argv]
    code = supervise(command, cluster, prog=prog)
    if code < 0:
        _die_of(-code)
        code = 128 - code
    return code


def die_with_parent(parent_pid):
    """Have the kernel send SIGKILL to this process when its parent ends (Linux; elsewhere nothing), then close
    the race in which the parent ended first: a parent other than `parent_pid` means it is gone."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL), ctypes.c_ulong(0), ctypes.c_ulong(0),
                       ctypes.c_ulong(0))
        except (OSError, AttributeError):
            pass    # a libc without prctl: the parent check below is then the only guard
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGKILL)


def supervise(command, cluster, prog="train.py", env=None):
    """Run `command` as the supervised child of `cluster`'s worker and return its exit code as `subprocess`
    gives it (negative: killed by that signal), or 2 when jaxlib aborted it (one line naming the lost worker)."""
    env = dict(os.environ if env is None else env)
    env[CHILD_ENV] = str(os.getpid())
    got_term = []

    def on_term(signum, frame):
        got_term.append(signum)
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    child, previous = None, {}
    # Handlers before the child starts (a handler, unlike SIG_IGN, is not inherited: the child's Ctrl-C works).
    # Python sets handlers from its main thread only; elsewhere the signals keep their defaults.
    try:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, lambda signum, frame: None)
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, on_term)
    except ValueError:
        previous.clear()    # not the main thread: nothing was set, nothing to restore
    try:
        child = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
        if got_term:                                    # arrived while the child was being started
            child.send_signal(got_term[-1])
        relay = StderrRelay(prog)
        _pump(child, relay)
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return relay.finish(code, cluster)


def _pump(child, relay):
    """Relay the child's stderr until it closes (or the child has ended and nothing more is waiting)."""
    fd = child.stderr.fileno()
    try:
        while True:
            timeout = _POLL_S if relay.deadline is None else max(min(relay.deadline - time.monotonic(), _POLL_S), 0)
            if select.select([fd], [], [], timeout)[0]:
                data = os.read(fd, 65536)
                if not data:
                    return
                relay.feed(data)
            elif relay.deadline is not None and time.monotonic() >= relay.deadline:
                relay.release()
            elif child.poll() is not None:
                while select.select([fd], [], [], 0)[0]:
                    data = os.read(fd, 65536)
                    if not data:
                        return
                    relay.feed(data)
                return
    finally:
        child.stderr.close()


class StderrRelay:
    """The child's stderr, written on to this process's (`out`, a file descriptor) as it comes, except jaxlib's
    fatal block (see the module's docstring). `feed` it the bytes read; `release` once `deadline` (the limit of
    the held lines, None while nothing is held) has passed; `finish` with the child's exit code."""

    def __init__(self, prog="train.py", out=2):
        self.prog, self.out = prog, out
        self.deadline = None            # while C++ log lines are held: when they are written anyway
        self.printed_error = False      # the child wrote its own `PROG: error:` line
        self._held = bytearray()        # held: a C++ log line and everything after it
        self._fatal = None              # from a held block with jaxlib's fatal line on: everything, kept back
        self._start = bytearray()       # the start of the current line, while too short to tell what it is
        self._at_line_start = True
        self._error_line = re.compile(rb"(?:^|\n)" + re.escape(prog.encode()) + rb": error:")
        self._tail = b"\n"              # the last bytes passed on: our error line may span two chunks

    def feed(self, data):
        if self._fatal is not None:
            self._fatal += data
            return
        if self.deadline is not None:
            self._hold(data)
            return
        i = 0
        while i < len(data):
            newline = data.find(b"\n", i)
            end = len(data) if newline < 0 else newline + 1
            if not self._at_line_start:         # the rest of a line that is passed on (a tqdm bar's \r updates)
                self._pass(data[i:end])
                self._at_line_start, i = newline >= 0, end
                continue
            # A line's start: enough bytes to tell a C++ log line (`E1207 `) from anything else.
            take = min(end, i + _LOG_START_LEN - len(self._start))
            self._start += data[i:take]
            i = take
            start = bytes(self._start)
            if len(start) < _LOG_START_LEN and not start.endswith(b"\n") and re.fullmatch(rb"[EF]\d{0,4}", start):
                continue                        # not enough yet: the next chunk tells
            self._start = bytearray()
            if _LOG_START.match(start):
                self.deadline = time.monotonic() + HOLD_S
                self._hold(start + data[i:])
                return
            self._pass(start)
            self._at_line_start = start.endswith(b"\n")

    def _hold(self, data):
        self._held += data
        if FATAL in self._held:
            self._fatal, self._held, self.deadline = bytes(self._held), bytearray(), None

    def release(self):
        """Pass the held lines on: no fatal line followed them in time. (A log line after the first one starts
        a hold of its own.)"""
        held, self._held, self.deadline = bytes(self._held), bytearray(), None
        newline = held.find(b"\n")
        first, rest = (held, b"") if newline < 0 else (held[:newline + 1], held[newline + 1:])
        self._pass(first)
        self._at_line_start = first.endswith(b"\n")
        self.feed(rest)

    def _pass(self, data):
        if not data:
            return
        window = self._tail + data
        self.printed_error = self.printed_error or bool(self._error_line.search(window))
        self._tail = window[-(len(self.prog) + 10):]
        _write(self.out, data)

    def finish(self, code, cluster):
        """The exit code for the child's `code`, after writing what was kept back; but when jaxlib's fatal block
        ended the child (SIGABRT), or raced its own exit on a `PROG: error:` line of its own (the child noticed
        the lost worker at the same moment), the block is dropped: the child's own line or ours is the one line
        written, and the code is 2 (the child's own exit code in the race)."""
        own = self._own_error_lines(self._fatal)
        if self._fatal is not None and (code == -signal.SIGABRT or (code != 0 and (own or self.printed_error))):
            if not self.printed_error:
                line = own[0] if own else f"{self.prog}: error: {jax_abort_message(self._fatal, cluster)}\n".encode()
                _write(self.out, line if line.endswith(b"\n") else line + b"\n")
            return 2 if code == -signal.SIGABRT else code
        rest = bytes(self._start) + bytes(self._held) + (self._fatal or b"")
        self._start, self._held, self._fatal, self.deadline = bytearray(), bytearray(), None, None
        self._pass(rest)
        return code

    def _own_error_lines(self, text):
        """The child's own `PROG: error:` lines in kept-back `text` (none when nothing was kept back)."""
        prefix = self.prog.encode() + b": error:"
        return [line for line in (text or b"").splitlines(keepends=True) if line.startswith(prefix)]


def jax_abort_message(text, cluster):
    """Our line (without `train.py: error: `) for jaxlib's fatal block `text` in `cluster`'s worker: the worker
    it names as unhealthy, or worker 0 when the coordination service (which runs in worker 0) is unreachable."""
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    others = [i for i in range(cluster.num_workers) if i != cluster.index]
    unhealthy = re.search(r"unhealthy \(stopped sending heartbeats\):[ \t]*\n?((?:[ \t]*[\w:/,]*\d[ \t]*(?:\n|$))+)",
                          text)
    if unhealthy:
        ids = sorted({int(t) for t in re.findall(r"(?:task:)?(\d+)\s*(?:,|$)", unhealthy.group(1), re.M)})
        gone = [i for i in ids if i != cluster.index and i < cluster.num_workers]
        if not gone and len(others) == 1:
            gone = others
        who = ", ".join(cluster.name(i) for i in gone) if gone else "another worker"
        return lost_message(who, "it stopped sending heartbeats")
    if re.search(r"Failed to send RPC to coordination service|leader task was preempted", text) and cluster.index:
        return lost_message(cluster.name(0), "the coordination service, which ran in its process, is unreachable")
    status = re.search(r"absl::Status: (.*)", text)
    reason = re.sub(r"\s+", " ", status.group(1) if status else "JAX's distributed service failed").strip()[:160]
    return lost_message(cluster.name(others[0]) if len(others) == 1 else "another worker", reason)


def _write(fd, data):
    """Write all of `data` to `fd`; a closed stderr (EPIPE) loses it, but the child's output is still drained."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except OSError:
            return


def _interpreter_flags():
    """This interpreter's own options (-X, -W, -O, ...), for the child's command."""
    try:
        return subprocess._args_from_interpreter_flags()
    except AttributeError:
        return []


def _die_of(signum):
    """End this process by `signum`, as the child was (a shell then reports 128 + n); returns if that does not
    end it."""
    try:
        signal.signal(signum, signal.SIG_DFL)
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signum)
    except (OSError, ValueError):
        return
