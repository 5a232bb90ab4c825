"""Energy from timestamped samples: trapezoid integration of power, differences of counters.

Times are seconds of ``time.monotonic()`` (one clock for every process on Linux), power is mW,
energy mJ (mW x s). A window ``[start, end]`` is integrated with the power linearly interpolated
at both edges; a counter (RAPL, NVML) is unwrapped at its wrap-around range and interpolated at the
edges, then differenced.
"""
import numpy as np


def integrate_power_mj(t, power_mw, start, end):
    """Energy (mJ) of ``power_mw`` sampled at ``t`` over ``[start, end]``.

    ``power_mw`` is (N,) or (N, R) (one column per rail; returns (R,)). The samples must cover
    the window (``t[0] <= start`` and ``t[-1] >= end``; ValueError otherwise).
    """
    t = np.asarray(t, dtype=np.float64)
    power = np.asarray(power_mw, dtype=np.float64)
    if end < start:
        raise ValueError("window ends before it starts")
    if t.size == 0 or t[0] > start or t[-1] < end:
        raise ValueError("samples do not cover the window")
    squeeze = power.ndim == 1
    if squeeze:
        power = power[:, None]
    inside = (t > start) & (t < end)
    times = np.concatenate(([start], t[inside], [end]))
    edges = np.array([[np.interp(edge, t, power[:, r]) for r in range(power.shape[1])]
                      for edge in (start, end)])
    values = np.concatenate((edges[:1], power[inside], edges[1:]))
    energy = ((values[1:] + values[:-1]) * np.diff(times)[:, None]).sum(axis=0) / 2.0
    return float(energy[0]) if squeeze else energy


def unwrap_counter(raw, wrap=None):
    """Cumulative, non-decreasing values of a counter that wraps to 0 after ``wrap``.

    A decrease is a wrap-around (``wrap`` is added) or, without ``wrap``, a reset (the step is
    counted as 0). Returns (cumulative array starting at ``raw[0]``, number of decreases).
    """
    raw = np.asarray(raw, dtype=np.float64)
    if raw.size < 2:
        return raw.copy(), 0
    steps = np.diff(raw)
    down = steps < 0
    if wrap:
        steps[down] += float(wrap)
    else:
        steps[down] = 0.0
    return np.concatenate(([raw[0]], raw[0] + np.cumsum(steps))), int(down.sum())


def counter_energy_mj(t, cumulative, start, end):
    """Energy (mJ) between ``start`` and ``end`` of an unwrapped counter (mJ) sampled at ``t``."""
    t = np.asarray(t, dtype=np.float64)
    if t.size == 0 or t[0] > start or t[-1] < end:
        raise ValueError("samples do not cover the window")
    return float(np.interp(end, t, cumulative) - np.interp(start, t, cumulative))


class Trace(object):
    """Samples of one source: times ``t`` (N,) and ``data`` (N, columns), columns ``(rail,
    quantity)``; counters (``energy_mj``) wrap at ``wraps[rail]`` mJ. Chunks are appended as
    they arrive from the sampler."""

    def __init__(self, columns, wraps=None):
        self.columns = [tuple(c) for c in columns]
        self.wraps = dict(wraps or {})
        self._chunks_t = []
        self._chunks_v = []
        self._t = np.zeros(0)
        self._v = np.zeros((0, len(self.columns)))
        self._unwrapped = {}

    def append(self, t, values):
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        if t.size:
            self._chunks_t.append(t)
            self._chunks_v.append(np.asarray(values, dtype=np.float64).reshape(
                t.size, len(self.columns)))
            self._unwrapped = {}

    def _merge(self):
        if self._chunks_t:
            self._t = np.concatenate([self._t] + self._chunks_t)
            self._v = np.concatenate([self._v] + self._chunks_v)
            self._chunks_t, self._chunks_v = [], []

    @property
    def t(self):
        self._merge()
        return self._t

    @property
    def data(self):
        self._merge()
        return self._v

    def __len__(self):
        return len(self.t)

    @property
    def rails(self):
        seen = []
        for rail, _ in self.columns:
            if rail not in seen:
                seen.append(rail)
        return seen

    def has(self, rail, quantity):
        return (rail, quantity) in self.columns

    def column(self, rail, quantity):
        return self.data[:, self.columns.index((rail, quantity))]

    def cumulative_mj(self, rail):
        """Unwrapped counter of ``rail`` (mJ)."""
        if rail not in self._unwrapped:
            self._unwrapped[rail] = unwrap_counter(self.column(rail, "energy_mj"),
                                                   self.wraps.get(rail))[0]
        return self._unwrapped[rail]

    def covers(self, start, end, hold_s=0.0):
        """True when the samples span ``[start, end]`` (the end may be up to ``hold_s`` after the
        last sample: its value is then held)."""
        t = self.t
        return t.size > 0 and t[0] <= start and t[-1] + hold_s >= end

    def largest_gap(self, start, end):
        """The longest time without a sample within ``[start, end]`` (edges included), seconds."""
        t = self.t
        inside = t[(t > start) & (t < end)]
        before, after = t[t <= start], t[t >= end]
        points = np.concatenate(([before[-1] if before.size else start], inside,
                                 [after[0] if after.size else end]))
        return float(np.max(np.diff(points))) if points.size > 1 else 0.0

    def samples_between(self, start, end):
        t = self.t
        return int(np.count_nonzero((t >= start) & (t <= end)))

    def energy_mj(self, rail, start, end, hold_s=0.0):
        """Energy of ``rail`` over ``[start, end]`` (mJ), or None if the samples do not cover it
        (an end up to ``hold_s`` after the last sample holds the last power)."""
        if not self.covers(start, end, hold_s):
            return None
        last = self.t[-1]
        held = 0.0
        if end > last:
            held = (self.latest(rail, "power_mw") or 0.0) * (end - last)
            end = last
        if self.has(rail, "power_mw"):
            return integrate_power_mj(self.t, self.column(rail, "power_mw"), start, end) + held
        return counter_energy_mj(self.t, self.cumulative_mj(rail), start, end) + held

    def power_series(self, rail):
        """``(t, power_mw)`` of ``rail``; for counters, differences at interval midpoints."""
        if self.has(rail, "power_mw"):
            return self.t, self.column(rail, "power_mw")
        t, cum = self.t, self.cumulative_mj(rail)
        if t.size < 2:
            return t[:0], cum[:0]
        dt = np.diff(t)
        with np.errstate(divide="ignore", invalid="ignore"):
            power = np.where(dt > 0, np.diff(cum) / np.where(dt > 0, dt, 1.0), np.nan)
        return (t[1:] + t[:-1]) / 2.0, power

    def latest(self, rail, quantity):
        """The last value of ``(rail, quantity)`` (power derived for counters), or None."""
        if quantity == "power_mw" and not self.has(rail, "power_mw"):
            _, power = self.power_series(rail)
            return float(power[-1]) if power.size else None
        if not self.has(rail, quantity) or len(self) == 0:
            return None
        return float(self.column(rail, quantity)[-1])
