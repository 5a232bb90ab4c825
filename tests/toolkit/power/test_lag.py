"""The INA3221's averaging corrected, on synthetic traces read through a model of the sensor:
each reading is the mean power of the last conversion cycle (0.42 s on JetPack 4), held until
the next cycle ends, at a random phase; sampled at 5 Hz and 100 Hz with jittered timestamps."""
import numpy as np
import pytest

from toolkit.power.boards import TotalPolicy
from toolkit.power.config import PowerConfig
from toolkit.power.energy import Trace
from toolkit.power.lag import BlockAveragingSensor
from toolkit.power.meter import PowerMeter, Window
from toolkit.power.sources.base import Source
from toolkit.power.sources.ina3221 import JETPACK4_AVERAGING_S

PERIOD = JETPACK4_AVERAGING_S
IDLE_MW, BUSY_MW = 2000.0, 4500.0


def _power(start, end):
    """Idle outside [start, end]; inside, a load with a 0.3 s ripple (bursts of inference)."""
    def power(t):
        inside = (t >= start) & (t < end)
        ripple = 600.0 * np.sign(np.sin(2 * np.pi * (t - start) / 0.3))
        return np.where(inside, BUSY_MW + ripple, IDLE_MW)
    return power


def _read_through_sensor(power, t, phase, dt=1e-4):
    """What the sensor shows at times ``t``: the mean of ``power`` over the last cycle."""
    grid = np.arange(t[0] - 2 * PERIOD, t[-1] + dt, dt)
    cumulative = np.concatenate(([0.0], np.cumsum(power(grid[:-1] + dt / 2) * dt)))
    ends = phase + np.floor((t - phase) / PERIOD) * PERIOD
    return (np.interp(ends, grid, cumulative) - np.interp(ends - PERIOD, grid, cumulative)) / PERIOD


def _true_energy_mj(power, start, end, dt=1e-4):
    grid = np.arange(start, end, dt) + dt / 2
    return float(np.sum(power(grid)) * dt)


def _synthetic(rng, rate_hz, window_s):
    start = 20.0 + rng.uniform(0, 1)
    end = start + window_s
    step = 1.0 / rate_hz
    t = np.arange(start - 5.0, end + 5.0, step) + rng.uniform(0, step)
    t = np.sort(t + rng.normal(0, 0.1 * step, t.size))  # jittered sampler timestamps
    power = _power(start, end)
    readings = _read_through_sensor(power, t, rng.uniform(0, PERIOD))
    true_above_idle = _true_energy_mj(power, start, end) - IDLE_MW * window_s
    return t, readings, start, end, true_above_idle


@pytest.mark.parametrize("rate_hz", [5.0, 100.0])
@pytest.mark.parametrize("window_s", [2.0, 4.2, 10.0])
def test_lag_corrected_energy_above_idle_within_one_percent(rate_hz, window_s):
    rng = np.random.default_rng(int(rate_hz * 100 + window_s * 10))
    sensor = BlockAveragingSensor(PERIOD)
    worst_corrected, uncorrected = 0.0, []
    for _ in range(25):
        t, readings, start, end, truth = _synthetic(rng, rate_hz, window_s)
        corrected = sensor.energy_mj(t, readings, start, end) - IDLE_MW * window_s
        worst_corrected = max(worst_corrected, abs(corrected / truth - 1.0))
        trace = Trace([("VDD_IN", "power_mw")])
        trace.append(t, readings[:, None])
        as_read = trace.energy_mj("VDD_IN", start, end) - IDLE_MW * window_s
        uncorrected.append(as_read / truth - 1.0)
    assert worst_corrected <= 0.01
    # as read, the window misses about one period of its energy above idle
    assert np.mean(uncorrected) == pytest.approx(-PERIOD / window_s, rel=0.25)


class _Stub(Source):
    kind = "stub"


def test_the_meter_corrects_window_energy_for_the_sensor():
    """Before the correction the meter reported -4.2 % for a 10 s window."""
    rng = np.random.default_rng(7)
    t, readings, start, end, truth = _synthetic(rng, 5.0, 10.0)
    source = _Stub([("POM_5V_IN", "power_mw")], TotalPolicy("POM_5V_IN"), "stub INA3221")
    source.averaging_s = PERIOD
    source.sensor = BlockAveragingSensor(PERIOD)
    meter = PowerMeter(PowerConfig(rate_hz=5.0), source=source)
    meter.trace = Trace(source.columns)
    meter.trace.append(t, readings[:, None])
    meter.sampler, meter.t0, meter._stopped = type("S", (), {"error": None})(), t[0], True
    meter.idle = {"power_mw": IDLE_MW, "duration_s": 4.0, "rails": {}, "flags": []}
    window = Window(meter, "run")
    window.start, window.end, window.inferences = start, end, 1000
    meter.windows.append(window)
    report = meter.report()
    result = report.window("run")
    assert result.lag_corrected and result.flags == []
    assert result.energy_above_idle_mj == pytest.approx(truth, rel=0.01)
    assert any("corrected for the sensor's lag" in line for line in report.lines())


def test_steady_readings_need_no_phase():
    sensor = BlockAveragingSensor(PERIOD)
    t = np.arange(0.0, 10.0, 0.2)
    assert sensor.energy_mj(t, np.full(t.size, 1500.0), 3.0, 5.0) == pytest.approx(3000.0)
    assert sensor.energy_mj(t, np.full(t.size, 1500.0), 3.0, 9.5) is None  # not settled yet


@pytest.mark.parametrize("factor", [0.95, 1.05])
def test_a_chip_period_off_the_nominal_one_is_fitted(monkeypatch, factor):
    """The chip's clock may run a few % off: at 100 Hz the fitted grid keeps 1 %."""
    import tests.toolkit.power.test_lag as this
    rng = np.random.default_rng(11)
    sensor = BlockAveragingSensor(PERIOD)  # told the nominal period
    monkeypatch.setattr(this, "PERIOD", PERIOD * factor)  # the simulated chip runs off it
    for _ in range(20):
        t, readings, start, end, truth = _synthetic(rng, 100.0, 2.0)
        corrected = sensor.energy_mj(t, readings, start, end) - IDLE_MW * 2.0
        assert corrected == pytest.approx(truth, rel=0.01)
