import errno
import os
import re
import subprocess
import sys
import time

import pytest

from stylegan_tf import atomic
from stylegan_tf.atomic import NotOursError, atomic_dir, atomic_path, check_dir_target, is_disk_full, remove_stale_temps

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_atomic_path_renames_on_success_with_normal_permissions(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        open(tmp, "w").write("done")
        assert not target.exists()
    assert target.read_text() == "done"
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~umask
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_path_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_dir_refuses_to_replace_without_overwrite(tmp_path):
    target = tmp_path / "ds"
    with atomic_dir(target) as tmp:
        open(os.path.join(tmp, "a"), "w").write("1")
    with pytest.raises(FileExistsError):
        with atomic_dir(target) as tmp:
            open(os.path.join(tmp, "a"), "w").write("2")
    with atomic_dir(target, overwrite=True, ours={"a"}) as tmp:
        open(os.path.join(tmp, "a"), "w").write("3")
    assert (target / "a").read_text() == "3"
    assert sorted(os.listdir(tmp_path)) == ["ds"]


def _users_folder(folder):
    (folder / "sub").mkdir(parents=True)
    (folder / "thesis.txt").write_text("years of work")
    (folder / "sub" / "data.csv").write_text("1,2")
    (folder / "a").write_text("ours")


@pytest.mark.parametrize("ours", [None, {"a", "b"}, re.compile(r"[ab]"), lambda name: name in ("a", "b")])
def test_overwrite_never_replaces_a_folder_holding_files_that_are_not_ours(tmp_path, ours):
    target = tmp_path / "out"
    _users_folder(target)
    with pytest.raises(NotOursError, match=r"out is not a projection \(it holds (a and 2|sub and 1) more\); "
                                           r"--overwrite only replaces a projection: choose another folder$"):
        with atomic_dir(target, overwrite=True, ours=ours, what="a projection") as tmp:
            open(os.path.join(tmp, "a"), "w").write("new")
    assert sorted(os.listdir(target)) == ["a", "sub", "thesis.txt"]
    assert (target / "sub" / "data.csv").read_text() == "1,2"
    assert sorted(os.listdir(tmp_path)) == ["out"]  # and no temp left


def test_overwrite_replaces_a_folder_of_only_our_files_and_an_empty_one(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "a").write_text("old")
    (target / "b").write_text("old")
    with atomic_dir(target, overwrite=True, ours={"a", "b"}) as tmp:
        open(os.path.join(tmp, "a"), "w").write("new")
    assert os.listdir(target) == ["a"] and (target / "a").read_text() == "new"
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_dir(empty, overwrite=True) as tmp:  # nothing recognised: an empty folder still may go
        open(os.path.join(tmp, "a"), "w").write("new")
    assert os.listdir(empty) == ["a"]
    (empty / "x").write_text("theirs")
    with pytest.raises(NotOursError, match="it holds a and 1 more"):
        check_dir_target(empty, True)


def test_overwrite_refuses_a_file_a_link_a_subfolder_named_like_ours_and_the_working_folder(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("theirs")
    with pytest.raises(NotOursError, match="it is a file"):
        check_dir_target(tmp_path / "file", True, {"file"})
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(NotOursError, match="it is a link"):
        check_dir_target(tmp_path / "link", True, {"a"})
    (real / "a").mkdir()
    with pytest.raises(NotOursError, match="it holds a"):
        check_dir_target(real, True, {"a"})
    work = tmp_path / "work"
    (work / "deeper").mkdir(parents=True)
    monkeypatch.chdir(work / "deeper")
    for folder in (".", "..", str(work)):
        with pytest.raises(NotOursError, match="is the working folder or holds it"):
            check_dir_target(folder, True, lambda name: True)
    assert (work / "deeper").is_dir()


def test_overwrite_checks_again_at_the_replacement_and_replaceable_alone_judges(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "a").write_text("old")
    with pytest.raises(NotOursError, match="it holds late.txt"):
        with atomic_dir(target, overwrite=True, ours={"a"}) as tmp:
            check_dir_target(target, True, {"a"})                  # fine when the work starts ...
            (target / "late.txt").write_text("written meanwhile")  # ... then the user puts a file there
            open(os.path.join(tmp, "a"), "w").write("new")
    assert (target / "late.txt").exists() and (target / "a").read_text() == "old"
    seen = []
    with atomic_dir(target, overwrite=True, replaceable=seen.append) as tmp:  # the caller's own rule
        open(os.path.join(tmp, "a"), "w").write("new")
    assert seen == [str(target)] and os.listdir(target) == ["a"]


def test_atomic_path_suffix_for_writers_that_check_extensions(tmp_path):
    target = tmp_path / "net.keras"
    with atomic_path(target, suffix=".keras") as tmp:
        assert tmp.endswith(".keras") and os.path.dirname(tmp) == str(tmp_path)
        open(tmp, "w").write("zip")
    assert target.read_text() == "zip"
    assert os.listdir(tmp_path) == ["net.keras"]


def test_atomic_dir_result_has_the_usual_folder_permissions(tmp_path):
    with atomic_dir(tmp_path / "ds") as tmp:
        open(os.path.join(tmp, "a"), "w").write("1")
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(tmp_path / "ds").st_mode & 0o777 == 0o777 & ~umask  # mkdtemp alone gives 0700


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _temp_name(target, pid, host=None, suffix=".partial"):
    return f".{target}.tmp-{host or atomic._HOST}-{pid}-abc123{suffix}"


def test_remove_stale_temps_removes_only_ours_and_only_stale(tmp_path, monkeypatch):
    dead = _dead_pid()
    stale_dir = tmp_path / _temp_name("ds", dead)
    stale_dir.mkdir()
    (stale_dir / "ds-r02.tfrecords").write_bytes(b"x" * 1000)
    stale_file = tmp_path / _temp_name("net.keras", dead, suffix=".keras")
    stale_file.write_bytes(b"zip")
    mine = tmp_path / _temp_name("other", os.getpid())  # this process is alive and wrote it just now
    mine.mkdir()
    foreign = tmp_path / _temp_name("ds", dead, host="0123abcd")  # another host: its pids mean nothing here
    foreign.write_bytes(b"x")
    week_ago = time.time() - 7 * 24 * 3600
    os.utime(foreign, (week_ago, week_ago))  # a copied-in old mtime does not make a temp look abandoned
    # Not our naming: a user's hidden folders, the old unmarked temp names, a lookalike.
    users = [tmp_path / ".ds.abc123.partial", tmp_path / ".notes", tmp_path / f".ds.tmp-{dead}.partial"]
    for p in users:
        p.mkdir()
    (tmp_path / "ds").mkdir()
    removed = remove_stale_temps(tmp_path)
    assert sorted(removed) == sorted(str(p) for p in (stale_dir, stale_file))
    assert not stale_dir.exists() and not stale_file.exists()
    assert mine.exists() and foreign.exists() and all(p.exists() for p in users)
    assert remove_stale_temps(tmp_path) == []
    # Another host's temp counts as abandoned once untouched for FOREIGN_STALE_S (a live writer touches it).
    monkeypatch.setattr(atomic, "FOREIGN_STALE_S", -1)
    assert remove_stale_temps(tmp_path) == [str(foreign)]


def test_remove_stale_temps_sees_a_reused_pid(tmp_path, monkeypatch):
    # In a container the tool is often pid 1 on every run: a temp last written before the process that
    # now owns the pid started cannot be that process's.
    started = atomic._process_start_time(os.getpid())
    assert started is None or time.time() - 7 * 24 * 3600 < started <= time.time() + 2
    temp = tmp_path / _temp_name("ds", os.getpid())
    temp.mkdir()
    assert remove_stale_temps(tmp_path) == []
    monkeypatch.setattr(atomic, "_process_start_time", lambda pid: time.time() + 60)
    assert remove_stale_temps(tmp_path) == [str(temp)]


def test_remove_stale_temps_restores_a_dataset_moved_aside_by_a_killed_overwrite(tmp_path):
    dead = _dead_pid()
    old = tmp_path / _temp_name("ds", dead, suffix=".partial.old")  # the previous dataset, moved aside
    old.mkdir()
    (old / "ds-r02.tfrecords").write_bytes(b"old")
    new = tmp_path / _temp_name("ds", dead)  # the complete new one, never renamed into place
    new.mkdir()
    assert len(remove_stale_temps(tmp_path)) == 2
    assert sorted(os.listdir(tmp_path)) == ["ds"] and (tmp_path / "ds" / "ds-r02.tfrecords").read_bytes() == b"old"


def test_sigkilled_writer_leaves_a_temp_that_the_next_atomic_dir_removes(tmp_path):
    script = ("import os, sys\n"
              "from stylegan_tf.atomic import atomic_dir, atomic_path\n"
              "with atomic_path(sys.argv[1] + '/net.keras', suffix='.keras') as f:\n"
              "    open(f, 'wb').write(b'half')\n"
              "    with atomic_dir(sys.argv[1] + '/ds') as tmp:\n"
              "        open(os.path.join(tmp, 'ds-r02.tfrecords'), 'wb').write(b'x' * 100000)\n"
              "        os.kill(os.getpid(), 9)\n")
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, capture_output=True)
    assert r.returncode == -9
    left = sorted(os.listdir(tmp_path))
    assert len(left) == 2 and all(".tmp-" in n for n in left)  # what SIGKILL leaves: nothing can clean up
    with atomic_dir(tmp_path / "ds") as tmp:
        open(os.path.join(tmp, "ds-r02.tfrecords"), "w").write("new")
    assert sorted(os.listdir(tmp_path)) == ["ds"]


def test_is_disk_full():
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(ValueError("No space left on device"))
