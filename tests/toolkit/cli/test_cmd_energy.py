"""``toolkit energy``: table, JSON, bit width, calibration and one-line errors."""
import json

import pytest

from toolkit.cli.main import main

pytest.importorskip("onnx")


def _one_line_error(capsys, words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err


def test_help_explains_with_examples(capsys):
    assert main(["energy", "--help"]) == 0
    out = capsys.readouterr().out
    for words in ("DRAM 200", "global buffer 6", "--calibration", "--bits", "Examples:",
                  "toolkit energy model.onnx", "normalized units"):
        assert words in out


def test_table_in_normalized_units(small_cnn_onnx, capsys):
    assert main(["energy", small_cnn_onnx]) == 0
    out = capsys.readouterr().out
    assert "not calibrated" in out
    assert "features.1.0/Conv" in out and "classifier/Gemm" in out
    assert "total:" in out and "by level:" in out and "dram" in out


def test_json_and_8_bit(small_cnn_onnx, capsys):
    assert main(["energy", small_cnn_onnx, "--json"]) == 0
    sixteen = json.loads(capsys.readouterr().out)
    assert main(["energy", small_cnn_onnx, "--json", "--bits", "8"]) == 0
    eight = json.loads(capsys.readouterr().out)
    assert sixteen["config"]["bits"] == 16 and eight["config"]["bits"] == 8
    total16 = sixteen["totals"]["energy_units"]["total"]
    assert eight["totals"]["energy_units"]["total"] < total16
    assert sum(layer["energy_units"]["total"] for layer in sixteen["layers"]) == pytest.approx(total16)


def test_calibration_gives_millijoules_and_the_fit_error(small_cnn_onnx, tmp_path, capsys):
    assert main(["energy", small_cnn_onnx, "--json"]) == 0
    units = json.loads(capsys.readouterr().out)["totals"]["energy_units"]["total"]
    measured = tmp_path / "measured.json"
    measured.write_text(json.dumps([{"onnx": small_cnn_onnx,
                                     "energy_mj_per_inference": units * 1e-6}]))
    assert main(["energy", small_cnn_onnx, "--calibration", str(measured)]) == 0
    out = capsys.readouterr().out
    assert "mJ per inference (calibrated" in out and "relative RMS error 0.0%" in out
    assert "one model fits exactly" in out
    assert main(["energy", small_cnn_onnx, "--calibration", str(measured), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["energy_mj_per_inference"] == pytest.approx(units * 1e-6)
    assert data["calibration"]["mj_per_unit"] == pytest.approx(1e-6)


def test_errors_are_one_line(small_cnn_onnx, tmp_path, capsys):
    assert main(["energy", str(tmp_path / "none.onnx")]) == 1
    _one_line_error(capsys, "no such ONNX file")
    assert main(["energy", small_cnn_onnx, "--batch", "0"]) == 2  # click's usage error
    _one_line_error(capsys, "'--batch': 0 is not in the range x>=1")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["energy", small_cnn_onnx, "--calibration", str(bad)]) == 1
    _one_line_error(capsys, "non-empty JSON list")
    assert main(["energy", small_cnn_onnx, "--bits", "4"]) == 2  # click usage error


def _save(tmp_path, name, model):
    import onnx
    path = str(tmp_path / name)
    onnx.save(model, path)
    return path


def test_a_fixed_batch_1_model_with_batch_16_says_batch_1(tmp_path, capsys):
    """It used to say "batch 16" and report the batch-1 total (per image, 16x wrong)."""
    import numpy as np
    from tests.energy_model.test_energy_model import conv_model
    path = _save(tmp_path, "b1.onnx", conv_model(np.ones((3, 2, 3, 3)), in_shape=(1, 2, 4, 4)))
    assert main(["energy", path, "--batch", "16"]) == 0
    out = capsys.readouterr().out
    assert "batch 1 fixed by the model" in out and "batch 16;" not in out
    assert "the ONNX fixes the batch at 1; the requested batch 16 does not apply" in out
    assert main(["energy", path, "--batch", "16", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["batch"] == 1 and data["batch_fixed"]
    assert data["energy_units_per_image"] == pytest.approx(data["totals"]["energy_units"]["total"])


def test_a_fixed_batch_4_model_by_default_reports_batch_4_and_per_image(tmp_path, capsys):
    """It used to say "batch 1" with a total 3.8x the one-image figure."""
    import numpy as np
    from tests.energy_model.test_energy_model import conv_model
    fixed = _save(tmp_path, "b4.onnx", conv_model(np.ones((3, 2, 3, 3)), in_shape=(4, 2, 4, 4)))
    dynamic = _save(tmp_path, "bn.onnx", conv_model(np.ones((3, 2, 3, 3))))
    assert main(["energy", fixed]) == 0
    out = capsys.readouterr().out
    assert "batch 4 fixed by the model" in out and "per inference of 4 images" in out
    assert main(["energy", fixed, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert main(["energy", dynamic, "--json", "--batch", "4"]) == 0
    four = json.loads(capsys.readouterr().out)
    assert data["batch"] == 4
    assert data["energy_units_per_image"] == pytest.approx(
        four["totals"]["energy_units"]["total"] / 4)


def test_data_measures_activation_sparsity(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    import numpy as np
    from tests.energy_model.test_energy_model import relu_net
    rng = np.random.RandomState(0)
    path = _save(tmp_path, "relu.onnx", relu_net(rng)[0])
    npz = str(tmp_path / "x.npz")
    np.savez(npz, images=rng.randn(30, 4, 5, 5).astype(np.float32),
             labels=np.arange(30) % 3)
    assert main(["energy", path, "--json"]) == 0
    dense = json.loads(capsys.readouterr().out)
    assert main(["energy", path, "--json", "--data", npz + ":train", "--no-progress"]) == 0
    sparse = json.loads(capsys.readouterr().out)
    assert dense["activation_sparsity"] is None
    assert sparse["activation_sparsity"]["samples"] == 18  # the train part of 30
    assert 0.3 < sparse["activation_sparsity"]["zero_fractions"]["r1"] < 0.7
    assert sparse["totals"]["energy_units"]["total"] < dense["totals"]["energy_units"]["total"]
    assert main(["energy", path, "--data", npz, "--data-samples", "10", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "zeros measured on x.npz (10 samples)" in out and "in 0s" in out
