"""Power traces on disk (CSV, written atomically) and as plots (PNG, matplotlib imported lazily).

The CSV starts with ``#`` metadata lines (source, board, total policy as JSON), then a header
``t_s,<rail>.<quantity>,...`` and one row per sample; ``t_s`` counts from the first sample.
Counters are written unwrapped, as cumulative ``energy_mj`` from the first sample. Values are
written at full precision (``repr``): cumulative counters reach 1e8 mJ within an hour. A
recording (:class:`TraceWriter`) is streamed and flushed as it goes and ends with an
``# end: {...}`` line; a file without it was cut short (its rows are still readable).
"""
import csv
import io
import json
import os

import numpy as np

from basics.errors import InputError
from basics.fileio import atomic_open
from basics.lazy import lazy_import
from toolkit.power.boards import TotalPolicy
from toolkit.power.energy import Trace
from toolkit.power.sources.base import QUANTITIES

MAGIC = "# toolkit power trace v1"


def _number(value):
    """A float written at full precision (shortest text that reads back to the same float)."""
    return repr(float(value))


class TraceWriter(object):
    """Writes a trace to a CSV file as it grows: the header at once, then the new rows at each
    :meth:`write` (flushed), and an ``# end:`` line at :meth:`close`. The file is written in
    place, not atomically, so that a recording killed with SIGKILL is readable up to its last
    flush (:func:`read_trace_csv` drops a cut last line, and says the end line is missing).

    Counters are written unwrapped, cumulative from the first sample.
    """

    def __init__(self, path, columns, info, handle=None):
        self.path = path
        self.columns = [tuple(c) for c in columns]
        self.rows = 0
        self._start = None
        self._own = handle is None
        self._handle = open(path, "w") if handle is None else handle
        meta = {"source": info.get("source"), "description": info.get("description"),
                "board": info.get("board"), "policy": info.get("policy"),
                "averaging_s": info.get("averaging_s"), "sensor": info.get("sensor")}
        lines = [MAGIC]
        lines += ["# {}: {}".format(key, json.dumps(meta[key])) for key in sorted(meta)]
        lines.append(",".join(["t_s"] + ["{}.{}".format(r, q) for r, q in self.columns]))
        self._handle.write("\n".join(lines) + "\n")
        self._handle.flush()

    def write(self, trace):
        """Append the rows of ``trace`` not written yet, and flush them to the file."""
        t = trace.t
        if t.size <= self.rows:
            return 0
        if self._start is None:
            self._start = float(t[0])
        columns = []
        for rail, quantity in self.columns:
            if quantity == "energy_mj":
                cumulative = trace.cumulative_mj(rail)
                columns.append(cumulative - cumulative[0])
            else:
                columns.append(trace.column(rail, quantity))
        out = io.StringIO()
        for i in range(self.rows, t.size):
            out.write(",".join([_number(t[i] - self._start)]
                               + [_number(values[i]) for values in columns]) + "\n")
        self._handle.write(out.getvalue())
        self._handle.flush()
        written, self.rows = t.size - self.rows, t.size
        return written

    def close(self, reason="completed"):
        """Write the end line (``reason``: why the recording ended), sync and close."""
        handle, self._handle = self._handle, None
        if handle is None:
            return
        try:
            handle.write("# end: {}\n".format(json.dumps({"samples": self.rows,
                                                          "reason": reason})))
            handle.flush()
            if self._own:
                os.fsync(handle.fileno())
        finally:
            if self._own:
                handle.close()


def write_trace_csv(path, trace, info):
    """Write ``trace`` (a :class:`Trace`) with ``info`` (``Source.info()``) to ``path``
    atomically, values at full precision."""
    with atomic_open(path, "w") as handle:
        writer = TraceWriter(path, trace.columns, info, handle=handle)
        writer.write(trace)
        writer.close()


def read_trace_csv(path):
    """``(trace, meta)`` from a CSV written by :func:`write_trace_csv` (InputError if malformed)."""
    if not os.path.isfile(path):
        raise InputError("no such trace file: {}".format(path))
    with open(path, "rb") as handle:
        try:
            text = handle.read().decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("{} is not a toolkit power trace (not text)".format(path)) from None
    lines = text.splitlines()
    cut = bool(text) and not text.endswith("\n") and len(lines) > 1
    if cut:  # a recording killed in the middle of a write: keep what was flushed whole
        lines = lines[:-1]
    if not lines or lines[0].strip() != MAGIC:
        raise InputError("{} is not a toolkit power trace (first line should be '{}')".format(
            path, MAGIC))
    meta, body = {}, []
    for number, line in enumerate(lines[1:], start=2):
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            try:
                meta[key.strip()] = json.loads(value)
            except ValueError:
                raise InputError("{} line {}: malformed metadata {!r}".format(
                    path, number, line[:80])) from None
        elif line.strip():
            body.append((number, line))
    if not body:
        raise InputError("{} has no header row".format(path))
    header = next(csv.reader([body[0][1]]))
    if not header or header[0] != "t_s":
        raise InputError("{} line {}: header must start with t_s, got {!r}".format(
            path, body[0][0], body[0][1][:80]))
    columns = []
    for name in header[1:]:
        rail, _, quantity = name.rpartition(".")
        if not rail or quantity not in QUANTITIES:
            raise InputError("{} line {}: column {!r} is not <rail>.<{}>".format(
                path, body[0][0], name, "|".join(QUANTITIES)))
        columns.append((rail, quantity))
    rows = []
    for number, line in body[1:]:
        cells = next(csv.reader([line]))
        if len(cells) != len(header):
            raise InputError("{} line {}: {} values for {} columns".format(
                path, number, len(cells), len(header)))
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            raise InputError("{} line {}: not a number in {!r}".format(
                path, number, line[:80])) from None
    data = np.array(rows, dtype=np.float64).reshape(len(rows), len(header))
    if data.shape[0] > 1 and np.any(np.diff(data[:, 0]) < 0):
        raise InputError("{}: times (t_s) go backwards".format(path))
    trace = Trace(columns)
    trace.append(data[:, 0], data[:, 1:])
    meta["cut_last_line"] = cut
    return trace, meta


def total_power_series(trace, policy):
    """``(t, total power mW)`` following ``policy`` (a TotalPolicy) on the trace's grid."""
    series = [trace.power_series(rail) for rail in policy.total_rails if rail in trace.rails]
    if not series:
        return None
    t = series[0][0]
    return t, np.sum([np.interp(t, st, sp) for st, sp in series], axis=0)


def plot_trace(path, trace, meta):
    """Draw each rail's power over time (and the total) into a PNG at ``path`` (atomically)."""
    lazy_import("matplotlib", "plotting power traces")
    backend = lazy_import("matplotlib.backends.backend_agg", "plotting power traces")
    figure_module = lazy_import("matplotlib.figure", "plotting power traces")
    if len(trace) < 2:
        raise InputError("the trace has {} sample(s): nothing to plot".format(len(trace)))
    policy = TotalPolicy.from_dict(meta.get("policy") or {"summed": trace.rails})
    figure = figure_module.Figure(figsize=(10, 4.5), dpi=100)
    backend.FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    start = trace.t[0]
    for rail in trace.rails:
        t, power = trace.power_series(rail)
        axes.plot(t - start, power / 1000.0, linewidth=1.0,
                  label=rail + (" (total)" if rail == policy.total else ""))
    if policy.is_summed:
        total = total_power_series(trace, policy)
        if total is not None:
            axes.plot(total[0] - start, total[1] / 1000.0, color="black", linewidth=1.6,
                      label="total (sum)")
    axes.set_xlabel("time (s)")
    axes.set_ylabel("power (W)")
    axes.set_ylim(bottom=0)
    title = "{}{} power rails; total = {}".format(
        meta["board"] + ": " if meta.get("board") else "", meta.get("source") or "", policy.label)
    figure.suptitle(title if len(title) < 120 else title[:117] + "...", fontsize=9)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png")
