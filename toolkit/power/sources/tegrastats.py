"""Power rails parsed from ``tegrastats --interval MS`` run as a subprocess (the fallback on a
Jetson whose sysfs rails cannot be read directly).

Three line formats carry the rails, each ``NAME cur/avg`` in milliwatts:

- JetPack 4: ``POM_5V_IN 933/933`` (no unit);
- JetPack 5: ``VDD_IN 2390mW/2390mW``;
- newer releases: ``VDD_IN 2390mW/2390mW/2400mW`` (a third value).

The first value (the current reading) is used; each line is timestamped when it arrives.
"""
import collections
import os
import re
import select
import shlex
import shutil
import subprocess
import time

from basics.errors import InputError
from toolkit.power.boards import detect_board, total_policy
from toolkit.power.lag import BlockAveragingSensor
from toolkit.power.sources.base import Source, SourceUnavailable

MIN_INTERVAL_MS = 50
_RAIL = re.compile(r"(?<![\w@])([A-Za-z][A-Za-z0-9_]*) (\d+)(mW)?/(\d+)(mW)?(?:/(\d+)(mW)?)?"
                   r"(?=\s|$)")

FORMATS = ("jetpack4", "jetpack5", "jetpack6")


def parse_line(line):
    """``(format, {rail: (cur_mw, avg_mw, third_mw or None)})`` of one tegrastats line.

    ``format`` is one of :data:`FORMATS` (None when the line has no rails). Values without a
    ``mW`` unit (JetPack 4) are milliwatts too.
    """
    rails = collections.OrderedDict()
    fmt = None
    for match in _RAIL.finditer(line):
        name, cur, unit_a, avg, unit_b, third, unit_c = match.groups()
        if bool(unit_a) != bool(unit_b) or (third is not None and not unit_a):
            continue  # not a power field (mixed units)
        if not unit_a:
            kind = "jetpack4"
        elif third is None:
            kind = "jetpack5"
        else:
            kind = "jetpack6"
        fmt = fmt or kind
        rails[name] = (float(cur), float(avg), float(third) if third is not None else None)
    return fmt, rails


def _command(cmd):
    try:
        parts = shlex.split(cmd) if isinstance(cmd, str) else [str(p) for p in cmd]
    except ValueError as exc:  # unbalanced quotes
        raise InputError("tegrastats command {!r} cannot be split: {}".format(cmd, exc)) from None
    if not parts:
        raise InputError("tegrastats_cmd is empty")
    return parts


class TegrastatsSource(Source):
    """Rails from a running ``tegrastats`` (one sample per line)."""

    kind = "tegrastats"
    push = True

    def __init__(self, cmd, interval_ms, rails, fmt, board, averaging_s=0.0, averaging_note=""):
        self.cmd = list(cmd)
        self.interval_ms = int(interval_ms)
        self.format = fmt
        Source.__init__(self, [(rail, "power_mw") for rail in rails], total_policy(board, rails),
                        "tegrastats ({} line format, every {} ms: '{}')".format(
                            fmt, self.interval_ms, " ".join(self.cmd)), board=board)
        self.averaging_s = averaging_s
        self.averaging_note = averaging_note
        # the INA3221 keeps each cycle's mean until the next: readings lag by about a period
        self.sensor = BlockAveragingSensor(averaging_s) if averaging_s > 0 else None
        self.min_period_s = self.interval_ms / 1000.0
        self._proc = None
        self._buffer = b""
        self.lines_coalesced = 0

    def open(self):
        self.close()
        try:
            self._proc = subprocess.Popen(self.cmd + ["--interval", str(self.interval_ms)],
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        except (IOError, OSError) as exc:
            raise InputError("cannot run {}: {}".format(" ".join(self.cmd), exc)) from None
        self._buffer = b""

    def fileno(self):
        return self._proc.stdout.fileno()

    def read(self):
        fd = self.fileno()
        ready, _, _ = select.select([fd], [], [], 0)
        if not ready:
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            code = self._proc.poll()
            raise InputError("tegrastats exited{}".format(
                "" if code is None else " with code {}".format(code)))
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        lines = [line for line in lines if line.strip()]
        if not lines:
            return None
        self.lines_coalesced += len(lines) - 1
        return self.values(lines[-1].decode("utf-8", "replace"))

    def values(self, line):
        """The sample of one line, in column order (InputError if a rail is missing)."""
        _, rails = parse_line(line)
        try:
            return tuple(rails[rail][0] for rail, _ in self.columns)
        except KeyError as exc:
            raise InputError("tegrastats line lacks rail {}: {!r}".format(
                exc, line[:120])) from None

    def close(self):
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()


def first_line(cmd, interval_ms, timeout_s):
    """Run tegrastats until its first non-empty line (or ``timeout_s``); returns the line."""
    try:
        proc = subprocess.Popen(cmd + ["--interval", str(interval_ms)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    except (IOError, OSError) as exc:
        raise SourceUnavailable("cannot run {}: {}".format(" ".join(cmd), exc)) from None
    deadline = time.monotonic() + timeout_s
    buffer = b""
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.05)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buffer += chunk
                lines = [l for l in buffer.split(b"\n")[:-1] if l.strip()]
                if lines:
                    return lines[0].decode("utf-8", "replace")
        err = b""
        if proc.poll() is not None:
            err = proc.stderr.read() or b""
        raise SourceUnavailable("{} printed no line within {:.1f} s{}".format(
            " ".join(cmd), timeout_s, (": " + err.decode("utf-8", "replace").strip()[:100])
            if err.strip() else ""))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def discover(config):
    """A :class:`TegrastatsSource` (SourceUnavailable when tegrastats is missing or shows no
    rails)."""
    cmd = _command(config.tegrastats_cmd)
    if shutil.which(cmd[0]) is None:
        raise SourceUnavailable("'{}' not found on PATH".format(cmd[0]))
    interval_ms = max(MIN_INTERVAL_MS, int(round(1000.0 / config.rate_hz)))
    line = first_line(cmd, interval_ms, timeout_s=interval_ms / 1000.0 + 5.0)
    fmt, rails = parse_line(line)
    if not rails:
        raise SourceUnavailable("tegrastats output has no power rails: {!r}".format(line[:100]))
    averaging_s, note = 0.0, "unknown"
    if fmt == "jetpack4":
        from toolkit.power.sources.ina3221 import JETPACK4_AVERAGING_S
        averaging_s, note = JETPACK4_AVERAGING_S, "assumed: the ina3221x driver's default (~0.42 s)"
    else:
        try:
            from toolkit.power.sources.ina3221 import discover_rails
            _, _, averaging_s, note = discover_rails(config.sysfs_root)
        except InputError:
            pass
    return TegrastatsSource(cmd, interval_ms, list(rails), fmt, detect_board(config.sysfs_root),
                            averaging_s, note)
