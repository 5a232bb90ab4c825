"""Energy of a window corrected for the INA3221's averaging: the sensor is modelled, not only
flagged.

The INA3221 averages each channel over a conversion cycle and keeps the result in its register
until the next cycle ends (``period_s``: about 0.42 s with the JetPack 4 ina3221x driver's
default, ``update_interval`` with the JetPack 5/6 hwmon driver). A reading taken at time ``t``
is the mean power over ``[t_k - period, t_k]``, ``t_k`` being the last cycle end before ``t``: the
readings lag the power by one period on average, so a window integrated as read misses about
``period / window`` of its energy above idle (-4.2 % for a 10 s window on JetPack 4).

Model: cycle ends ``t_k = phase + k * period``; reading = block mean, held until the next cycle
end. For power ``p`` equal to ``b`` before the window ``[s, e]`` and to ``c`` after it, the held
reading ``y`` satisfies exactly, whatever the phase:

    integral of p over [s, e] = integral of y over [s - P, e + 3P] - 2P (b + c)

(P = period; ``b`` is the reading at ``s``, ``c`` the reading at ``e + 3P``: both blocks lie
wholly outside the window; with ``b = c`` it holds for any period up to 1.5 P). The held reading
is rebuilt from the samples with its jumps put on the cycle grid, whose period (within 10 % of
the nominal one: the chip's clock) and phase are fitted to the intervals in which the readings
change; a phase error shifts every jump alike and cancels. Measured on synthetic traces through
this sensor model (``tests/toolkit/power/test_lag.py``, docs/power.md): the error of the energy
above idle is below 0.5 % for windows of 2 s and more, at 5 Hz and at 100 Hz sampling
(uncorrected: -21 % at 2 s, -4.2 % at 10 s). A chip period off the nominal one (fitted, 2-8 %
off): at 100 Hz still below 0.5 %; at 5 Hz about 2-3 % on 2 s windows (12 % in the worst of 100
windows at 8 % off) and 1 % on 10 s windows: sample at 100 Hz.
"""
import numpy as np

PHASES = 400             # phase candidates per period
PERIOD_TOLERANCE = 0.10  # the chip's clock may make its period this far from the nominal one
PERIOD_STEPS = 41        # period candidates (0.5 % apart)
MAX_CHANGES = 100        # change intervals used for the fit (those nearest the window's edges)


class BlockAveragingSensor(object):
    """A sensor whose reading is the mean over the last ``period_s``, updated every period and
    held in between (the INA3221)."""

    def __init__(self, period_s):
        self.period_s = float(period_s)
        if not self.period_s > 0:
            raise ValueError("the sensor's period must be positive")

    @property
    def before_s(self):
        """Samples needed before a window's start."""
        return self.period_s

    @property
    def after_s(self):
        """Samples needed after a window's end (the sensor has settled)."""
        return 3.0 * self.period_s

    def covered(self, t, start, end):
        t = np.asarray(t)
        return bool(t.size > 1 and t[0] <= start - self.before_s and t[-1] >= end + self.after_s)

    def readings(self, t, energy_mj_at, phase=0.0):
        """What the modelled sensor shows at times ``t`` (the model itself, for tests and
        ``benchmarks.power_lag``): the mean power of the last cycle ended by each time, for a
        power whose cumulative energy (mJ) at given times is ``energy_mj_at(times)``."""
        t = np.asarray(t, dtype=np.float64)
        ends = phase + np.floor((t - phase) / self.period_s) * self.period_s
        return (energy_mj_at(ends) - energy_mj_at(ends - self.period_s)) / self.period_s

    def energy_mj(self, t, power_mw, start, end):
        """Energy (mJ) of the power over ``[start, end]`` from held readings ``power_mw`` taken at
        ``t``; None when the samples do not cover ``[start - period, end + 3 period]``."""
        t = np.asarray(t, dtype=np.float64)
        y = np.asarray(power_mw, dtype=np.float64)
        if not self.covered(t, start, end):
            return None
        period = self.period_s
        lo, hi = start - period, end + 3.0 * period
        first = max(int(np.searchsorted(t, lo, side="right")) - 1, 0)
        last = min(int(np.searchsorted(t, hi, side="left")) + 1, t.size)
        t, y = t[first:last], y[first:last]
        before = y[t <= start][-1]                   # b: the block before the window
        after = y[t <= end + 3.0 * period][-1]       # c: the block after it
        jumps, values = self._held(t, y, start, end)
        edges = np.concatenate(([lo], np.clip(jumps, lo, hi), [hi]))
        integral = float(np.sum(values * np.diff(edges)))
        return integral - 2.0 * period * (before + after)

    def _held(self, t, y, start, end):
        """The held reading as ``(jump times, values)``: ``values[i]`` holds from ``jumps[i-1]``
        to ``jumps[i]``; each jump on the fitted cycle grid (midway when none fits)."""
        change = np.nonzero(np.diff(y) != 0)[0]
        lo, hi = t[change], t[change + 1]
        jumps = (lo + hi) / 2.0
        if change.size:
            period, phase = self._fit(lo, hi, start, end)
            grid = phase + np.ceil((lo - phase) / period) * period
            jumps = np.where(grid <= hi, grid, jumps)
            jumps = np.maximum.accumulate(jumps)  # jumps stay in order
        values = np.concatenate((y[:1], y[change + 1]))
        return jumps, values

    def _fit(self, lo, hi, start, end):
        """``(period, phase)`` of the cycle grid that puts a cycle end in most change intervals
        ``(lo, hi]``: the period within +-10 % of the nominal one (the chip's clock tolerance;
        the nominal one first among equals), the phase in the middle of the widest run of best
        phases."""
        periods = self.period_s * (1.0 + np.linspace(-PERIOD_TOLERANCE, PERIOD_TOLERANCE,
                                                     PERIOD_STEPS))
        if lo.size > MAX_CHANGES:
            distance = np.minimum(np.abs(lo - start), np.abs(lo - end))
            keep = np.sort(np.argsort(distance, kind="mergesort")[:MAX_CHANGES])
            lo, hi = lo[keep], hi[keep]
        fractions = np.arange(PHASES) / float(PHASES)
        origin = lo[0]
        phases = origin + periods[:, None] * fractions[None, :]
        ends = phases[:, :, None] + np.ceil(
            (lo[None, None, :] - phases[:, :, None]) / periods[:, None, None]
        ) * periods[:, None, None]
        score = np.count_nonzero(ends <= hi[None, None, :], axis=2)
        rows = np.nonzero(score.max(axis=1) == score.max())[0]
        row = rows[np.argmin(np.abs(rows - (PERIOD_STEPS - 1) / 2.0))]  # nominal first
        best = score[row] == score.max()
        if best.all():
            return periods[row], origin
        shift = int(np.nonzero(~best)[0][0]) + 1
        rolled = np.roll(best, -shift)
        run_start, widest = 0, (0, -1)
        for index in range(PHASES + 1):
            if index == PHASES or not rolled[index]:
                if index - 1 - run_start > widest[1] - widest[0]:
                    widest = (run_start, index - 1)
                run_start = index + 1
        middle = ((widest[0] + widest[1]) / 2.0 + shift) % PHASES
        return periods[row], origin + middle * periods[row] / PHASES
