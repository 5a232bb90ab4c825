"""Processes as Linux ``/proc`` shows them, for tests that check what a command leaves behind."""
import os
import time


def _stat_fields(pid):
    """The fields of ``/proc/PID/stat`` after the command name (state first), or None."""
    try:
        with open("/proc/{}/stat".format(pid)) as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (IOError, OSError, IndexError):
        return None


def state(pid):
    """The process state letter ("R", "S", "Z" ...), or "gone"."""
    fields = _stat_fields(pid)
    return fields[0] if fields else "gone"


def alive(pid):
    """True while ``pid`` runs (a zombie has ended)."""
    return state(pid) not in ("gone", "Z")


def children(pid):
    """Process ids whose parent is ``pid``: the kernel's list of each of its threads' children
    (``/proc/PID/task/TID/children``), else a scan of every ``/proc/N/stat``. (qemu-aarch64 7.2's
    user-mode emulation lists no process in ``/proc``, so the scan alone finds none there.)"""
    found, listed = set(), False
    try:
        tasks = os.listdir("/proc/{}/task".format(pid))
    except OSError:
        tasks = []
    for task in tasks:
        try:
            with open("/proc/{}/task/{}/children".format(pid, task)) as handle:
                found.update(int(child) for child in handle.read().split())
            listed = True
        except (IOError, OSError, ValueError):
            continue
    if listed:
        return sorted(found)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            if fields and int(fields[1]) == pid:
                found.add(int(entry))
    return sorted(found)


def exe_name(pid):
    """The file name of the program ``pid`` runs, or None."""
    try:
        return os.path.basename(os.readlink("/proc/{}/exe".format(pid)))
    except OSError:
        return None


def child_env(root, **extra):
    """``os.environ`` for a child Python that imports the toolkit from ``root``: ``root`` first on
    ``PYTHONPATH``, the caller's entries after it (an installation that lives on PYTHONPATH, as
    under an emulator, stays importable), and ``extra``."""
    paths = [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths), **extra)


def wait_for(condition, timeout_s):
    """True as soon as ``condition()`` is, polled every 50 ms; its last value after
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()

