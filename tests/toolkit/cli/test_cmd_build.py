"""``toolkit build`` through the CLI entry point: output, JSON, defaults and one-line errors."""
import json
import os

import pytest

from toolkit.cli.main import main

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from tests.engines.test_onnxruntime_backend import write_scale_model  # noqa: E402


def _one_line_error(capsys, words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err


def test_help_explains_with_examples(capsys):
    assert main(["build", "--help"]) == 0
    out = capsys.readouterr().out
    for words in ("Examples:", "toolkit build model.onnx --precision fp16", "--max-batch",
                  "--calibration-cache", "--backend", "sidecar", "the Nano has FP16, no INT8"):
        assert words in out


def test_build_prints_what_it_built(small_cnn_onnx, tmp_path, capsys):
    out = str(tmp_path / "digits.engine")
    assert main(["build", small_cnn_onnx, "-o", out, "--max-batch", "8", "--backend",
                 "onnxruntime"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("built {} (".format(out))
    assert "onnxruntime fp32, batch 1/8/8" in text
    assert "input  input        Nx1x8x8 float32" in text
    assert "sidecar: {}.json".format(out) in text
    assert os.path.isfile(out) and os.path.isfile(out + ".json")


def test_default_output_and_json(tmp_path, capsys):
    model = write_scale_model(tmp_path / "scale.onnx")
    assert main(["build", model, "--precision", "fp16", "--min-batch", "2", "--opt-batch", "4",
                 "--max-batch", "8", "--json", "--backend", "onnxruntime"]) == 0
    sidecar = json.loads(capsys.readouterr().out)
    assert os.path.isfile(str(tmp_path / "scale.engine"))
    assert (sidecar["precision"], sidecar["min_batch"], sidecar["opt_batch"],
            sidecar["max_batch"]) == ("fp16", 2, 4, 8)
    assert sidecar["source_onnx"] == "scale.onnx"


@pytest.mark.parametrize("args, words", [
    (["--min-batch", "8", "--max-batch", "4"], "batch profile needs 1 <= min (8) <= opt (4) <= max (4)"),
    (["--workspace-mb", "0"], "'--workspace-mb': 0 is not in the range x>=1"),
    (["--precision", "int8"], "already holds Q/DQ nodes"),
    (["--calibration-cache", "c.cache"], "--calibration-cache only applies to --precision int8"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, args, words):
    model = write_scale_model(tmp_path / "m.onnx")
    assert main(["build", model, "-o", str(tmp_path / "m.engine"), "--backend", "onnxruntime"]
                + args) == (2 if words.startswith("'--") else 1)  # usage errors keep exit 2
    _one_line_error(capsys, words)


def test_missing_and_malformed_onnx(tmp_path, capsys):
    assert main(["build", str(tmp_path / "missing.onnx")]) == 1
    _one_line_error(capsys, "no such ONNX file")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01 definitely not a model")
    assert main(["build", str(bad)]) == 1
    _one_line_error(capsys, "is not a valid ONNX model")


def test_unknown_precision_is_a_usage_error(tmp_path, capsys):
    model = write_scale_model(tmp_path / "m.onnx")
    assert main(["build", model, "--precision", "int4"]) == 2
    assert "'int4' is not one of" in capsys.readouterr().err
