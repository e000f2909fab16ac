"""What every command-line tool shares (stylegan_tf.cli): one-line errors, --verbose, and no TensorFlow log
spam on stderr. Also `read_only`, the read-only folder that the metrics and generate tests write into."""
import builtins
import errno
import os
import pickle
import re
import subprocess
import sys

import pytest
from conftest import TINY_NET

from stylegan_tf import cli
from stylegan_tf.paths import cache_root

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What TensorFlow writes to stderr by itself: the absl preamble, its I/W/E log lines (oneDNN banner, CPU
# features, "oneDNN supports DT_UINT8 only on platforms with AVX-512", "remapper failed ... LeakyReluGrad").
TF_NOISE = re.compile(r"absl::InitializeLog|^[IWEF]\d{4} |oneDNN|cpu_feature_guard|AVX|remapper", re.M)
# With this, TensorFlow logs what it does as it runs ops (INFO lines): it prints on any build, with or without
# an import banner, so the tests below check that the tools silence it rather than find nothing to silence.
NOISY = {"TF_CPP_MAX_VLOG_LEVEL": "1"}
TF_AT_WORK = ["-c", "import tensorflow as tf; print(int(tf.constant(1) + 1))"]


@pytest.fixture
def read_only(monkeypatch):
    """read_only(folder): make `folder` refuse new files, as a read-only mount does, for the rest of the test.
    chmod alone does not stop root (tests often run as root in containers), so writes below the folder are
    also refused at the os level. Other test modules import this fixture."""
    folders = []

    def make(folder):
        folder = os.path.abspath(os.fspath(folder))
        os.makedirs(folder, exist_ok=True)
        os.chmod(folder, 0o555)
        folders.append(folder)
        return folder

    def inside(path):
        path = os.path.abspath(os.fsdecode(path))
        return any(path == f or path.startswith(f + os.sep) for f in folders)

    def refuse(path):
        raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))

    real_open, real_os_open, real_mkdir, real_replace = builtins.open, os.open, os.mkdir, os.replace

    def fake_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and set(mode) & set("wax+") and inside(file):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if inside(path):
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def fake_replace(src, dst, *args, **kwargs):
        if inside(dst):
            refuse(dst)
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    monkeypatch.setattr(os, "replace", fake_replace)
    monkeypatch.setattr(os, "rename", fake_replace)
    yield make
    monkeypatch.undo()
    for folder in folders:
        os.chmod(folder, 0o755)  # so that pytest can delete tmp_path


# ------------------------------------------------------------------------------------------------
# Parser, errors, --verbose


def test_parser_usage_error_is_one_line_and_verbose_is_accepted_everywhere(capsys):
    p = cli.Parser(prog="tool.py")
    p.add_argument("--n", type=int)
    sub = p.add_subparsers(dest="command")
    sub.add_parser("go").add_argument("--x")
    with pytest.raises(SystemExit) as e:
        p.parse_args(["--n", "three"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("tool.py: error: argument --n") and err.count("\n") == 1 and "usage" not in err
    # --verbose before or after the subcommand; read from the raw command line, absent from the namespace.
    for argv in (["--verbose", "go", "--x", "1"], ["go", "--x", "1", "--verbose"], ["go", "--verb"]):
        assert not hasattr(p.parse_args(argv), "verbose")
        assert cli.verbose(argv)
    assert "--verbose" in p.format_help()


def test_verbose_from_the_command_line_or_the_environment(monkeypatch):
    monkeypatch.delenv(cli.VERBOSE_ENV, raising=False)
    assert not cli.verbose(["images", "--seeds", "1"])
    assert not cli.verbose(["--v"])  # too short to be --verbose for argparse either
    for value, expected in (("1", True), ("yes", True), ("0", False), ("", False), ("false", False)):
        monkeypatch.setenv(cli.VERBOSE_ENV, value)
        assert cli.verbose([]) is expected


def test_run_turns_known_errors_into_one_line(capsys):
    def fail(exc):
        def f():
            raise exc
        return f

    assert cli.run("tool.py", lambda: 0) == 0
    assert cli.run("tool.py", fail(ValueError("bad value\n  on two lines"))) == 2
    assert capsys.readouterr().err == "tool.py: error: bad value on two lines\n"
    assert cli.run("tool.py", fail(PermissionError(errno.EACCES, "Permission denied", "/ro/x.png"))) == 2
    assert capsys.readouterr().err == "tool.py: error: /ro/x.png: Permission denied\n"
    assert cli.run("tool.py", fail(pickle.UnpicklingError("refused"))) == 2
    assert cli.run("tool.py", fail(KeyboardInterrupt()), interrupted="interrupted; nothing written") == 130
    assert capsys.readouterr().err.endswith("tool.py: interrupted; nothing written\n")
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        cli.run("tool.py", lambda: 1 / 0)


def test_filtered_stderr_drops_tensorflow_banner_lines_only(capfd):
    banner = (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
              b"I0000 00:00:1795663431.703535    6023 port.cc:153] oneDNN custom operations are on. ...\n"
              b"W0000 00:00:1795663431.914185    6023 cpu_feature_guard.cc:227] something\n")
    kept = b"E0000 00:00:1795663431.914185    6023 stream.cc:1] a real error\nTraceback: keep me\n"
    with cli._filtered_stderr(cli._IMPORT_NOISE):
        os.write(2, banner + kept)
    assert capfd.readouterr().err.encode() == kept


def test_quiet_tensorflow_respects_the_user_and_verbose(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))  # the import hook, if installed, goes after
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert cli.quiet_tensorflow(verbose=True) is False and "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    assert cli.quiet_tensorflow() is True and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    cli.quiet_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"


# ------------------------------------------------------------------------------------------------
# The cache root


def test_cache_root_order(monkeypatch, tmp_path):
    from stylegan_tf.metrics import inception, metric_base
    monkeypatch.delenv("STYLEGAN_TF_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == str(tmp_path / "home" / ".cache" / "stylegan_tf")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == str(tmp_path / "xdg" / "stylegan_tf")
    monkeypatch.setenv("STYLEGAN_TF_CACHE", str(tmp_path / "mine"))
    assert cache_root() == str(tmp_path / "mine")
    # Every user of the cache follows it.
    assert inception.cache_dir() == str(tmp_path / "mine")
    assert metric_base.cache_dir() == str(tmp_path / "mine" / "metrics")
    assert metric_base.fallback_report_dir().startswith(str(tmp_path / "mine"))


# ------------------------------------------------------------------------------------------------
# The real tools, as a user runs them: no TensorFlow log lines on stderr.


def _tool(args, tmp_path, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", cli.VERBOSE_ENV)}
    environ.update(STYLEGAN_TF_CACHE=str(tmp_path / "cache"), **env)
    return subprocess.run([sys.executable, *args], cwd=REPO, env=environ, capture_output=True, text=True,
                          timeout=600)


def test_tools_print_no_tensorflow_log_lines(demo_dataset, tiny_network_path, tmp_path):
    data = demo_dataset(32, 64)
    raw = _tool(TF_AT_WORK, tmp_path, **NOISY)
    assert raw.returncode == 0 and TF_NOISE.search(raw.stderr), raw.stderr[-2000:]  # TensorFlow does print here
    runs = [
        ["dataset_tool.py", "info", data],
        ["generate.py", "images", "--network", tiny_network_path, "--seeds", "1", "--outdir", str(tmp_path / "g"),
         "--no-progress"],
        ["-m", "stylegan_tf.metrics", "--network", tiny_network_path, "--data", data, "--metrics", "swd1k",
         "--num", "16", "--no-progress", "--report-dir", "none"],
        # Two training steps of the tiny net: the runtime lines (DT_UINT8, remapper) come from the training graphs.
        ["train.py", "--data", data, "--outdir", str(tmp_path / "runs"), "--total-kimg", "0.016",
         "--minibatch", "8", *(f"--{k.replace('_', '-')}={v}" for k, v in TINY_NET.items()),
         "--lod-initial-resolution", "32", "--no-progress"],
    ]
    for args in runs:
        proc = _tool(args, tmp_path, **NOISY)
        assert proc.returncode == 0, (args[0], proc.stderr[-2000:])
        assert not TF_NOISE.search(proc.stderr), (args[0], proc.stderr[-2000:])
        assert proc.stdout.strip(), args[0]  # and our own output is there


def test_verbose_brings_tensorflow_log_lines_back(demo_dataset, tmp_path):
    data = demo_dataset(32, 64)
    for how in ({"args": ["--verbose"]}, {"env": {cli.VERBOSE_ENV: "1"}}):
        proc = _tool(["dataset_tool.py", "info", data, *how.get("args", [])], tmp_path, **NOISY, **how.get("env", {}))
        assert proc.returncode == 0 and TF_NOISE.search(proc.stderr), proc.stderr[-2000:]
    # Without --verbose the same command is quiet: test_tools_print_no_tensorflow_log_lines runs it.


def test_every_tool_answers_a_bad_input_file_alike(tmp_path):
    """One convention (cli.py's docstring): a bad input found at run time is one line on stderr, no traceback,
    and exit code 2, as argparse gives a usage mistake, in every tool."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.pkl").write_text("plain text, not a network")
    bad_net, out = str(notes / "notes.pkl"), str(tmp_path / "out")
    runs = {
        "dataset_tool.py": ["dataset_tool.py", "info", str(notes)],
        "generate.py": ["generate.py", "images", "--network", bad_net, "--seeds", "1", "--outdir", out],
        "python -m stylegan_tf.metrics": ["-m", "stylegan_tf.metrics", "--network", bad_net, "--data", str(notes),
                                          "--metrics", "swd1k"],
        "python -m stylegan_tf.network_io": ["-m", "stylegan_tf.network_io", bad_net, out + ".keras"],
        "train.py": ["train.py", "--data", str(notes), "--outdir", out],
    }
    for prog, args in runs.items():
        proc = _tool(args, tmp_path)
        assert (proc.returncode, proc.stdout) == (2, ""), (prog, proc.returncode, proc.stderr[-2000:])
        assert proc.stderr.startswith(f"{prog}: error: ") and proc.stderr.count("\n") == 1, (prog, proc.stderr)
        assert "Traceback" not in proc.stderr and str(notes) in proc.stderr, (prog, proc.stderr)
    assert os.listdir(notes) == ["notes.pkl"] and not [n for n in os.listdir(tmp_path) if n.startswith("out")]
