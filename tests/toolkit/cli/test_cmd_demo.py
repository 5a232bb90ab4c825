"""``toolkit demo``: the whole flow, kept quick (1 epoch, few timed calls, a temp folder)."""
import json
import os

import pytest

from toolkit.cli.main import main

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def test_help(capsys):
    assert main(["demo", "--help"]) == 0
    out = capsys.readouterr().out
    for words in ("Steps:", "train export.models.small_cnn", "Examples:", "toolkit demo --out",
                  "under 3 minutes"):
        assert words in out


def test_demo_runs_end_to_end(tmp_path, capsys):
    out_dir = str(tmp_path / "demo")
    assert main(["demo", "--out", out_dir, "--epochs", "1", "--iterations", "3", "--backend",
                 "onnxruntime", "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    steps = [line.split(":")[0] for line in lines]
    assert steps == ["data", "train", "export", "build", "evaluate", "latency", "latency", "report"]
    assert "latency: batch  1: median" in lines[5] and "p95" in lines[5]
    assert "latency: batch 32: median" in lines[6] and "images/s" in lines[6]
    for name in ("small_cnn.onnx", "small_cnn.onnx.json", "small_cnn.engine",
                 "small_cnn.engine.json", "demo_report.json"):
        assert os.path.isfile(os.path.join(out_dir, name)), name
    with open(os.path.join(out_dir, "demo_report.json")) as handle:
        report = json.load(handle)
    steps = report["steps"]
    assert steps["build"]["backend"] == "onnxruntime"
    assert steps["evaluate"]["samples"] == 360
    # one epoch already beats chance by far; the engine agrees with PyTorch
    assert steps["evaluate"]["engine_test_accuracy"] > 0.3
    assert abs(steps["evaluate"]["engine_test_accuracy"]
               - steps["train"]["torch_test_accuracy"]) < 0.01
    assert set(steps["latency"]) == {"1", "32"} and steps["latency"]["32"]["calls"] == 3


def test_bad_epochs(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--epochs", "0"]) == 1
    assert capsys.readouterr().err.strip() == "error: --epochs must be at least 1, got 0"
