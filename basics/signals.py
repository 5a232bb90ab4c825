"""Termination signals as exceptions, so that ``finally`` blocks and atomic writes unwind.

By default SIGTERM and SIGHUP kill Python at once: no ``finally`` runs, a temporary file is left
behind, a sampler process loses its parent. :func:`install_termination_handlers` (called by the
CLI's ``main``) makes them raise :class:`Terminated`, a ``KeyboardInterrupt``, so that they unwind
like Ctrl-C: an atomic write leaves the old file or none, a recording closes its file. It also
restores SIGINT's handler, which a script that starts a command in the background leaves
ignored (``kill -INT`` would then do nothing).

    with deferred_termination():   # a few lines that must not be cut in the middle
        ...
"""
import contextlib
import signal
import threading

TERMINATION_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                            if hasattr(signal, name))

_state = {"deferring": 0, "pending": None}


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process gets SIGTERM or SIGHUP (``signum``)."""

    def __init__(self, signum):
        KeyboardInterrupt.__init__(self, signum)
        self.signum = signum

    @property
    def name(self):
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return "signal {}".format(self.signum)

    def __str__(self):
        return "terminated by {}".format(self.name)


def _raise_terminated(signum, frame):
    if _state["deferring"]:
        _state["pending"] = signum
        return
    raise Terminated(signum)


def install_termination_handlers():
    """Make SIGTERM and SIGHUP raise :class:`Terminated` and SIGINT raise KeyboardInterrupt in the
    main thread. Returns a function that puts the previous handlers back. Does nothing (and
    returns a no-op) outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}
    for signum in TERMINATION_SIGNALS:
        previous[signum] = signal.signal(signum, _raise_terminated)
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)

    def restore():
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    return restore


@contextlib.contextmanager
def deferred_termination():
    """Hold a SIGTERM/SIGHUP that arrives inside the block and raise it at the block's end (for
    a request and its answer on a pipe, which must not be separated)."""
    _state["deferring"] += 1
    try:
        yield
    finally:
        _state["deferring"] -= 1
        if not _state["deferring"] and _state["pending"] is not None:
            signum, _state["pending"] = _state["pending"], None
            raise Terminated(signum)
