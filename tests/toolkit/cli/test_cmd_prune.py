"""``toolkit prune``: stand-alone run on digits (trains first), JSON report, one-line errors."""
import json

import pytest

from toolkit.cli.main import main

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from export import models  # noqa: E402

FAST = ["--train-epochs", "2", "--finetune-epochs", "1", "--rounds", "1",
        "--calibration-samples", "64", "--latency-batch", "4"]


def _one_line_error(capsys, words):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and words in err[-1], err


def test_help_explains_with_examples(capsys):
    assert main(["prune", "--help"]) == 0
    out = capsys.readouterr().out
    for words in ("package.module:factory", "--target-energy", "--granularity", "channels",
                  "--max-accuracy-drop", "Examples:", "toolkit prune export.models:small_cnn",
                  "normalized units"):
        assert words in out


def test_prunes_a_factory_stand_alone_and_writes_onnx_and_report(tmp_path, capsys):
    output = tmp_path / "pruned.onnx"
    code = main(["prune", "export.models:tiny_cnn", "--data", "digits", "--target-energy", "0.8",
                 "--max-accuracy-drop", "0.5", "-o", str(output)] + FAST)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert output.exists() and (tmp_path / "pruned.onnx.json").exists()
    report = json.loads((tmp_path / "pruned.prune.json").read_text())
    assert report["granularity"] == "weights" and report["model"] == "export.models:tiny_cnn"
    assert report["path"][0]["stage"] == "baseline"
    assert report["latency"]["batch"] == 4
    assert "round stage" in captured.out and "estimated energy" in captured.out
    assert "baseline: energy" in captured.err  # progress goes to stderr
    from energy_model import estimate_onnx
    assert estimate_onnx(str(output)).total == pytest.approx(report["final"]["energy_units"])


def test_channels_with_weights_and_json(tmp_path, capsys):
    weights = tmp_path / "w.pt"
    torch.manual_seed(0)
    torch.save(models.tiny_cnn().state_dict(), str(weights))
    report = tmp_path / "r.json"
    code = main(["prune", "export.models:tiny_cnn", "--weights", str(weights), "--granularity",
                 "channels", "--target-energy", "0.9", "--max-accuracy-drop", "1.0",
                 "--error-bound", "0.5", "--channel-multiple", "4", "-o",
                 str(tmp_path / "c.onnx"), "--report", str(report), "--json"] + FAST)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert data["granularity"] == "channels" and data["weights"] == str(weights)
    assert json.loads(report.read_text())["final"] == data["final"]
    assert data["latency"]["speedup"] > 0


@pytest.mark.parametrize("args, words", [
    (["--target-energy", "0"], "'--target-energy': 0.0 is not in the range 0.0<x<=1.0"),
    (["--rounds", "0"], "'--rounds': 0 is not in the range x>=1"),
    (["--step", "1"], "'--step': 1.0 is not in the range 0.0<x<1.0"),
    (["--finetune-epochs", "-1"], "'--finetune-epochs': -1 is not in the range x>=0"),
    (["--calibration-samples", "0"], "'--calibration-samples': 0 is not in the range x>=1"),
    (["--data", "nonsense"], "neither a bundled data set"),
    (["--latency-batch", "-1"], "'--latency-batch': -1 is not in the range x>=0"),
    (["--weights", "/nonexistent/w.pt"], "no such weights file"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, capsys, args, words):
    code = main(["prune", "export.models:tiny_cnn", "-o", str(tmp_path / "p.onnx")] + args)
    assert code == (2 if words.startswith("'--") else 1)  # click's usage errors keep exit 2
    _one_line_error(capsys, words)


def test_a_bad_factory_is_a_one_line_error(tmp_path, capsys):
    assert main(["prune", "export.models:no_such_factory", "-o", str(tmp_path / "p.onnx")]) == 1
    _one_line_error(capsys, "no_such_factory")


def test_a_torchscript_model_is_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "tiny.ts"
    torch.jit.save(torch.jit.script(models.tiny_cnn()), str(path))
    assert main(["prune", str(path), "-o", str(tmp_path / "p.onnx")]) == 1
    _one_line_error(capsys, "TorchScript model, which cannot be pruned")
