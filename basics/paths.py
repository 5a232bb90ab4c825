"""Checks of a path before anything is written to it: is it writable, is it the same file as
another, what kind of file is it. Used by the CLI's output guard (``toolkit.cli.outputs``) and by
library code that writes files it was given (the memo file)."""
import errno
import os
import tempfile

from basics.errors import InputError

# file kinds by name; the ones a user would hate to lose need --force to be overwritten by
# another kind of file
_KINDS = ((".onnx.json", "model sidecar"), (".engine.json", "engine sidecar"),
          (".onnx", "ONNX model"), (".engine", "engine"), (".trt", "engine"), (".plan", "engine"),
          (".yaml", "deployment spec"), (".yml", "deployment spec"), (".pt", "weights file"),
          (".pth", "weights file"), (".npz", ".npz data file"), (".npy", ".npy data file"),
          (".py", "Python source file"), (".cache", "calibration cache"), (".csv", "CSV file"),
          (".png", "PNG image"), (".json", "JSON file"))
PRECIOUS_KINDS = frozenset(["model sidecar", "engine sidecar", "ONNX model", "engine",
                            "deployment spec", "weights file", ".npz data file", ".npy data file",
                            "Python source file", "calibration cache"])


def file_kind(path):
    """What ``path`` is by its name: "ONNX model", "engine sidecar", ... or None when unknown."""
    name = os.path.basename(os.fspath(path)).lower()
    for suffix, kind in _KINDS:
        if name.endswith(suffix):
            return kind
    return None


def same_file(first, second):
    """True when the two paths name one file (same real path, or hard links of one file)."""
    first, second = os.fspath(first), os.fspath(second)
    if os.path.realpath(first) == os.path.realpath(second):
        return True
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def check_writable_file(path, what="output"):
    """InputError (one line) unless a file can be written at ``path``: not empty, not a folder,
    every existing parent a folder, the nearest existing folder writable and its disk not full.
    Creates nothing (a missing folder is made when the file is written)."""
    path = os.fspath(path) if path is not None else ""
    if not path.strip():
        raise InputError("{}: the path is empty".format(what))
    if os.path.isdir(path):
        raise InputError("{} {} is a folder; give a file path".format(what, path))
    if os.path.exists(path) and not os.path.isfile(path):
        raise InputError("{} {} is not a regular file".format(what, path))
    check_writable_folder(os.path.dirname(os.path.abspath(path)), what, path)


def check_writable_folder(folder, what="output", shown=None):
    """InputError unless files can be written in ``folder`` (made if missing; its nearest existing
    ancestor must be a writable folder on a disk that is not full)."""
    shown = shown or folder
    folder = os.path.abspath(os.fspath(folder))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise InputError("{} {}: {} is a file, not a folder".format(what, shown, folder))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise InputError("{} {}: {} is a file, not a folder".format(what, shown, existing))
    try:
        fd, probe = tempfile.mkstemp(prefix=".toolkit-write-check.", dir=existing)
    except OSError as exc:
        reason = {errno.EROFS: "the file system is read-only", errno.ENOSPC: "the disk is full",
                  errno.EACCES: "permission denied", errno.EPERM: "permission denied"}.get(
                      exc.errno, exc.strerror or str(exc))
        raise InputError("{} {}: cannot write in {}: {}".format(what, shown, existing,
                                                                reason)) from None
    os.close(fd)
    os.remove(probe)
    try:
        stats = os.statvfs(existing)
    except (AttributeError, OSError):
        return
    if stats.f_bavail == 0 and stats.f_blocks > 0:
        raise InputError("{} {}: the disk of {} is full".format(what, shown, existing))
