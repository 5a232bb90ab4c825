import numpy as np
import pytest

from toolkit.power.energy import Trace, counter_energy_mj, integrate_power_mj


def _sampled(fn, rate_hz, t0, t1, jitter_s=0.0, seed=0):
    rng = np.random.RandomState(seed)
    t = np.arange(t0, t1, 1.0 / rate_hz)
    t = t + rng.uniform(-jitter_s, jitter_s, size=t.size)
    return np.sort(t), fn(np.sort(t))


@pytest.mark.parametrize("rate_hz, jitter_s", [(100.0, 0.0), (100.0, 0.003), (20.0, 0.0)])
def test_sine_load_energy_within_half_a_percent(rate_hz, jitter_s):
    def power(t):
        return 3000.0 + 1500.0 * np.sin(2 * np.pi * t / 1.3) + 400.0 * np.sin(2 * np.pi * t / 0.37)

    def sine_integral(amplitude, period, a, b):
        w = 2 * np.pi / period
        return -amplitude / w * (np.cos(w * b) - np.cos(w * a))

    def exact(a, b):
        return 3000.0 * (b - a) + sine_integral(1500.0, 1.3, a, b) + sine_integral(400.0, 0.37, a, b)

    t, p = _sampled(power, rate_hz, 0.0, 12.0, jitter_s)
    start, end = 1.234, 10.987  # edges between samples: interpolated
    got = integrate_power_mj(t, p, start, end)
    assert abs(got - exact(start, end)) / exact(start, end) < 0.005


def test_piecewise_linear_power_is_exact_with_edges_between_samples():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    p = np.array([1000.0, 3000.0, 3000.0, 1000.0])
    # over [0.5, 2.5]: 0.5 s ramp 2000->3000, 1 s at 3000, 0.5 s ramp 3000->2000
    assert integrate_power_mj(t, p, 0.5, 2.5) == pytest.approx(1250.0 + 3000.0 + 1250.0)


def test_step_load_sampled_at_100_hz():
    t = np.arange(0.0, 10.0, 0.01)
    p = np.where((t >= 2.0) & (t < 7.0), 5000.0, 1000.0)
    got = integrate_power_mj(t, p, 1.0, 9.0)
    assert abs(got - (1000.0 * 3 + 5000.0 * 5)) / 28000.0 < 0.005


def test_several_rails_at_once():
    t = np.linspace(0, 2, 201)
    p = np.stack([np.full_like(t, 1000.0), 2000.0 * t], axis=1)
    np.testing.assert_allclose(integrate_power_mj(t, p, 0.5, 1.5), [1000.0, 2000.0])


def test_window_outside_the_samples_is_refused():
    t = np.linspace(0, 1, 11)
    with pytest.raises(ValueError):
        integrate_power_mj(t, np.ones_like(t), -0.1, 0.5)
    with pytest.raises(ValueError):
        counter_energy_mj(t, np.ones_like(t), 0.5, 1.5)
    trace = Trace([("a", "power_mw")])
    trace.append(t, np.ones((11, 1)))
    assert trace.energy_mj("a", 0.2, 1.2) is None
    assert trace.energy_mj("a", 0.2, 0.8) == pytest.approx(0.6)


def test_trace_chunks_join_and_latest_values():
    trace = Trace([("a", "power_mw"), ("a", "voltage_mv")])
    trace.append([0.0, 0.1], [[1.0, 5000.0], [2.0, 5001.0]])
    trace.append([0.2], [[3.0, 5002.0]])
    assert len(trace) == 3 and trace.latest("a", "voltage_mv") == 5002.0
    assert trace.samples_between(0.05, 0.2) == 2 and trace.latest("a", "current_ma") is None
