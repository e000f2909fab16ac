import os

import pytest

from stylegan_tf.atomic import atomic_dir, atomic_path


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
    with atomic_dir(target, overwrite=True) as tmp:
        open(os.path.join(tmp, "a"), "w").write("3")
    assert (target / "a").read_text() == "3"
    assert sorted(os.listdir(tmp_path)) == ["ds"]


def test_atomic_path_suffix_for_writers_that_check_extensions(tmp_path):
    target = tmp_path / "net.keras"
    with atomic_path(target, suffix=".keras") as tmp:
        assert tmp.endswith(".keras") and os.path.dirname(tmp) == str(tmp_path)
        open(tmp, "w").write("zip")
    assert target.read_text() == "zip"
    assert os.listdir(tmp_path) == ["net.keras"]
