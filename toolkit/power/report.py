"""The energy report: per window total energy, idle baseline, energy per inference, flags.

Measurements and analytical estimates are kept apart: an estimate (a number of mJ per inference,
or engineer H6's energy-model object) is shown in its own clearly labelled block and never
mixed into measured figures.
"""
import numbers

from basics.errors import InputError

# attribute / key names an estimate object may carry, with their factor to mJ
_MJ_KEYS = (("mj_per_inference", 1.0), ("energy_mj_per_inference", 1.0),
            ("total_mj", 1.0), ("energy_mj", 1.0), ("total_j", 1000.0), ("energy_j", 1000.0),
            ("joules", 1000.0))
_NORMALIZED_KEYS = ("total_normalized", "normalized_total", "total_units", "total")


def describe_estimate(estimate):
    """``{"value", "unit", "label"}`` of an analytical estimate: a number (mJ per inference) or an
    object with one of the attributes / ``to_dict()`` keys of :data:`_MJ_KEYS` (calibrated) or
    :data:`_NORMALIZED_KEYS` (normalized units, not comparable with measured mJ)."""
    if isinstance(estimate, numbers.Real) and not isinstance(estimate, bool):
        return {"value": float(estimate), "unit": "mJ per inference",
                "label": "analytical estimate"}
    fields = {}
    if hasattr(estimate, "to_dict"):
        try:
            fields = dict(estimate.to_dict())
        except Exception:  # noqa: BLE001 - fall back to attributes
            fields = {}

    def lookup(name):
        value = getattr(estimate, name, None)
        if value is None:
            value = fields.get(name)
        return value if isinstance(value, numbers.Real) and not isinstance(value, bool) else None

    for name, factor in _MJ_KEYS:
        value = lookup(name)
        if value is not None:
            return {"value": float(value) * factor, "unit": "mJ per inference",
                    "label": "analytical estimate ({})".format(type(estimate).__name__)}
    for name in _NORMALIZED_KEYS:
        value = lookup(name)
        if value is not None:
            return {"value": float(value), "unit": "normalized energy units per inference "
                    "(not calibrated to joules)",
                    "label": "analytical estimate ({})".format(type(estimate).__name__)}
    raise InputError("cannot read an energy per inference from {} (expected a number of mJ or "
                     "an object with one of {})".format(
                         type(estimate).__name__,
                         [k for k, _ in _MJ_KEYS] + list(_NORMALIZED_KEYS)))


def short_reason(reason):
    """One short line for "energy: not measured (...)": one source's reason as it is; for
    several (``auto``) only where to read them all (the JSON report keeps the full text)."""
    reason = reason or "no power source"
    if reason.startswith("no power source: ") and "; " in reason:
        return "no power source works here; `toolkit power --list` says why"
    return reason


class WindowResult(object):
    """The figures of one window (all None when it was not measured)."""

    def __init__(self, name, start_s, duration_s, inferences):
        self.name = name
        self.start_s = start_s
        self.duration_s = duration_s
        self.inferences = inferences
        self.measured = False
        self.energy_mj = None
        self.avg_power_mw = None
        self.idle_power_mw = None
        self.energy_above_idle_mj = None
        self.mj_per_inference = None
        self.mj_per_inference_above_idle = None
        self.rails = {}
        self.samples = 0
        self.lag_corrected = False  # energies corrected for the sensor's averaging
        self.flags = []

    def to_dict(self):
        return {key: getattr(self, key) for key in (
            "name", "start_s", "duration_s", "inferences", "measured", "energy_mj",
            "avg_power_mw", "idle_power_mw", "energy_above_idle_mj", "mj_per_inference",
            "mj_per_inference_above_idle", "rails", "samples", "lag_corrected", "flags")}

    def lines(self):
        head = "window '{}': {:.3f} s".format(self.name, self.duration_s)
        if self.inferences is not None:
            head += ", {} inferences".format(self.inferences)
        if not self.measured:
            out = [head + ", energy not measured"]
        else:
            out = [head + ", {:.1f} mJ total, {:.1f} mW average ({} samples)".format(
                self.energy_mj, self.avg_power_mw, self.samples)]
            if self.mj_per_inference is not None:
                line = "  per inference: {} total".format(_mj(self.mj_per_inference))
                if self.mj_per_inference_above_idle is not None:
                    line += ", {} above idle ({:.1f} mW idle)".format(
                        _mj(self.mj_per_inference_above_idle), self.idle_power_mw)
                out.append(line)
            elif self.energy_above_idle_mj is not None:
                out.append("  above idle: {:.1f} mJ ({:.1f} mW idle)".format(
                    self.energy_above_idle_mj, self.idle_power_mw))
            out.append("  rails: " + ", ".join("{} {:.1f} mJ ({:.0f} mW)".format(
                rail, row["energy_mj"], row["avg_power_mw"]) for rail, row in self.rails.items()))
        out += ["  ! " + flag for flag in self.flags]
        return out


def _mj(value):
    return "{:.4g} mJ".format(value)


class EnergyReport(object):
    """Everything a run's energy report says; ``to_dict()`` for JSON, ``lines()`` for people."""

    def __init__(self, measured, source=None, total=None, windows=(), idle=None, flags=(),
                 estimate=None, not_measured_reason=None, sampling=None):
        self.measured = bool(measured)
        self.source = source            # Source.info() or None
        self.total = total              # TotalPolicy.to_dict() or None
        self.windows = list(windows)
        self.idle = idle                # {"power_mw", "duration_s", "rails"} or None
        self.flags = list(flags)
        self.estimate = estimate        # describe_estimate(...) or None
        self.not_measured_reason = not_measured_reason
        self.sampling = sampling or {}

    def window(self, name):
        """The last :class:`WindowResult` called ``name`` (KeyError if none)."""
        for result in reversed(self.windows):
            if result.name == name:
                return result
        raise KeyError(name)

    def to_dict(self):
        return {"measured": self.measured, "source": self.source, "total": self.total,
                "idle": self.idle, "windows": [w.to_dict() for w in self.windows],
                "flags": list(self.flags), "estimate": self.estimate,
                "not_measured_reason": self.not_measured_reason, "sampling": self.sampling}

    def lines(self):
        out = []
        if self.source is not None:
            line = "energy: measured with {}".format(self.source["description"])
            if self.source.get("board"):
                line += " on {}".format(self.source["board"])
            out.append(line)
            total = self.total or {}
            line = "  total = {}".format(total.get("label"))
            if total.get("parts"):
                line += "; {} reported but not added".format(", ".join(total["parts"]))
            out.append(line)
            if self.sampling:
                out.append("  sampling: {} samples at {:.1f} Hz (asked {:g} Hz); sensor "
                           "averaging {:.3g} s ({})".format(
                               self.sampling.get("samples", 0),
                               self.sampling.get("achieved_hz") or 0.0,
                               self.sampling.get("rate_hz", 0.0),
                               self.source.get("averaging_s") or 0.0,
                               self.source.get("averaging_note") or "unknown"))
            if any(result.lag_corrected for result in self.windows):
                out.append("  window energies corrected for the sensor's lag (readings modelled "
                           "as {:.3g} s block averages, held; see docs/power.md)".format(
                               (self.source.get("sensor") or {}).get("period_s") or 0.0))
        else:
            out.append("energy: not measured ({})".format(short_reason(self.not_measured_reason)))
        if self.idle is not None:
            out.append("idle baseline: {:.1f} mW over {:.2f} s".format(
                self.idle["power_mw"], self.idle["duration_s"]))
        for result in self.windows:
            out += result.lines()
        out += ["! " + flag for flag in self.flags]
        if self.estimate is not None:
            out.append("ESTIMATE, not measured ({}): {:.4g} {}".format(
                self.estimate["label"], self.estimate["value"], self.estimate["unit"]))
        return out
