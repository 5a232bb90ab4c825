"""The analytical energy estimate per sample of an engine file or a deployment, shown in energy
reports (clearly labelled as an estimate) when no power sensor measured the run.

Per model: the energy model's figure for its ONNX (:func:`toolkit.strategies.thresholds.
model_energy_cost`: 16-bit, batch 1, normalized units unless calibrated); an ``.engine``'s
sidecar names the ONNX it was built from (``source_onnx``, looked up next to the engine and
checked against ``source_onnx_sha256``). Per strategy, the expected energy per sample with the
rates the run observed (each node's own counters), by the formula its module declares
(``StrategyType.energy``, :mod:`toolkit.strategies.registry`):

- single: ``E(model)``
- cascade: ``E(first) + handoff_rate x E(second)``
- convert: ``E(converter) + E(classifier)``
- memo: ``(1 - memo hit rate) x E(inner)`` (the hashing itself is not costed)

This is the ONE walk of the strategy-level estimate (``toolkit bench``, ``toolkit run``,
``toolkit demo``). It reads counters after a run, never inside the timed loop.
"""
import os

from basics.errors import InputError, InternalError, ToolkitError


class EnergyModelEstimate(object):
    """Expected energy per sample by the analytical energy model: ``value`` in ``unit``,
    ``formula`` (how it was combined, with the rates) and ``models`` ({name: per-sample value}).

    ``mj_per_inference`` is set only when the model is calibrated to millijoules; ``total`` always
    holds the value (what :func:`toolkit.power.report.describe_estimate` reads).
    """

    def __init__(self, value, unit, formula, models):
        self.value = float(value)
        self.unit = unit
        self.formula = formula
        self.models = dict(models)

    @property
    def calibrated(self):
        return self.unit.startswith("mJ")

    @property
    def mj_per_inference(self):
        return self.value if self.calibrated else None

    @property
    def total(self):
        return self.value

    def to_dict(self):
        return {"value": self.value, "unit": self.unit, "formula": self.formula,
                "models": dict(self.models), "calibrated": self.calibrated}

    def line(self):
        """``estimate per sample = <formula> = <value> <unit>``."""
        return "estimate per sample = {} = {:.4g} {}".format(self.formula, self.value, self.unit)


def engine_source_onnx(path):
    """The ONNX an engine file was built from (``path`` itself for an ``.onnx``); InputError when
    it is not next to the engine or was changed since the build."""
    path = os.fspath(path)
    if path.lower().endswith(".onnx"):
        return path
    from basics.fileio import sha256_file
    from engines.engine_file import read_sidecar
    sidecar = read_sidecar(path)
    if not sidecar.source_onnx:
        raise InputError("{}'s sidecar does not name its source ONNX".format(path))
    onnx_path = os.path.join(os.path.dirname(os.path.abspath(path)), sidecar.source_onnx)
    if not os.path.isfile(onnx_path):
        raise InputError("{} was built from {}, which is not next to it".format(
            path, sidecar.source_onnx))
    if sidecar.source_onnx_sha256 and sha256_file(onnx_path) != sidecar.source_onnx_sha256:
        raise InputError("{} changed since {} was built from it".format(onnx_path, path))
    return onnx_path


def engine_bits(path):
    """The energy model's bit width for an engine file: 8 for an INT8 engine or a Q/DQ ONNX, else
    16 (the paper's)."""
    path = os.fspath(path)
    if path.lower().endswith(".onnx"):
        from basics.lazy import lazy_import
        from engines.onnx_checks import int8_op_types
        onnx = lazy_import("onnx", "the energy estimate of an ONNX model")
        return 8 if int8_op_types(onnx.load(path, load_external_data=False)) else 16
    from engines.engine_file import read_sidecar
    return 8 if read_sidecar(path).precision == "int8" else 16


class _Costs(object):
    """Per-model costs (one estimate per file), all in one unit."""

    def __init__(self):
        from toolkit.strategies.thresholds import model_energy_cost
        self._cost = model_energy_cost
        self._values = {}
        self.unit = None

    def __call__(self, path):
        if path not in self._values:
            value, unit = self._cost(engine_source_onnx(path), bits=engine_bits(path))
            if self.unit is not None and unit != self.unit:
                raise InputError("the models' estimates are in different units ({} vs {})".format(
                    self.unit, unit))
            self.unit = unit
            self._values[path] = value
        return self._values[path]


def estimate_engine_file(path, name=None):
    """The :class:`EnergyModelEstimate` per sample of one engine file or ONNX."""
    costs = _Costs()
    name = name or os.path.basename(os.fspath(path))
    value = costs(path)
    return EnergyModelEstimate(value, costs.unit, "E({})".format(name), {name: value})


def estimate_deployment(deployment):
    """The expected :class:`EnergyModelEstimate` per sample of a loaded
    :class:`toolkit.deployment.Deployment`, with the handoff and memo hit rates its strategy counted
    (call it after the run)."""
    names = {id(engine): name for name, engine in deployment.engines.items()}
    paths = {name: ref.path for name, ref in deployment.spec.engines.items()}
    costs = _Costs()
    models = {}

    def engine_term(engine):
        name = names.get(id(engine))
        if name is None:
            raise InternalError("an engine of the strategy is not one of the spec's engines")
        models[name] = costs(paths[name])
        return models[name], "E({})".format(name)

    def expected(node):
        from toolkit.strategies import registry
        from toolkit.strategies.base import Strategy
        if not isinstance(node, Strategy):
            return engine_term(node)
        declaration = registry.declaration_for(node)
        if declaration is None:
            raise InputError("no energy estimate for a {} strategy (it is not registered)".format(
                type(node).__name__))
        try:
            return declaration.energy(node, expected)
        except NotImplementedError as exc:
            raise InputError(str(exc)) from None

    value, formula = expected(deployment.strategy)
    return EnergyModelEstimate(value, costs.unit, formula, models)


def try_estimate(function, *args):
    """``(estimate, None)`` or ``(None, why)``: reports show the reason instead of failing when
    the energy model cannot run here (no onnx package, the engine's ONNX is missing, ...)."""
    try:
        return function(*args), None
    except ToolkitError as exc:
        return None, str(exc)


def report_with_estimate(meter, estimate_function, *args):
    """``(report dict, lines)`` of a :class:`toolkit.power.meter.PowerMeter`'s report with the
    estimate ``estimate_function(*args)`` added, clearly labelled (or the reason there is none).
    For runs whose window was not measured; the estimate is computed here, after the run."""
    estimate, why_not = try_estimate(estimate_function, *args)
    report = meter.report(estimate=estimate)
    energy, lines = report.to_dict(), list(report.lines())
    if estimate is not None:
        energy["estimate_detail"] = estimate.to_dict()
        lines.append("  " + estimate.line())
    else:
        energy["estimate_unavailable"] = why_not
        lines.append("ESTIMATE unavailable: {}".format(why_not))
    return energy, lines


def measured_or_estimated(meter, window, estimate_function, *args):
    """``(report dict, lines)`` of a :class:`toolkit.power.meter.PowerMeter` after its window
    named ``window``: the measurement when that window was measured, else the report with the
    estimate ``estimate_function(*args)`` (the one rule "measure energy, else estimate it" of
    ``toolkit run``, ``toolkit bench``)."""
    report = meter.report()
    if report.window(window).measured:
        return report.to_dict(), list(report.lines())
    return report_with_estimate(meter, estimate_function, *args)
