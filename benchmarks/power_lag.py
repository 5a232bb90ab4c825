"""Error of the energy above idle of a window, read through a model of the INA3221 (the mean
power of each conversion cycle, held until the next; 0.42 s on JetPack 4), as read and as
corrected by ``toolkit.power.lag``.

Synthetic load: 2000 mW idle, 4500 mW with a +-600 mW ripple of 0.3 s inside the window; random
cycle phase and window start; sampler timestamps jittered by 10 % of the period. Rows: sampling
rate x window length, then the chip's period 2-8 % off the nominal one (the correction is told
the nominal period and fits it). Accuracy only, no timing.

    python -m benchmarks.power_lag [--quick] [--trials 200]
"""
import argparse

import numpy as np

from toolkit.power.energy import Trace
from toolkit.power.lag import BlockAveragingSensor
from toolkit.power.sources.ina3221 import JETPACK4_AVERAGING_S

IDLE_MW, BUSY_MW, RIPPLE_MW, RIPPLE_S = 2000.0, 4500.0, 600.0, 0.3


def _power(start, end):
    def power(t):
        ripple = RIPPLE_MW * np.sign(np.sin(2 * np.pi * (t - start) / RIPPLE_S))
        return np.where((t >= start) & (t < end), BUSY_MW + ripple, IDLE_MW)
    return power


def synthetic_window(rng, rate_hz, window_s, period_s, dt=1e-4):
    """``(t, readings, start, end, true energy above idle mJ)`` of one window."""
    start = 20.0 + rng.uniform(0, 1)
    end = start + window_s
    step = 1.0 / rate_hz
    t = np.arange(start - 5.0, end + 5.0, step) + rng.uniform(0, step)
    t = np.sort(t + rng.normal(0, 0.1 * step, t.size))
    power = _power(start, end)
    grid = np.arange(t[0] - 2 * period_s, t[-1] + dt, dt)
    cumulative = np.concatenate(([0.0], np.cumsum(power(grid[:-1] + dt / 2) * dt)))
    chip = BlockAveragingSensor(period_s)
    readings = chip.readings(t, lambda x: np.interp(x, grid, cumulative),
                             rng.uniform(0, period_s))
    inside = np.arange(start, end, dt) + dt / 2
    truth = float(np.sum(power(inside)) * dt) - IDLE_MW * window_s
    return t, readings, start, end, truth


def errors(rate_hz, window_s, trials, period_factor=1.0, seed=1):
    """Relative errors (as read, corrected) of ``trials`` windows."""
    rng = np.random.default_rng(seed)
    sensor = BlockAveragingSensor(JETPACK4_AVERAGING_S)
    as_read, corrected = [], []
    for _ in range(trials):
        t, readings, start, end, truth = synthetic_window(
            rng, rate_hz, window_s, JETPACK4_AVERAGING_S * period_factor)
        trace = Trace([("total", "power_mw")])
        trace.append(t, readings[:, None])
        as_read.append((trace.energy_mj("total", start, end) - IDLE_MW * window_s) / truth - 1)
        corrected.append((sensor.energy_mj(t, readings, start, end) - IDLE_MW * window_s)
                         / truth - 1)
    return np.array(as_read), np.array(corrected)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 windows per row")
    parser.add_argument("--trials", type=int, default=200, help="windows per row")
    args = parser.parse_args(argv)
    trials = 20 if args.quick else args.trials
    print("energy above idle of a window through the modelled INA3221 (period {:.3f} s), "
          "{} windows per row".format(JETPACK4_AVERAGING_S, trials))
    print("{:>8} {:>8} {:>10} {:>14} {:>16} {:>16}".format(
        "rate Hz", "window s", "period", "as read mean", "corrected mean", "corrected worst"))
    rows = [(rate, window, 1.0) for rate in (5.0, 100.0) for window in (2.0, 4.2, 10.0)]
    rows += [(rate, window, factor) for factor in (0.98, 1.03, 1.08) for rate in (5.0, 100.0)
             for window in (2.0, 10.0)]
    for rate, window, factor in rows:
        as_read, corrected = errors(rate, window, trials, factor)
        print("{:>8g} {:>8g} {:>9.2f}x {:>13.2f}% {:>15.3f}% {:>15.3f}%".format(
            rate, window, factor, 100 * as_read.mean(), 100 * corrected.mean(),
            100 * np.abs(corrected).max()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
