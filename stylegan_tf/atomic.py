"""Write-to-temp-then-rename, so a crash never leaves a half-written file or folder behind.

A temp's name says who owns it: `.<target>.tmp-<host>-<pid>-<random><suffix>`. A process killed with
SIGKILL cannot delete its temp, so `remove_stale_temps(folder)` (which `atomic_dir` runs on its parent
folder, and tools run where they write) deletes the temps whose owner is provably gone, and no others.

`--overwrite` replaces only what a tool recognises as its own output: `check_dir_target` is that rule for
folders, and `atomic_dir` applies it.
"""
import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
import tempfile
import time

# Read once at import (os.umask can only be read by setting it, which must not race writer threads).
_UMASK = os.umask(0o022)
os.umask(_UMASK)

# The host is part of the name because a pid means nothing on another machine sharing the folder (NFS,
# a container with another hostname): there we cannot tell whether the owner is alive.
_HOST = hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]
_TEMP_RE = re.compile(r"^\.(?P<target>.+)\.tmp-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[A-Za-z0-9_]+"
                      r"(?P<suffix>\.[^/]*)?$")
_DIR_SUFFIX = ".partial"
_OLD_SUFFIX = ".partial.old"
# Temps of another host are judged by age alone: nothing we write goes untouched for this long while alive.
FOREIGN_STALE_S = 24 * 3600


def _temp_prefix(path):
    return f".{os.path.basename(path)}.tmp-{_HOST}-{os.getpid()}-"


def is_disk_full(exc):
    """True for the errors a full disk or an exhausted quota raises (OSError, or TensorFlow's writers')."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    # TensorFlow maps ENOSPC to RESOURCE_EXHAUSTED; checked by name so this module never imports TF.
    message = str(exc)
    return type(exc).__name__ == "ResourceExhaustedError" and ("No space left" in message or "quota" in message)


@contextlib.contextmanager
def atomic_path(path, suffix=".tmp"):
    """Yield a temporary path beside `path`; on success rename it over `path`, on error delete it.

    `suffix` is for writers that insist on a file extension (Keras: `.keras`, `.weights.h5`)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=suffix, dir=folder)
    os.close(fd)
    # mkstemp creates 0600; a finished file gets the permissions any newly created file would get.
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class NotOursError(ValueError):
    """An existing path that `--overwrite` may not replace: it holds something this project did not write there."""


def _recogniser(ours):
    """`ours` (a name -> bool function, a compiled regex that must match a whole name, or a collection of names)
    as a name -> bool function; None recognises nothing."""
    if ours is None:
        return lambda name: False
    if callable(ours):
        return ours
    if isinstance(ours, re.Pattern):
        return lambda name: ours.fullmatch(name) is not None
    names = frozenset(ours)
    return names.__contains__


def check_dir_target(path, overwrite=False, ours=None, what="this tool's output"):
    """Refuse, with one line, to write a folder at `path` unless nothing is there or, with `overwrite`, it is a
    folder (not a link) holding only plain files that `ours` recognises (see `_recogniser`): `--overwrite`
    deletes the old folder, so it may only replace what the tool itself writes, never a folder of the user's.
    The folder a process works in (or one above it) is never replaced.

    Args:
        path: the folder to be written.
        overwrite: whether the user asked to replace an existing one.
        ours: the file names the tool writes there: a set of names, a compiled regex or a name -> bool function.
        what: the kind of folder, for the message ("a projection").

    Example:
        check_dir_target("out/proj", True, {"w.npy", "noise.npz"}, "a projection")
    """
    given = os.fspath(path)  # as the user wrote it, for the messages
    path = os.path.abspath(given)
    if not os.path.lexists(path):
        return
    if not overwrite:
        raise FileExistsError(f"{given} already exists; pass --overwrite to replace it")
    refuse = f"--overwrite only replaces {what}: choose another folder"
    if os.path.islink(path) or not os.path.isdir(path):
        raise NotOursError(f"{given} is not {what} (it is a {'link' if os.path.islink(path) else 'file'}); {refuse}")
    real = os.path.realpath(path)
    if os.path.commonpath([os.path.realpath(os.getcwd()), real]) == real:
        raise NotOursError(f"{given} is the working folder or holds it; {refuse}")
    is_ours = _recogniser(ours)
    with os.scandir(path) as it:
        foreign = sorted(e.name for e in it if not (e.is_file(follow_symlinks=False) and is_ours(e.name)))
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise NotOursError(f"{given} is not {what} (it holds {foreign[0]}{more}); {refuse}")


@contextlib.contextmanager
def atomic_dir(path, overwrite=False, ours=None, what="this tool's output", replaceable=None):
    """Yield a temporary folder beside `path`; on success it becomes `path`.

    An existing `path` is replaced only with `overwrite`, and only when `check_dir_target` finds nothing in it
    but files that `ours` recognises (with neither `ours` nor `replaceable`: only an empty folder). The check
    runs just before the replacement, as the folder may have changed while the new one was being written; call
    `check_dir_target` yourself before slow work, to fail early. `replaceable(path)`, if given, is called then
    too and raises to refuse (a tool's further conditions; given without `ours`, it alone judges the folder's
    files). Stale temps of killed runs in the parent folder are removed first.

    Example:
        with atomic_dir("out/proj", overwrite=True, ours={"w.npy"}, what="a projection") as tmp:
            np.save(os.path.join(tmp, "w.npy"), w)
    """
    given, path = path, os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    remove_stale_temps(parent)
    tmp = tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=_DIR_SUFFIX, dir=parent)
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes it 0700; the result gets the usual folder permissions
        if os.path.lexists(path):
            if ours is None and replaceable is not None:
                ours = lambda name: True  # noqa: E731 - `replaceable` alone judges what the folder holds
            check_dir_target(given, overwrite, ours, what)
            if replaceable is not None:
                replaceable(path)
            # Between these two renames `path` is missing; remove_stale_temps puts `old` back if we die here.
            old = tmp[: -len(_DIR_SUFFIX)] + _OLD_SUFFIX
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def _process_start_time(pid):
    """Unix time `pid` started (Linux /proc), or None where that cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _touched(st):
    # ctime too: a writer may set an old mtime (a copy that keeps times), but nothing can set ctime back.
    return max(st.st_mtime, st.st_ctime)


def _last_touched(path):
    """When `path` or, for a folder, any of its entries last changed (writers append to files, not folders)."""
    newest = _touched(os.lstat(path))
    if os.path.isdir(path) and not os.path.islink(path):
        with os.scandir(path) as it:
            for entry in it:
                with contextlib.suppress(OSError):
                    newest = max(newest, _touched(entry.stat(follow_symlinks=False)))
    return newest


def _owner_gone(host, pid, touched, now):
    if host != _HOST:
        return now - touched > FOREIGN_STALE_S
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        pass
    except OSError:
        return False
    # The pid is in use, but pids are reused (a container's tool is often pid 1 on every run): a process
    # that started after the temp was last written to cannot be the one writing it.
    started = _process_start_time(pid)
    return started is not None and started > touched + 2.0


def remove_stale_temps(folder):
    """Delete the temps in `folder` (not below it) that atomic_path/atomic_dir of a dead process left.

    Only names of our own pattern are considered, and only when their owner is gone: a process of this
    host that no longer runs (or a newer process that reuses its pid), or, for a temp written on another
    host, one untouched for FOREIGN_STALE_S. A `.partial.old` folder whose target is missing (killed
    between the two renames of an overwrite) is renamed back to the target instead of deleted.
    Returns the paths removed or restored, in name order; errors (a racing cleaner) are ignored."""
    folder = os.fspath(folder)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    now = time.time()
    done = []
    for name in names:
        m = _TEMP_RE.match(name)
        if not m:
            continue
        path = os.path.join(folder, name)
        try:
            if not _owner_gone(m.group("host"), int(m.group("pid")), _last_touched(path), now):
                continue
            target = os.path.join(folder, m.group("target"))
            if m.group("suffix") == _OLD_SUFFIX and not os.path.lexists(target):
                os.replace(path, target)
            elif os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
            done.append(path)
        except OSError:
            continue
    return done
