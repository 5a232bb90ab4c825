"""The sampler process: reads a power source at a fixed rate outside the inference process.

A separate process (multiprocessing, ``spawn`` by default: safe beside ONNX Runtime's threads and
on every Python from 3.6) so that neither side's timing is skewed by the other's GIL. Samples are
stamped with ``time.monotonic()`` (one clock for all processes on Linux) and kept in the sampler
until the parent asks for them (``fetch``), so the inference process pays nothing while it runs.

Shutdown is clean in every case: ``stop`` asks, then terminates, then kills; the sampler exits by
itself when its pipe to the parent closes (the parent died or was killed) or when it is
re-parented; it ignores Ctrl-C and SIGHUP sent to the process group (the parent handles them
and stops the sampler after collecting its samples).
"""
import array
import multiprocessing
import os
import select
import signal
import sys
import time

import numpy as np

from basics.errors import InputError, ToolkitError
from basics.signals import deferred_termination

COMMANDS = ("fetch", "stop", "pause", "resume")


def _one_line(exc):
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if isinstance(exc, ToolkitError):
        return text or type(exc).__name__
    return "{}: {}".format(type(exc).__name__, text) if text else type(exc).__name__


def _arrays(times, values, width):
    t = np.frombuffer(times, dtype=np.float64).copy() if len(times) else np.zeros(0)
    v = (np.frombuffer(values, dtype=np.float64).copy().reshape(-1, width) if len(values)
         else np.zeros((0, width)))
    return t, v


def sampler_main(conn, parent_end, source, rate_hz, nice=0):
    """Body of the sampler process: sample ``source`` at ``rate_hz`` and answer the parent."""
    if nice:
        try:
            os.nice(int(nice))
        except OSError:  # lowering priority always works; raising needs privileges
            pass
    # Ctrl-C and a hang-up go to the whole process group: the parent handles them and stops this
    # process after its last fetch. SIGTERM keeps its default (multiprocessing's terminate()).
    for signum in (signal.SIGINT, getattr(signal, "SIGHUP", None)):
        try:
            if signum is not None:
                signal.signal(signum, signal.SIG_IGN)
        except ValueError:  # not the main thread (in-process use)
            pass
    if parent_end is not None:
        parent_end.close()  # the parent's end, inherited with fork: keep only ours for EOF
    parent_pid = os.getppid()
    try:
        source.open()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, one line
        conn.send(("error", _one_line(exc)))
        conn.close()
        return
    conn.send(("ready", os.getpid()))
    width = len(source.columns)
    period = 1.0 / float(rate_hz)
    times, values = array.array("d"), array.array("d")
    error = None
    paused = False
    next_tick = time.monotonic()
    conn_fd = conn.fileno()
    try:
        while True:
            # one select() per tick: it sleeps to the tick (microsecond timeout) or wakes for a
            # command from the parent
            if error is not None or paused:
                ready, _, _ = select.select([conn_fd], [], [], 0.5)
            elif source.push:
                ready, _, _ = select.select([conn_fd, source.fileno()], [], [], 0.5)
            else:
                ready, _, _ = select.select([conn_fd], [], [],
                                            max(0.0, next_tick - time.monotonic()))
            if conn_fd in ready:
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    break  # the parent is gone
                if message in COMMANDS:
                    t, v = _arrays(times, values, width)
                    times, values = array.array("d"), array.array("d")
                    conn.send(("samples", t, v, error))
                    if message == "stop":
                        break
                    if message in ("pause", "resume"):
                        paused = message == "pause"
                        next_tick = time.monotonic()
                    continue
            if os.getppid() != parent_pid:
                break  # orphaned
            if error is not None or paused:
                continue
            try:
                if source.push:
                    stamp = time.monotonic()
                    sample = source.read()
                    if sample is None:
                        continue
                else:
                    now = time.monotonic()
                    if now < next_tick:
                        continue
                    sample = source.read()
                    after = time.monotonic()
                    stamp = (now + after) / 2.0
                    next_tick += period
                    if next_tick < after:  # fell behind: skip missed ticks, keep the phase
                        next_tick += period * (int((after - next_tick) / period) + 1)
                times.append(stamp)
                values.extend(sample)
            except Exception as exc:  # noqa: BLE001 - reported through the next fetch
                error = _one_line(exc)
    finally:
        source.close()
        try:
            conn.close()
        except OSError:
            pass


def _start_method(wanted):
    """``wanted``, except where spawn cannot work: a main script that is not a file (``python -``
    reading stdin) cannot be re-imported by a spawned child, so fork is used (the sampler only
    runs its own loop in the child)."""
    if wanted in ("spawn", "forkserver"):
        main_file = getattr(sys.modules.get("__main__"), "__file__", None)
        if main_file and not os.path.exists(main_file) and hasattr(os, "fork"):
            return "fork"
    return wanted


class Sampler(object):
    """Parent-side handle of the sampler process for one opened-in-the-child source."""

    def __init__(self, source, rate_hz, start_method="spawn", ready_timeout_s=60.0, nice=0):
        self.source = source
        self.nice = int(nice)
        self.rate_hz = float(rate_hz)
        self.start_method = start_method
        self.ready_timeout_s = float(ready_timeout_s)
        self.process = None
        self.error = None       # why sampling stopped early (None while healthy)
        self._conn = None

    @property
    def pid(self):
        return self.process.pid if self.process is not None else None

    @property
    def alive(self):
        return self.process is not None and self.process.is_alive()

    def start(self):
        ctx = multiprocessing.get_context(_start_method(self.start_method))
        parent_end, child_end = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=sampler_main, name="toolkit-power-sampler",
                                   args=(child_end, parent_end, self.source, self.rate_hz,
                                         self.nice))
        self.process.daemon = True
        self.process.start()
        child_end.close()
        self._conn = parent_end
        try:
            if not parent_end.poll(self.ready_timeout_s):
                raise ToolkitError("the power sampler did not start within {:.0f} s".format(
                    self.ready_timeout_s))
            message = parent_end.recv()
        except (EOFError, OSError):
            self._reap(1.0)
            raise ToolkitError("the power sampler exited while starting (exit code {})".format(
                self.process.exitcode)) from None
        except BaseException:
            self._reap(0.0)
            raise
        if message[0] == "error":
            self._reap(2.0)
            raise InputError(message[1])
        return message[1]

    def fetch(self, timeout_s=5.0):
        """Samples collected since the last fetch: ``(t, values)``; None once the sampler is
        gone (``error`` then says why)."""
        return self._request("fetch", timeout_s)

    def pause(self, timeout_s=5.0):
        """Stop reading the source (the process idles on its pipe); returns the samples so far."""
        return self._request("pause", timeout_s)

    def resume(self, timeout_s=5.0):
        """Read the source again after :meth:`pause`."""
        return self._request("resume", timeout_s)

    def _request(self, message, timeout_s):
        if self._conn is None:
            return None
        try:
            with deferred_termination():  # a request and its answer are never separated
                self._conn.send(message)
                if not self._conn.poll(timeout_s):
                    self._fail("the sampler stopped answering")
                    return None
                reply = self._conn.recv()
        except (EOFError, OSError):
            self._fail(None)
            return None
        _, t, v, error = reply
        if error is not None and self.error is None:
            self.error = error
        return t, v

    def _fail(self, reason):
        if self.error is None:
            code = self.process.exitcode if self.process is not None else None
            self.error = reason or "the sampler process exited (exit code {})".format(code)
        self._close_conn()

    def _close_conn(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None

    def stop(self, timeout_s=5.0):
        """Collect the last samples and end the process (asks, then terminates, then kills)."""
        last = None
        if self._conn is not None and self.alive:
            last = self._request("stop", timeout_s)
        self._close_conn()
        self._reap(timeout_s)
        return last

    def _reap(self, timeout_s):
        process = self.process
        if process is None:
            return
        process.join(timeout_s)
        if process.is_alive():
            process.terminate()
            process.join(2.0)
        if process.is_alive():
            os.kill(process.pid, signal.SIGKILL)
            process.join(2.0)
