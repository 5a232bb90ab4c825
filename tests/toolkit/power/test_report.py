"""Energy accounting of the meter on known traces (no sampler process), and the report."""
import json
import types

import numpy as np
import pytest

from basics.errors import InputError
from toolkit.power.boards import TotalPolicy
from toolkit.power.config import PowerConfig
from toolkit.power.energy import Trace
from toolkit.power.meter import PowerMeter, Window
from toolkit.power.report import describe_estimate
from toolkit.power.sources.base import Source


class _Stub(Source):
    kind = "stub"


def _meter(power_by_rail, policy, averaging_s=0.0, rate_hz=100.0, seconds=20.0):
    rails = list(power_by_rail)
    source = _Stub([(r, "power_mw") for r in rails], policy, "stub source")
    source.averaging_s = averaging_s
    meter = PowerMeter(PowerConfig(rate_hz=rate_hz), source=source)
    t = np.arange(0.0, seconds, 1.0 / rate_hz)
    meter.trace = Trace(source.columns)
    meter.trace.append(t, np.stack([np.asarray(power_by_rail[r](t), dtype=float) for r in rails],
                                   axis=1))
    meter.sampler = types.SimpleNamespace(error=None)
    meter.t0 = 0.0
    meter._stopped = True
    return meter


def _window(meter, name, start, end, inferences=None):
    window = Window(meter, name)
    window.start, window.end, window.inferences = start, end, inferences
    meter.windows.append(window)
    return window


def test_energy_per_inference_total_and_above_idle():
    meter = _meter({"VDD_IN": lambda t: np.where(t < 5, 1000.0, 3000.0),
                    "VDD_SOC": lambda t: np.full_like(t, 400.0)},
                   TotalPolicy("VDD_IN", parts=["VDD_SOC"]))
    meter.idle = {"power_mw": 1000.0, "duration_s": 4.0, "rails": {}, "flags": []}
    _window(meter, "run", 6.0, 16.0, inferences=100)
    result = meter.report().window("run")
    assert result.energy_mj == pytest.approx(30000.0)          # 3000 mW x 10 s
    assert result.mj_per_inference == pytest.approx(300.0)
    assert result.energy_above_idle_mj == pytest.approx(20000.0)
    assert result.mj_per_inference_above_idle == pytest.approx(200.0)
    assert result.rails["VDD_SOC"]["energy_mj"] == pytest.approx(4000.0)  # a part: not added
    assert result.avg_power_mw == pytest.approx(3000.0) and result.flags == []


def test_summed_total_is_said():
    meter = _meter({"GPU": lambda t: np.full_like(t, 500.0),
                    "CPU": lambda t: np.full_like(t, 250.0)},
                   TotalPolicy(None, ["GPU", "CPU"], note="no total rail on this board"))
    _window(meter, "run", 1.0, 3.0, inferences=10)
    report = meter.report()
    assert report.window("run").energy_mj == pytest.approx(1500.0)
    assert report.flags[0].startswith("no total rail: total = sum of GPU + CPU")
    assert any("idle baseline not measured" in f for f in report.flags)
    assert report.window("run").mj_per_inference_above_idle is None


def test_short_window_and_few_samples_are_flagged():
    meter = _meter({"POM_5V_IN": lambda t: np.full_like(t, 2000.0)}, TotalPolicy("POM_5V_IN"),
                   averaging_s=0.42, rate_hz=10.0)
    _window(meter, "tiny", 2.0, 2.3, inferences=3)
    flags = meter.report().window("tiny").flags
    assert any("short for the sensor's 0.42 s averaging" in f and "4.2 s" in f for f in flags)
    assert any("only 3 samples" in f for f in flags)


def test_power_below_idle_is_flagged():
    meter = _meter({"VDD_IN": lambda t: np.full_like(t, 900.0)}, TotalPolicy("VDD_IN"))
    meter.idle = {"power_mw": 1000.0, "duration_s": 2.0, "rails": {}, "flags": []}
    _window(meter, "run", 1.0, 11.0, inferences=5)
    result = meter.report().window("run")
    assert result.mj_per_inference_above_idle < 0
    assert any("below the idle baseline" in f for f in result.flags)


def test_window_beyond_the_samples_is_not_measured():
    meter = _meter({"VDD_IN": lambda t: np.full_like(t, 900.0)}, TotalPolicy("VDD_IN"),
                   seconds=5.0)
    _window(meter, "late", 4.0, 8.0, inferences=5)
    result = meter.report().window("late")
    assert not result.measured and "no samples cover" in result.flags[0]


def test_report_is_json_and_lines_keep_estimates_apart():
    meter = _meter({"VDD_IN": lambda t: np.full_like(t, 1000.0)}, TotalPolicy("VDD_IN"))
    meter.idle = {"power_mw": 500.0, "duration_s": 2.0, "rails": {}, "flags": []}
    _window(meter, "run", 1.0, 11.0, inferences=1000)
    report = meter.report(estimate=types.SimpleNamespace(energy_j=0.004))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["windows"][0]["mj_per_inference"] == pytest.approx(10.0)
    assert data["estimate"]["value"] == pytest.approx(4.0)
    text = report.lines()
    estimate_lines = [l for l in text if "ESTIMATE" in l]
    assert estimate_lines == ["ESTIMATE, not measured (analytical estimate (SimpleNamespace)): "
                              "4 mJ per inference"]
    assert any("per inference: 10 mJ total, 5 mJ above idle" in l for l in text)


class _ModelEnergy(object):
    def to_dict(self):
        return {"total": 12345.0, "layers": []}


@pytest.mark.parametrize("estimate, value, unit_word", [
    (2.5, 2.5, "mJ"),
    (types.SimpleNamespace(mj_per_inference=1.5), 1.5, "mJ"),
    (types.SimpleNamespace(total_j=0.002), 2.0, "mJ"),
    (_ModelEnergy(), 12345.0, "normalized"),
])
def test_estimates_of_every_shape(estimate, value, unit_word):
    described = describe_estimate(estimate)
    assert described["value"] == pytest.approx(value) and unit_word in described["unit"]


@pytest.mark.parametrize("bad", ["3 mJ", True, types.SimpleNamespace(speed=3)])
def test_an_unreadable_estimate_is_a_one_line_error(bad):
    with pytest.raises(InputError, match="cannot read an energy per inference"):
        describe_estimate(bad)


@pytest.mark.parametrize("kwargs, match", [
    ({"source": "battery"}, "power source must be one of"),
    ({"rate_hz": 0}, "sampling rate must be between"),
    ({"rate_hz": "fast"}, "must be numbers"),
    ({"idle_s": -1}, "idle time must be >= 0"),
    ({"start_method": "thread"}, "start_method must be one of"),
    ({"tegrastats_cmd": ""}, "tegrastats_cmd must name a command"),
])
def test_bad_config_values(kwargs, match):
    with pytest.raises(InputError, match=match):
        PowerConfig(**kwargs)


def test_a_gap_in_the_samples_is_flagged():
    meter = _meter({"VDD_IN": lambda t: np.full_like(t, 900.0)}, TotalPolicy("VDD_IN"))
    keep = (meter.trace.t < 3.0) | (meter.trace.t > 4.0)
    t, data = meter.trace.t[keep], meter.trace.data[keep]
    meter.trace = Trace(meter.trace.columns)
    meter.trace.append(t, data)
    _window(meter, "gappy", 1.0, 6.0, inferences=5)
    _window(meter, "fine", 4.5, 9.0, inferences=5)
    report = meter.report()
    assert any("no sample for 1.0" in f for f in report.window("gappy").flags)
    assert report.window("fine").flags == []
