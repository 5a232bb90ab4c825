"""Calibrate the normalized model to a device: one scale (mJ per unit) fitted to measured engines.

A measurements file is a JSON list of ``{"onnx": path, "energy_mj_per_inference": x}`` (paths
relative to the file's folder; an optional ``"bits"`` per entry overrides the model's bit width,
e.g. 8 for an INT8 engine). The energy per inference is per sample (one image). The scale is the
least-squares fit through the origin, ``s = sum(e_i m_i) / sum(e_i^2)`` for estimates ``e_i``
(units) and measurements ``m_i`` (mJ); the fit error is reported per model and as relative RMS.
"""
import json
import math
import os

from basics.errors import InputError
from energy_model.formulas import EnergyModelConfig
from energy_model.onnx_graph import estimate_onnx


class Measurement(object):
    """One measured engine: the ONNX it was built from and its energy per inference (mJ)."""

    def __init__(self, onnx, energy_mj_per_inference, bits=None):
        if not isinstance(energy_mj_per_inference, (int, float)) or isinstance(
                energy_mj_per_inference, bool) or not energy_mj_per_inference > 0 or math.isinf(
                    energy_mj_per_inference):
            raise InputError("energy_mj_per_inference must be a positive number, got {!r} ({})"
                             .format(energy_mj_per_inference, onnx))
        self.onnx = onnx
        self.energy_mj_per_inference = float(energy_mj_per_inference)
        self.bits = bits

    def to_dict(self):
        data = {"onnx": self.onnx, "energy_mj_per_inference": self.energy_mj_per_inference}
        if self.bits is not None:
            data["bits"] = self.bits
        return data


def load_measurements(path):
    """The :class:`Measurement` list of a measurements JSON file (InputError on any problem)."""
    if not os.path.isfile(path):
        raise InputError("no such measurements file: {}".format(path))
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError("{} is not valid JSON: {}".format(path, exc)) from None
    if isinstance(data, dict) and isinstance(data.get("measurements"), list):
        data = data["measurements"]
    if not isinstance(data, list) or not data:
        raise InputError("{} must hold a non-empty JSON list of {{\"onnx\": path, "
                         "\"energy_mj_per_inference\": x}}".format(path))
    folder = os.path.dirname(os.path.abspath(path))
    out = []
    for index, entry in enumerate(data):
        if not isinstance(entry, dict) or "onnx" not in entry or \
                "energy_mj_per_inference" not in entry:
            raise InputError("{}: entry {} needs 'onnx' and 'energy_mj_per_inference', got {!r}"
                             .format(path, index, entry))
        onnx_path = str(entry["onnx"])
        if not os.path.isabs(onnx_path):
            onnx_path = os.path.join(folder, onnx_path)
        out.append(Measurement(onnx_path, entry["energy_mj_per_inference"], entry.get("bits")))
    return out


class Calibration(object):
    """The fitted scale and how well it fits: relative RMS error and one row per model."""

    def __init__(self, mj_per_unit, per_model):
        self.mj_per_unit = mj_per_unit
        self.per_model = per_model
        errors = [row["rel_error"] for row in per_model]
        self.rel_rms = math.sqrt(sum(e * e for e in errors) / len(errors))

    def to_dict(self):
        return {"mj_per_unit": self.mj_per_unit, "rel_rms": self.rel_rms, "models": self.per_model,
                "fit": "least squares through the origin over {} model(s)".format(
                    len(self.per_model))}

    def lines(self):
        out = ["calibration: {:.4g} mJ per normalized unit, fitted on {} model(s); relative RMS "
               "error {:.1%}".format(self.mj_per_unit, len(self.per_model), self.rel_rms)]
        if len(self.per_model) == 1:
            out.append("(one model fits exactly: measure at least two to see how well the model "
                       "predicts)")
        for row in self.per_model:
            out.append("  {}: measured {:.4g} mJ, estimated {:.4g} mJ ({:+.1%})".format(
                os.path.basename(row["onnx"]), row["measured_mj"], row["estimated_mj"],
                row["rel_error"]))
        return out


def fit_calibration(measurements, config=None):
    """Fit mJ per normalized unit to ``measurements`` (Measurement list or a file path)."""
    config = EnergyModelConfig() if config is None else config
    if isinstance(measurements, (str, os.PathLike)):
        measurements = load_measurements(os.fspath(measurements))
    if not measurements:
        raise InputError("calibration needs at least one measured model")
    estimates = []
    for item in measurements:
        item_config = config
        if item.bits is not None and item.bits != config.bits:
            data = config.to_dict()
            data.update(bits=item.bits, mj_per_unit=None)
            item_config = EnergyModelConfig(**data)
        elif config.mj_per_unit is not None:
            item_config = config.calibrated(None)
        # per image: an engine with a fixed batch of N computes N images per inference
        estimates.append(estimate_onnx(item.onnx, item_config).per_image)
    denominator = sum(e * e for e in estimates)
    if denominator <= 0:
        raise InputError("the measured models have no estimated energy; cannot calibrate")
    scale = sum(e * m.energy_mj_per_inference for e, m in zip(estimates, measurements)) / denominator
    rows = [{"onnx": m.onnx, "measured_mj": m.energy_mj_per_inference, "estimated_units": e,
             "estimated_mj": e * scale,
             "rel_error": (e * scale - m.energy_mj_per_inference) / m.energy_mj_per_inference}
            for e, m in zip(estimates, measurements)]
    return Calibration(scale, rows)
