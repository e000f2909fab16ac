"""What the command-line tools (train.py, generate.py, dataset_tool.py, `python -m stylegan_tf.metrics`) share.

    from stylegan_tf import cli

    def main(argv=None):
        cli.quiet_tensorflow(cli.verbose(argv))                 # first: before anything imports TensorFlow
        parser = cli.Parser(prog="tool.py", description=...)    # a usage mistake: one line, exit code 2
        args = parser.parse_args(argv)                          # every parser accepts --verbose
        return cli.run("tool.py", lambda: work(args))           # a known error: one line, exit code 2; Ctrl-C: 130

Exit codes, the same in every tool:
    0    done.
    2    an error reported as one line `PROG: error: ...`: a usage mistake that argparse finds (a missing or
         unknown flag, a value of the wrong type) and every mistake found later, once the work starts (a value
         out of range, a file that is missing, damaged or not ours to replace, a full disk). argparse itself
         exits 2 for a file argument it cannot open (FileType), so the same bad input gives the same code
         whoever finds it; scripts need one test for "fix the command or its inputs".
    1    an uncaught exception: a bug, reported with its traceback (Python's own exit code); or a command's
         "no" answer, as with diff and cmp (dataset_tool.py compare: the datasets differ).
    130  Ctrl-C (and, in dataset_tool.py, SIGTERM): one line, nothing half-written left.

TensorFlow writes its start-up banner (oneDNN, CPU features, absl) and internal log lines straight to the
process's stderr from C++, where a user takes them for our errors. `quiet_tensorflow` keeps them out unless
`--verbose` or `STYLEGAN_TF_VERBOSE=1` asks for them; TensorFlow's own `TF_CPP_MIN_LOG_LEVEL`, when the user
sets it, is left alone.

This module imports neither TensorFlow nor Keras: it must run before them.
"""
import argparse
import contextlib
import importlib.abc
import importlib.util
import os
import pickle
import re
import sys
import tempfile

VERBOSE_ENV = "STYLEGAN_TF_VERBOSE"

# A user mistake or a bad input file: reported as one line, never a traceback. Anything else is a bug in
# this project and keeps its traceback. (pickle's errors are not ValueErrors; a refused or garbled pickle
# is a bad input like any other.)
USER_ERRORS = (ValueError, OSError, pickle.UnpicklingError)

# What TensorFlow prints while it is imported that says nothing to a user. absl's INFO/WARNING lines look like
# `I0000 00:00:1795663431.703535    6023 port.cc:153] ...` (the odd time: absl is not set up yet). ERROR and
# FATAL lines are kept, except the cuDNN/cuFFT/cuBLAS "factory already registered" ones that CUDA builds of
# TensorFlow print on every import.
_IMPORT_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\] .*"
    r"|E\d{4} [\d:.]+\s+\d+ \S+:\d+\] Unable to register cu\w+ factory: .*"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
    r"|This TensorFlow binary is optimized to use available CPU instructions in performance-critical operations\.")


class _VerboseFlag(argparse.Action):
    """`--verbose` is read from the raw command line by `verbose()`, because it must be known before TensorFlow
    is imported (building a parser may import it). The parser only accepts and documents it; the parsed
    arguments do not carry it, so no tool has to strip it before passing its flags on."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest=argparse.SUPPRESS, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        pass


class Parser(argparse.ArgumentParser):
    """argparse with the project's conventions: a usage mistake is one line (argparse would print the usage
    block first) and exit code 2; `--verbose` on the tool and on each of its subcommands."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument("--verbose", action=_VerboseFlag,
                          help=f"also show TensorFlow's own log messages (or set {VERBOSE_ENV}=1)")

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def verbose(argv=None):
    """True when the command line (`argv`, default `sys.argv[1:]`) has `--verbose` (or an abbreviation that
    argparse would accept), or $STYLEGAN_TF_VERBOSE is set to a true value."""
    argv = sys.argv[1:] if argv is None else argv
    if any(len(a) > 3 and "--verbose".startswith(a) for a in map(str, argv)):
        return True
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def quiet_tensorflow(verbose=False):
    """Keep TensorFlow's log lines off stderr for the rest of the process (unless `verbose`).

    Sets TF_CPP_MIN_LOG_LEVEL=3 unless the user set it: TensorFlow's runtime ERROR lines are internal
    (e.g. "oneDNN supports DT_UINT8 only on platforms with AVX-512" on every training run), and a real
    failure reaches us as a Python exception anyway. The import banner ignores that variable (it is printed
    before TensorFlow configures its logging), so the import itself, whenever it happens, runs with stderr
    filtered. Call it before TensorFlow is imported; TensorFlow is not imported here, so `--help` and the
    TensorFlow-free commands stay fast. Returns whether it silenced anything.
    """
    if verbose:
        return False
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
    return True


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` with the ordinary finders and wraps its loading in `_filtered_stderr`; gone after."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)  # one import only, and the lookup below must not come back here
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def quiet_exec_module(module):
            with _filtered_stderr(_IMPORT_NOISE):
                exec_module(module)

        spec.loader.exec_module = quiet_exec_module  # this spec's own loader instance
        return spec


@contextlib.contextmanager
def _filtered_stderr(noise):
    """Capture file descriptor 2 (where C++ code writes) in a temp file; afterwards write back every line
    that does not fully match `noise`. Nothing else is lost: Python warnings and errors raised meanwhile
    pass through, only later."""
    saved = tmp = None
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        tmp = tempfile.TemporaryFile()
    except (OSError, ValueError, AttributeError):  # no usable stderr or temp folder: better noise than failure
        if saved is not None:
            os.close(saved)
    if tmp is None:
        yield
        return
    with tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [line for line in tmp.read().splitlines(keepends=True)
                    if not noise.fullmatch(line.decode("utf-8", "replace").rstrip("\r\n"))]
            if kept:
                os.write(2, b"".join(kept))


def one_line(exc):
    """An exception as one line of text: its message with line breaks folded, or its type when it has none.
    An OSError reads `PATH: reason` instead of Python's `[Errno 13] Permission denied: 'PATH'`."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{os.fsdecode(exc.filename)}: {exc.strerror}"
    return " ".join(str(exc).split()) or type(exc).__name__


ERROR_CODE = 2  # a user's mistake or a bad input, reported in one line (see the exit codes above)
INTERRUPTED_CODE = 130  # 128 + SIGINT, as a shell reports a process that Ctrl-C stopped


def run(prog, func, errors=USER_ERRORS, code=ERROR_CODE, interrupted="interrupted"):
    """`func()`'s exit code; a known error (`errors`) is printed as `PROG: error: ...` and gives `code`
    (ERROR_CODE: keep it, so that every tool answers alike), and Ctrl-C prints `PROG: <interrupted>` and gives
    130. Other exceptions propagate: they are bugs, and their traceback is what a bug report needs.

    Example:
        sys.exit(cli.run("tool.py", lambda: work(args)))
    """
    try:
        return func()
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return INTERRUPTED_CODE
    except errors as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return code
