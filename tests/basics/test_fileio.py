"""Atomic writes: a full disk gives one ToolkitError and keeps the old file; modes follow the umask."""
import errno
import os
import stat

import pytest

from basics import fileio
from basics.errors import ToolkitError


def _leftovers(folder):
    return [name for name in os.listdir(str(folder)) if name.endswith(".tmp")]


def test_full_disk_is_one_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    path.write_bytes(b"old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ToolkitError, match=r"cannot write .*report.json: the disk is full \(the "
                                           r"old file is unchanged\)"):
        fileio.write_json_atomic(str(path), {"a": 1})
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_full_disk_on_write_is_one_error(tmp_path, monkeypatch):
    real_fdopen = os.fdopen

    class Full(object):
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(ToolkitError, match="the disk is full"):
        fileio.write_bytes_atomic(str(tmp_path / "m.engine"), b"x" * 10)
    assert not (tmp_path / "m.engine").exists()
    assert _leftovers(tmp_path) == []


def test_folder_that_cannot_be_made_is_one_error(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ToolkitError, match="cannot write"):
        fileio.write_text_atomic(str(tmp_path / "file.txt" / "out.json"), "{}")


def test_new_file_gets_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        fileio.write_text_atomic(str(tmp_path / "a.txt"), "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(str(tmp_path / "a.txt")).st_mode) == 0o644


def test_replace_keeps_the_existing_mode(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    os.chmod(str(path), 0o640)
    fileio.write_text_atomic(str(path), "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o640
