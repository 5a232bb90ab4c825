"""Processes as Linux ``/proc`` shows them, for tests that check what a command leaves behind."""
import os


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
    """Process ids whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            if fields and int(fields[1]) == pid:
                found.append(int(entry))
    return found


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

