"""The INA3221's averaging corrected, on synthetic traces read through the model of the sensor
(``BlockAveragingSensor.readings``: the mean power of each conversion cycle, 0.42 s on JetPack 4,
held until the next, at a random phase), sampled at 5 Hz and 100 Hz with jittered timestamps
(the scenario of ``benchmarks.power_lag``)."""
import numpy as np
import pytest

from benchmarks.power_lag import IDLE_MW, errors, synthetic_window
from toolkit.power.boards import TotalPolicy
from toolkit.power.config import PowerConfig
from toolkit.power.energy import Trace
from toolkit.power.lag import BlockAveragingSensor
from toolkit.power.meter import PowerMeter, Window
from toolkit.power.sources.base import Source
from toolkit.power.sources.ina3221 import JETPACK4_AVERAGING_S

PERIOD = JETPACK4_AVERAGING_S


@pytest.mark.parametrize("rate_hz", [5.0, 100.0])
@pytest.mark.parametrize("window_s", [2.0, 4.2, 10.0])
def test_lag_corrected_energy_above_idle_within_one_percent(rate_hz, window_s):
    as_read, corrected = errors(rate_hz, window_s, trials=25, seed=int(rate_hz + 10 * window_s))
    assert np.abs(corrected).max() <= 0.01
    # as read, the window misses about one period of its energy above idle
    assert as_read.mean() == pytest.approx(-PERIOD / window_s, rel=0.25)


@pytest.mark.parametrize("factor", [0.95, 1.05])
def test_a_chip_period_off_the_nominal_one_is_fitted(factor):
    """The chip's clock may run a few % off the nominal period: at 100 Hz the fit keeps 1 %."""
    _, corrected = errors(100.0, 2.0, trials=20, period_factor=factor, seed=11)
    assert np.abs(corrected).max() <= 0.01


class _Stub(Source):
    kind = "stub"


def test_the_meter_corrects_window_energy_for_the_sensor():
    """Before the correction the meter reported -4.2 % for a 10 s window."""
    t, readings, start, end, truth = synthetic_window(np.random.default_rng(7), 5.0, 10.0,
                                                      PERIOD)
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


def test_steady_readings_need_no_fit_and_the_end_must_have_settled():
    sensor = BlockAveragingSensor(PERIOD)
    t = np.arange(0.0, 10.0, 0.2)
    assert sensor.energy_mj(t, np.full(t.size, 1500.0), 3.0, 5.0) == pytest.approx(3000.0)
    assert sensor.energy_mj(t, np.full(t.size, 1500.0), 3.0, 9.5) is None  # not settled yet


def test_the_model_shows_each_cycle_mean_held():
    sensor = BlockAveragingSensor(0.5)
    readings = sensor.readings([0.9, 1.0, 1.2, 1.49, 1.5], lambda x: 1000.0 * np.asarray(x) ** 2,
                               phase=0.0)
    # cycles end at 0.5, 1.0, 1.5; power 2000 t mW: mean over [0, 0.5] = 500, [0.5, 1] = 1500
    assert list(readings) == pytest.approx([500.0, 1500.0, 1500.0, 1500.0, 2500.0])
