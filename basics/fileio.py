"""Atomic file writes (temp file in the same folder + os.replace) and hashing helpers.

A written file gets the mode a plain ``open(path, "w")`` would give it (0666 less the umask), or
keeps the mode of the file it replaces; an OSError while writing (a full disk, a read-only folder)
becomes one :class:`basics.errors.ToolkitError` naming the path, and the old file stays as it was.
"""
import contextlib
import errno
import hashlib
import json
import os
import stat
import tempfile

from basics.errors import InputError

_REASONS = {errno.ENOSPC: "the disk is full",
            getattr(errno, "EDQUOT", -1): "the disk quota is exceeded",
            errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
            errno.EPERM: "permission denied", errno.ENOTDIR: "a parent is not a folder",
            errno.EISDIR: "it is a folder", errno.ENOENT: "no such folder"}


class WriteError(InputError):
    """A file could not be written (full disk, read-only folder ...); nothing was replaced."""


def write_error(path, exc):
    """The one-line :class:`WriteError` for an OSError ``exc`` raised while writing ``path``."""
    reason = _REASONS.get(getattr(exc, "errno", None)) or getattr(exc, "strerror", None) or str(exc)
    kept = " (the old file is unchanged)" if os.path.isfile(path) else ""
    return WriteError("cannot write {}: {}{}".format(path, reason, kept))


def default_file_mode():
    """The mode ``open(path, "w")`` gives a new file here: 0o666 less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def set_final_mode(tmp, path):
    """Give the temp file ``tmp`` the mode of the existing ``path`` (kept on replace), else the
    umask's default (``mkstemp`` creates 0600 files that other users cannot read)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = default_file_mode()
    os.chmod(tmp, mode)


@contextlib.contextmanager
def atomic_open(path, mode="wb"):
    """Open a temp file next to ``path``; on success it replaces ``path``, on error it is removed.

    OSErrors of the file system (full disk, read-only folder ...) become a :class:`WriteError`.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                                   dir=folder)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        try:
            with os.fdopen(fd, mode) as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            set_final_mode(tmp, path)
            os.replace(tmp, path)
        except OSError as exc:
            if exc.errno is None:  # not the file system's: e.g. a library's own OSError
                raise
            raise write_error(path, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def write_bytes_atomic(path, data):
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def write_text_atomic(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path, obj):
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def sha256_bytes(data):
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path, chunk_bytes=1 << 20):
    """Hex sha256 of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(block)
    return digest.hexdigest()
