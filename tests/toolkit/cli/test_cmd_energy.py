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
    assert main(["energy", small_cnn_onnx, "--batch", "0"]) == 1
    _one_line_error(capsys, "--batch must be at least 1")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["energy", small_cnn_onnx, "--calibration", str(bad)]) == 1
    _one_line_error(capsys, "non-empty JSON list")
    assert main(["energy", small_cnn_onnx, "--bits", "4"]) == 2  # click usage error
