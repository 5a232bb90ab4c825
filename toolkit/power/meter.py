"""``PowerMeter``: energy per inference of a run, measured by a sampler process.

    with PowerMeter(PowerConfig(source="auto")) as meter:
        meter.measure_idle()                  # idle baseline, before the run
        with meter.window("bench") as w:
            ...run N inferences...
            w.inferences = N
    print("\\n".join(meter.report().lines()))

Windows are marked with ``time.monotonic()`` in the calling thread and cost nothing while they
run: the samples stay in the sampler until the window closes. Energy per inference is
``(window energy - idle power x window time) / inferences`` (and the total without the
subtraction). When nothing can be measured the meter still marks windows and the report says
"not measured" (and shows an analytical estimate when given one, labelled as such).
"""
import time

from toolkit.power.config import PowerConfig
from toolkit.power.energy import Trace
from toolkit.power.report import EnergyReport, WindowResult, describe_estimate
from toolkit.power.sampler import Sampler
from toolkit.power.sources import find_source

MIN_WINDOW_AVERAGING_FACTOR = 10.0  # windows shorter than 10 x the sensor's averaging are flagged
MIN_IDLE_AVERAGING_FACTOR = 2.0     # idle is steady: 2 x the averaging period is enough
MIN_WINDOW_SAMPLES = 5
MAX_GAP_PERIODS, MAX_GAP_S = 10.0, 0.25  # a longer stretch without samples is flagged


class Window(object):
    """A named stretch of time (``start``, ``end`` in monotonic seconds) with an inference count."""

    def __init__(self, meter, name):
        self.meter = meter
        self.name = str(name)
        self.start = None
        self.end = None
        self.inferences = None

    @property
    def duration_s(self):
        if self.start is None:
            return 0.0
        return (self.end if self.end is not None else time.monotonic()) - self.start

    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.end = time.monotonic()
        self.meter._closed(self)
        return False


class PowerMeter(object):
    """Measures energy over windows of a run with a sampler process (see the module docstring).

    ``source`` optionally gives an already discovered source (tests, ``toolkit power``).
    """

    def __init__(self, config=None, source=None):
        self.config = config or PowerConfig()
        self.source = source
        self.reasons = {}
        self.sampler = None
        self.trace = None
        self.windows = []
        self.idle = None
        self.t0 = None
        self._stopped = False
        self._pauses = []
        self._paused_at = None

    # lifetime -------------------------------------------------------------------------------
    @property
    def measuring(self):
        """True when a source was found and the sampler was started."""
        return self.sampler is not None

    def start(self):
        """Find the source (``auto``: the first that works) and start the sampler process."""
        if self.t0 is not None:
            return self
        if self.source is None:
            self.source, self.reasons = find_source(self.config)
        if self.source is not None:
            self.trace = Trace(self.source.columns, self.source.wraps)
            sampler = Sampler(self.source, self.config.rate_hz, self.config.start_method,
                              self.config.ready_timeout_s, self.config.sampler_nice)
            sampler.start()
            self.sampler = sampler
            self.t0 = time.monotonic()
            self._drain_until(self.t0)  # a first sample before any window starts
        else:
            self.t0 = time.monotonic()
        return self

    def stop(self):
        """Collect the remaining samples and end the sampler (safe to call twice)."""
        if self.sampler is None or self._stopped:
            self._stopped = True
            return
        try:
            ends = [w.end for w in self.windows if w.end is not None]
            if ends:
                self._drain_until(max(ends) + self._settle_s)
        finally:
            self._stopped = True
            self._add(self.sampler.stop())

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # samples --------------------------------------------------------------------------------
    def _add(self, chunk):
        if chunk is not None:
            self.trace.append(*chunk)

    def fetch(self):
        """Pull the samples taken so far into :attr:`trace` (the live view calls this)."""
        if self.sampler is not None and not self._stopped:
            self._add(self.sampler.fetch())
        return self.trace

    def pause(self):
        """Stop sampling until :meth:`resume` (the sampler idles on its pipe); windows that overlap
        a pause are not measured."""
        if self.sampler is not None and not self._stopped and self._paused_at is None:
            self._paused_at = time.monotonic()
            self._add(self.sampler.pause())

    def resume(self):
        """Sample again after :meth:`pause`."""
        if self.sampler is not None and not self._stopped and self._paused_at is not None:
            self._add(self.sampler.resume())
            self._pauses.append((self._paused_at, time.monotonic()))
            self._paused_at = None

    @property
    def sample_period_s(self):
        period = 1.0 / self.config.rate_hz
        return max(period, self.source.min_period_s) if self.source is not None else period

    def _drain_until(self, t_end, timeout_s=None):
        """Fetch until a sample at or after ``t_end`` exists (or the sampler is gone)."""
        if self.sampler is None or self._stopped:
            return
        if timeout_s is None:
            timeout_s = max(2.0, 5.0 * self.sample_period_s)
        deadline = time.monotonic() + timeout_s
        while True:
            self._add(self.sampler.fetch())
            if self.sampler.error is not None:
                return
            if len(self.trace) and self.trace.t[-1] >= t_end:
                return
            if time.monotonic() > deadline:
                return
            time.sleep(min(0.01, self.sample_period_s / 2.0))

    @property
    def _settle_s(self):
        """Seconds of samples after a window that its lag correction needs (0 without one)."""
        sensor = getattr(self.source, "sensor", None)
        return sensor.after_s if sensor is not None else 0.0

    # windows --------------------------------------------------------------------------------
    def window(self, name):
        """A context manager marking one window; set ``.inferences`` on it before it closes."""
        if self.t0 is None:
            self.start()
        return Window(self, name)

    def _closed(self, window):
        self.windows.append(window)
        if self.sampler is not None and not self._stopped:
            self._add(self.sampler.fetch())  # keep the sampler's buffer short

    def measure_idle(self, seconds=None):
        """Measure the idle baseline for ``seconds`` (default ``config.idle_s``) while this process
        sleeps; returns the total idle power in mW (None when nothing is measured)."""
        seconds = self.config.idle_s if seconds is None else float(seconds)
        with self.window("idle") as window:
            time.sleep(seconds)
        self.windows.remove(window)
        if self.sampler is None:
            return None
        self._drain_until(window.end)
        result = self._measure(window, None, MIN_IDLE_AVERAGING_FACTOR)
        if not result.measured:
            return None
        self.idle = {"power_mw": result.avg_power_mw, "duration_s": result.duration_s,
                     "rails": {r: row["avg_power_mw"] for r, row in result.rails.items()},
                     "flags": result.flags}
        return result.avg_power_mw

    # report ---------------------------------------------------------------------------------
    def _measure(self, window, idle_power_mw, averaging_factor=MIN_WINDOW_AVERAGING_FACTOR):
        result = WindowResult(window.name, window.start - self.t0, window.end - window.start,
                              window.inferences)
        if self.trace is None:
            return result
        policy = self.source.policy
        start, end = window.start, window.end
        # a sampler that died right after the window leaves its end uncovered: hold its last
        # reading for up to two sample periods (said in a flag)
        hold = 2.0 * self.sample_period_s if self.sampler.error else 0.0
        pauses = self._pauses + ([(self._paused_at, float("inf"))] if self._paused_at else [])
        if any(a < end and b > start for a, b in pauses):
            result.flags.append("not measured: sampling was paused during the window")
            return result
        if not self.trace.covers(start, end, hold):
            why = self.sampler.error if self.sampler.error else "no samples cover the window"
            result.flags.append("not measured: {}".format(why))
            return result
        if not self.trace.covers(start, end):
            result.flags.append("the sampler died {:.0f} ms before the window ended: its last "
                                "reading is held to the end".format(
                                    1000.0 * (end - self.trace.t[-1])))
        duration = end - start
        sensor = getattr(self.source, "sensor", None)
        corrected = (sensor is not None and hold == 0.0
                     and sensor.covered(self.trace.t, start, end)
                     and all(self.trace.has(rail, "power_mw") for rail in self.trace.rails))
        for rail in self.trace.rails:
            if corrected:  # the sensor's averaging and hold modelled (toolkit.power.lag)
                energy = sensor.energy_mj(self.trace.t, self.trace.column(rail, "power_mw"),
                                          start, end)
            else:
                energy = self.trace.energy_mj(rail, start, end, hold)
            result.rails[rail] = {"energy_mj": energy,
                                  "avg_power_mw": energy / duration if duration > 0 else 0.0}
        result.lag_corrected = bool(corrected)
        result.energy_mj = sum(result.rails[r]["energy_mj"] for r in policy.total_rails)
        result.avg_power_mw = result.energy_mj / duration if duration > 0 else 0.0
        result.samples = self.trace.samples_between(start, end)
        result.measured = True
        if idle_power_mw is not None:
            result.idle_power_mw = idle_power_mw
            result.energy_above_idle_mj = result.energy_mj - idle_power_mw * duration
            if result.energy_above_idle_mj < -1e-9 * abs(result.energy_mj):  # not rounding
                result.flags.append("average power {:.0f} mW is below the idle baseline {:.0f} mW:"
                                    " the baseline drifted (measure idle again)".format(
                                        result.avg_power_mw, idle_power_mw))
        if window.inferences:
            result.mj_per_inference = result.energy_mj / window.inferences
            if result.energy_above_idle_mj is not None:
                result.mj_per_inference_above_idle = result.energy_above_idle_mj / window.inferences
        averaging = self.source.averaging_s
        if corrected and duration < 2.0 * averaging:
            result.flags.append(
                "window {:.3f} s is shorter than two of the sensor's {:.2f} s averaging periods: "
                "its lag correction rests on a few readings; run at least {:.1f} s".format(
                    duration, averaging, 2.0 * averaging))
        elif averaging and not corrected and duration < averaging_factor * averaging:
            result.flags.append(
                "window {:.3f} s is short for the sensor's {:.2f} s averaging: figures are "
                "smeared at the edges; run at least {:.1f} s (more inferences)".format(
                    duration, averaging, averaging_factor * averaging))
        gap = self.trace.largest_gap(start, end)
        if gap > max(MAX_GAP_PERIODS * self.sample_period_s, MAX_GAP_S):
            result.flags.append(
                "no sample for {:.2f} s inside the window (the sampler was starved of CPU?): "
                "power is interpolated across the gap".format(gap))
        if result.samples < MIN_WINDOW_SAMPLES:
            result.flags.append(
                "only {} samples inside the window: run longer or sample faster".format(
                    result.samples))
        return result

    def report(self, estimate_mj_per_inference=None, estimate=None):
        """The :class:`EnergyReport` of all windows so far (waits for the samples that cover the
        last window). ``estimate_mj_per_inference`` (a number) or ``estimate`` (an energy-model
        object) is shown as a labelled estimate, apart from the measurements."""
        if estimate is None and estimate_mj_per_inference is not None:
            estimate = estimate_mj_per_inference
        described = describe_estimate(estimate) if estimate is not None else None
        closed = [w for w in self.windows if w.end is not None]
        if self.sampler is not None and closed:
            self._drain_until(max(w.end for w in closed) + self._settle_s)
        idle_power = self.idle["power_mw"] if self.idle else None
        results = [self._measure(w, idle_power) for w in closed]
        flags = []
        if self.source is None:
            return EnergyReport(False, windows=results, estimate=described,
                                not_measured_reason=self._why_not(), flags=flags)
        policy = self.source.policy
        if policy.is_summed or policy.note:
            flags.append(("no total rail: total = {}".format(policy.label) if policy.is_summed
                          else "total = {}".format(policy.label))
                         + ("; " + policy.note if policy.note else ""))
        if self.sampler.error:
            flags.append("sampler died: {} (the run went on; windows after it are not "
                         "measured)".format(self.sampler.error))
        if self.idle is None and any(w.inferences for w in closed):
            flags.append("idle baseline not measured: no energy above idle (call measure_idle)")
        if self.idle is not None:
            flags += ["idle: " + f for f in self.idle.get("flags", ())]
        trace_t = self.trace.t
        span = float(trace_t[-1] - trace_t[0]) if len(trace_t) > 1 else 0.0
        sampling = {"rate_hz": self.config.rate_hz, "samples": int(len(trace_t)),
                    "achieved_hz": (len(trace_t) - 1) / span if span > 0 else None}
        return EnergyReport(any(r.measured for r in results) or self.idle is not None,
                            source=self.source.info(), total=policy.to_dict(), windows=results,
                            idle=self.idle, flags=flags, estimate=described, sampling=sampling)

    def _why_not(self):
        if not self.reasons:
            return "no power source"
        return "no power source: " + "; ".join(
            "{}: {}".format(name, why) for name, why in self.reasons.items())
