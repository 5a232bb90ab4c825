"""The analytical estimate per sample of engines and deployments (toolkit.energy_estimate)."""
import shutil

import numpy as np
import pytest

from basics.errors import InputError
from tests.toolkit.strategies.conftest import linear_image_onnx, logits_onnx
from toolkit.energy_estimate import (
    EnergyModelEstimate,
    engine_source_onnx,
    estimate_deployment,
    estimate_engine_file,
    try_estimate,
)
from toolkit.power.report import describe_estimate

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def _cost(path):
    from toolkit.strategies.thresholds import model_energy_cost
    return model_energy_cost(str(path))[0]


def _write(path, data):
    with open(str(path), "wb") as handle:
        handle.write(data)
    return str(path)


def test_the_estimate_reads_as_normalized_or_calibrated():
    normalized = EnergyModelEstimate(12.5, "normalized energy units per sample (energy model)",
                                     "E(a)", {"a": 12.5})
    described = describe_estimate(normalized)
    assert described["value"] == 12.5 and described["unit"].startswith("normalized")
    assert "analytical estimate" in described["label"]
    calibrated = EnergyModelEstimate(0.25, "mJ per sample (energy model, calibrated)", "E(a)",
                                     {"a": 0.25})
    described = describe_estimate(calibrated)
    assert described["value"] == 0.25 and described["unit"] == "mJ per inference"
    assert calibrated.line() == ("estimate per sample = E(a) = 0.25 mJ per sample "
                                 "(energy model, calibrated)")


def test_an_engine_file_is_estimated_from_its_checked_source_onnx(small_cnn_onnx, tmp_path):
    from toolkit.cli.main import main
    shutil.copy(small_cnn_onnx, str(tmp_path / "m.onnx"))
    engine = str(tmp_path / "m.engine")
    assert main(["build", str(tmp_path / "m.onnx"), "-o", engine, "--backend",
                 "onnxruntime"]) == 0
    assert engine_source_onnx(engine) == str(tmp_path / "m.onnx")
    estimate = estimate_engine_file(engine, "m")
    assert estimate.value == pytest.approx(_cost(small_cnn_onnx)) and estimate.formula == "E(m)"
    _write(tmp_path / "m.onnx", linear_image_onnx(np.ones((64, 10))))  # another model now
    with pytest.raises(InputError, match="m.onnx changed since .*m.engine was built from it"):
        estimate_engine_file(engine)
    (tmp_path / "m.onnx").unlink()
    estimate, why = try_estimate(estimate_engine_file, engine)
    assert estimate is None and "m.onnx, which is not next to it" in why


def test_an_int8_engine_is_estimated_at_8_bits(small_cnn_onnx, digits_splits, tmp_path):
    """An INT8 engine moves half the bytes of a 16-bit one: its estimate must say so (it used to
    be costed at 16 bits, the same figure as the FP32 engine)."""
    from calibration.qdq import quantize_qdq
    from toolkit.cli.main import main
    from energy_model import EnergyModelConfig, estimate_onnx
    qdq = str(tmp_path / "m.int8.onnx")
    quantize_qdq(small_cnn_onnx, digits_splits[0].images[:64], qdq)
    engine = str(tmp_path / "m.int8.engine")
    assert main(["build", qdq, "-o", engine, "--precision", "int8", "--backend",
                 "onnxruntime", "--data", "digits:train", "--no-progress"]) == 0
    estimate = estimate_engine_file(engine, "m")
    assert estimate.value == pytest.approx(estimate_onnx(qdq, EnergyModelConfig(bits=8)).total)
    assert estimate.value < 0.75 * _cost(small_cnn_onnx)
    assert estimate_engine_file(qdq).value == pytest.approx(estimate.value)


def _deployment(tmp_path, text):
    from toolkit.deployment import load_spec
    path = tmp_path / "deploy.yaml"
    path.write_text(text)
    return load_spec(str(path))


def test_memo_of_a_cascade_is_weighted_by_the_observed_rates(tmp_path, small_cnn_onnx,
                                                            digits_splits):
    from toolkit.deploy import duplicate
    from toolkit.running import run_deployment
    shutil.copy(small_cnn_onnx, str(tmp_path / "small.onnx"))
    _write(tmp_path / "linear.onnx", linear_image_onnx(np.random.RandomState(0).randn(64, 10)))
    with _deployment(tmp_path, "engines: {linear: linear.onnx, small: small.onnx}\n"
                     "strategy: {type: cascade, first: linear, second: small, threshold: 0.9}\n"
                     "memo: exact\n") as deployment:
        report = run_deployment(deployment, duplicate(digits_splits[2], 0.5), batch_size=50)
        estimate = estimate_deployment(deployment)
    linear, small = _cost(tmp_path / "linear.onnx"), _cost(tmp_path / "small.onnx")
    hit, handoff = report.stats["memo_hit_rate"], report.stats["handoff_rate"]
    assert 0 < hit < 1 and 0 < handoff < 1
    assert estimate.value == pytest.approx((1 - hit) * (linear + handoff * small))
    assert estimate.formula == "(1 - {:.3f}) x [E(linear) + {:.3f} x E(small)]".format(hit,
                                                                                      handoff)
    assert estimate.models == {"linear": linear, "small": small}


def test_nested_cascades_and_convert(tmp_path, small_cnn_onnx, digits_splits):
    from toolkit.running import run_deployment
    shutil.copy(small_cnn_onnx, str(tmp_path / "small.onnx"))
    _write(tmp_path / "linear.onnx", linear_image_onnx(np.random.RandomState(0).randn(64, 10)))
    _write(tmp_path / "neg.onnx", logits_onnx(None, shape=(1, 8, 8), negate=True))
    with _deployment(tmp_path, "engines: {linear: linear.onnx, small: small.onnx, ae: neg.onnx}\n"
                     "strategy: {type: cascade, first: linear, threshold: 0.9, second: "
                     "{type: convert, converter: ae, classifier: small}}\n") as deployment:
        report = run_deployment(deployment, digits_splits[2], batch_size=64)
        estimate = estimate_deployment(deployment)
    rate = report.stats["handoff_rate"]
    linear, small, ae = (_cost(tmp_path / n) for n in ("linear.onnx", "small.onnx", "neg.onnx"))
    assert estimate.value == pytest.approx(linear + rate * (ae + small))
    assert estimate.formula == "E(linear) + {:.3f} x [E(ae) + E(small)]".format(rate)
    assert estimate.to_dict()["calibrated"] is False


def test_models_in_different_units_are_an_error(tmp_path, small_cnn_onnx, monkeypatch):
    from toolkit.strategies import thresholds
    units = iter(["normalized", "mJ per sample"])
    monkeypatch.setattr(thresholds, "model_energy_cost", lambda path, bits=16: (1.0, next(units)))
    shutil.copy(small_cnn_onnx, str(tmp_path / "a.onnx"))
    shutil.copy(small_cnn_onnx, str(tmp_path / "b.onnx"))
    with _deployment(tmp_path, "engines: {a: a.onnx, b: b.onnx}\n"
                     "strategy: {type: cascade, first: a, second: b, threshold: 0.5}\n") as dep:
        with pytest.raises(InputError, match="different units"):
            estimate_deployment(dep)
