"""``toolkit calibrate``: TensorRT caches (through the TensorRT test double, 8.2 and 10 modes), Q/DQ
ONNX through ONNX Runtime, and every bad input as a one-line error."""
import json
import os
import sys

import numpy as np
import pytest

from tests.engines.trt_double import install_trt_double
from toolkit.cli.main import main

pytest.importorskip("onnxruntime.quantization")
pytest.importorskip("onnx")


def _one_line_error(capsys, words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err
    return err[0]


def _json(capsys):
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def no_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)


def test_help(capsys):
    assert main(["calibrate", "--help"]) == 0
    out = capsys.readouterr().out
    for words in ("Examples:", "toolkit calibrate model.onnx --data digits:train -o model.cache",
                  "--format qdq", "toolkit build model.int8.onnx --precision int8", "entropy2",
                  "percentile", "--max-batches", "TensorRT 11"):
        assert words in out, words


def test_qdq_writes_a_model_that_builds_as_int8(small_cnn_onnx, tmp_path, capsys, no_tensorrt):
    out = str(tmp_path / "m.int8.onnx")
    assert main(["calibrate", small_cnn_onnx, "--data", "digits:train", "--format", "qdq",
                 "-o", out, "--batch", "16", "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("quantized {} to Q/DQ INT8 on digits:train with ONNX Runtime"
                               .format(small_cnn_onnx))
    assert "67 batches of 16 = 1072 samples" in lines[0]
    assert lines[1].startswith("ONNX Runtime's CPU runs it as u8s8")
    assert lines[2].startswith("INT8 vs fp32 on 256 calibration samples: top-1 agreement ")
    assert lines[-1] == "next: toolkit build {} --precision int8 -o {}".format(
        out, out[:-len(".onnx")] + ".engine")
    assert os.path.isfile(out) and os.path.isfile(out + ".json")
    # the build checks again on the data the sidecar names (digits:train)
    assert main(["build", out, "--precision", "int8", "-o", str(tmp_path / "m.engine"),
                 "--no-progress"]) == 0
    out_text = capsys.readouterr().out
    assert "int8: the model's own quantization" in out_text
    assert "note: int8 gate: INT8 vs fp32 on 256 calibration samples" in out_text


def test_eval_data_reports_both_accuracies_and_the_bound_fails(small_cnn_onnx, tmp_path,
                                                               capsys):
    out = str(tmp_path / "m.int8.onnx")
    assert main(["calibrate", small_cnn_onnx, "--data", "digits:train", "-o", out,
                 "--eval-data", "digits:test", "--no-progress", "--json"]) == 0
    gate = _json(capsys)["gate"]
    assert gate["eval_samples"] == 360 and 0 < gate["int8_top1"] <= 1
    assert gate["accuracy_drop_points"] == pytest.approx(
        100 * (gate["fp32_top1"] - gate["int8_top1"]))
    assert main(["build", out, "--precision", "int8", "-o", str(tmp_path / "m.engine"),
                 "--eval-data", "digits:test", "--no-progress"]) == 0
    assert "eval data (360 labelled samples): INT8 top-1" in capsys.readouterr().out


@pytest.mark.parametrize("args, words", [
    (["--max-accuracy-drop", "0.5"], "--max-accuracy-drop needs --eval-data"),
    (["--eval-data", "digits16:test"], "the calibration images of digits16:test are 1x16x16"),
    (["--format", "cache", "--eval-data", "digits:test"], "are for --format qdq"),
])
def test_gate_options_errors(small_cnn_onnx, tmp_path, capsys, args, words):
    out = str(tmp_path / ("m.cache" if "cache" in args else "m.int8.onnx"))
    assert main(["calibrate", small_cnn_onnx, "--data", "digits:train", "-o", out,
                 "--no-progress"] + args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert os.listdir(str(tmp_path)) == []


def test_format_follows_the_output_name_and_json(small_cnn_onnx, tmp_path, capsys):
    out = str(tmp_path / "q.onnx")
    assert main(["calibrate", small_cnn_onnx, "--data", "digits:val", "-o", out, "--algorithm",
                 "minmax", "--max-batches", "4", "--json", "--no-progress"]) == 0
    report = _json(capsys)
    assert report["format"] == "qdq" and report["output_path"] == out
    assert (report["algorithm"], report["batches"], report["samples"]) == ("minmax", 4, 32)
    assert report["data"] == "digits:val" and report["int8_ops"] == ["DequantizeLinear",
                                                                      "QuantizeLinear"]


def test_default_qdq_output_next_to_the_model(small_cnn_onnx, tmp_path, capsys):
    import shutil
    model = str(tmp_path / "m.onnx")
    shutil.copy(small_cnn_onnx, model)
    shutil.copy(small_cnn_onnx + ".json", model + ".json")
    assert main(["calibrate", model, "--data", "digits:val", "--format", "qdq", "--max-batches",
                 "2", "--no-progress"]) == 0
    assert sorted(os.listdir(str(tmp_path))) == ["m.int8.onnx", "m.int8.onnx.json", "m.onnx",
                                                 "m.onnx.json"]


def test_qdq_from_an_image_folder(small_cnn_onnx, tmp_path, digits_splits, capsys):
    from tests.calibration.test_sources import write_png_digits
    root = write_png_digits(tmp_path / "images", digits_splits[0], 80)  # the gate compares 80
    out = str(tmp_path / "q.onnx")
    assert main(["calibrate", small_cnn_onnx, "--data", root, "-o", out, "--batch", "16",
                 "--json", "--no-progress"]) == 0
    report = _json(capsys)
    assert (report["batches"], report["data"]) == (5, "images")


def test_cache_without_tensorrt_is_one_clear_line(small_cnn_onnx, tmp_path, capsys, no_tensorrt):
    out = str(tmp_path / "m.cache")
    assert main(["calibrate", small_cnn_onnx, "--data", "digits:train", "-o", out]) == 1
    line = _one_line_error(capsys, "a calibration cache needs TensorRT")
    assert "JetPack" in line and "--format qdq -o MODEL.int8.onnx" in line
    assert not os.path.exists(out)


def test_cache_with_tensorrt_installed_but_unusable(small_cnn_onnx, tmp_path, capsys, monkeypatch):
    install_trt_double(monkeypatch, "8.2")
    monkeypatch.setitem(sys.modules, "pycuda", None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    assert main(["calibrate", small_cnn_onnx, "--data", "digits:train"]) == 1
    _one_line_error(capsys, "TensorRT is installed but cannot run here")


def test_cache_on_a_gpu_without_int8_says_so_in_calibrate_terms(small_cnn_onnx, tmp_path,
                                                                capsys, monkeypatch):
    install_trt_double(monkeypatch, "8.2", fast_int8=False)  # a Jetson Nano
    out = str(tmp_path / "m.cache")
    assert main(["calibrate", small_cnn_onnx, "--data", "digits:train", "-o", out]) == 1
    line = _one_line_error(capsys, "this GPU (NVIDIA Tegra X1, compute capability 5.3) has no "
                                   "fast INT8, so TensorRT 8.2.1.8 cannot calibrate")
    assert "--precision fp16" in line and "--format qdq" in line and "build with" in line
    assert not os.path.exists(out)


@pytest.mark.parametrize("mode", ["8.2", "8.5", "10"])
@pytest.mark.parametrize("algorithm, tag", [("entropy2", "EntropyCalibration2"),
                                            ("minmax", "MinMaxCalibration")])
def test_cache_with_tensorrt_then_an_int8_build(small_cnn_onnx, tmp_path, capsys, monkeypatch,
                                                mode, algorithm, tag):
    from engines.tensorrt_calibrator import read_cache
    double = install_trt_double(monkeypatch, mode)
    cache = str(tmp_path / "m.cache")
    assert main(["calibrate", small_cnn_onnx, "--data", "digits:train", "-o", cache,
                 "--algorithm", algorithm, "--batch", "8", "--max-batches", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("calibrated {} on digits:train with TensorRT {} ({}): 3 batches of 8 = 24 "
                        "samples".format(small_cnn_onnx, double.trt.__version__, algorithm))
    assert lines[1].startswith("wrote {} (TRT-".format(cache)) and lines[1].endswith(tag + ")")
    assert lines[2].startswith("next: toolkit build {} --precision int8 --calibration-cache {}"
                               .format(small_cnn_onnx, cache))
    assert read_cache(cache).algorithm == algorithm
    assert double.gpu.counts["htod"] == 3 and double.gpu.live_allocations() == 0
    engine = str(tmp_path / "m.engine")
    assert main(["build", small_cnn_onnx, "--precision", "int8", "--calibration-cache", cache,
                 "--max-batch", "8", "-o", engine, "--json"]) == 0
    sidecar = _json(capsys)
    assert sidecar["backend"] == "tensorrt" and sidecar["precision"] == "int8"
    assert any("calibration cache m.cache" in note for note in sidecar["notes"])


def test_cache_json_and_default_output(small_cnn_onnx, tmp_path, capsys, monkeypatch):
    import shutil
    install_trt_double(monkeypatch, "10")
    model = str(tmp_path / "m.onnx")
    shutil.copy(small_cnn_onnx, model)
    assert main(["calibrate", model, "--data", "digits:train", "--max-batches", "2",
                 "--json"]) == 0
    report = _json(capsys)
    assert report["cache_path"] == str(tmp_path / "m.cache") and report["format"] == "cache"
    assert report["batches"] == 2 and report["header"].endswith("-EntropyCalibration2")


@pytest.mark.parametrize("args, words", [
    (["--batch", "0"], "'--batch': 0 is not in the range x>=1"),
    (["--max-batches", "0"], "'--max-batches': 0 is not in the range x>=1"),
    (["--workspace-mb", "0", "-o", "x.cache"], "'--workspace-mb': 0 is not in the range x>=1"),
    (["--format", "cache", "-o", "x.onnx"], "a calibration cache is not an ONNX model"),
    (["--format", "qdq", "-o", "x.cache"], "the output must end in .onnx"),
    (["--algorithm", "percentile", "-o", "x.cache"], "'percentile' is for --format qdq"),
    (["--data", "digits16", "-o", "x.onnx"], "images of digits16 are 1x16x16"),
    (["--batch", "2000", "-o", "x.onnx"], "at least one full batch of 2000 images, got 1078"),
])
def test_bad_options(small_cnn_onnx, tmp_path, capsys, monkeypatch, args, words):
    install_trt_double(monkeypatch, "10")  # the cache checks must not depend on TensorRT
    monkeypatch.chdir(str(tmp_path))
    argv = ["calibrate", small_cnn_onnx, "--data", "digits:train", "--no-progress"]
    if args[0] == "--data":
        argv[3] = args[1]
        args = args[2:]
    assert main(argv + args) == (2 if words.startswith("'--") else 1)  # usage errors: exit 2
    _one_line_error(capsys, words)
    assert os.listdir(str(tmp_path)) == []


def test_old_batch_size_spelling_is_a_hidden_alias(small_cnn_onnx, tmp_path, capsys):
    assert "--batch-size" not in (main(["calibrate", "--help"]), capsys.readouterr().out)[1]
    out = str(tmp_path / "m.int8.onnx")
    assert main(["calibrate", small_cnn_onnx, "--data", "digits:train", "-o", out,
                 "--batch-size", "16", "--max-batches", "2", "--no-progress", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["batch_size"] == 16
    assert "--batch-size is deprecated, use --batch" in captured.err
    assert main(["calibrate", small_cnn_onnx, "--data", "digits:train", "-o", out,
                 "--batch-size", "16", "--batch", "8"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        "error: give --batch or its old spelling --batch-size, not both")


def test_missing_model_and_bad_data(small_cnn_onnx, tmp_path, capsys):
    assert main(["calibrate", str(tmp_path / "none.onnx"), "--data", "digits:train",
                 "--format", "qdq"]) == 1
    _one_line_error(capsys, "no such ONNX file")
    empty = str(tmp_path / "empty.npz")
    np.savez(empty, images=np.zeros((0, 1, 8, 8), np.float32))
    assert main(["calibrate", small_cnn_onnx, "--data", empty, "--format", "qdq", "-o",
                 str(tmp_path / "q.onnx")]) == 1
    _one_line_error(capsys, "the data set is empty")
    (tmp_path / "folder" / "cat").mkdir(parents=True)
    assert main(["calibrate", small_cnn_onnx, "--data", str(tmp_path / "folder"), "-o",
                 str(tmp_path / "q.onnx")]) == 1
    _one_line_error(capsys, "has no image files")
    assert sorted(os.listdir(str(tmp_path))) == ["empty.npz", "folder"]


@pytest.mark.parametrize("module, words", [
    ("onnxruntime.quantization", "'onnxruntime.quantization' is needed for quantizing ONNX models "
                                 "to Q/DQ INT8 but is not installed: pip install onnxruntime"),
    ("onnx", "'onnx' is needed for quantizing ONNX models to Q/DQ INT8 but is not installed: "
             "pip install onnx"),
])
def test_qdq_without_its_dependencies(small_cnn_onnx, tmp_path, capsys, monkeypatch, module,
                                      words):
    monkeypatch.setitem(sys.modules, module, None)
    assert main(["calibrate", small_cnn_onnx, "--data", "digits:train", "-o",
                 str(tmp_path / "q.onnx")]) == 1
    _one_line_error(capsys, words)
    assert os.listdir(str(tmp_path)) == []
