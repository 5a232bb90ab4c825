import json
import os

import numpy as np
import pytest

from toolkit.cli.main import main

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from engines.model_metadata import ModelMetadata  # noqa: E402
from export import models  # noqa: E402

DIGITS = ",".join(str(i) for i in range(10))


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "w.pt"
    torch.save(models.tiny_cnn().state_dict(), str(path))
    return str(path)


def _one_line_error(capsys, words):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and words in err[-1], err


def test_help_explains_with_examples(capsys):
    assert main(["export", "--help"]) == 0
    out = capsys.readouterr().out
    for words in ("package.module:factory", "TorchScript", "--static-batch", "--parity-inputs",
                  "Examples:", "toolkit export export.models:small_cnn", "--channel-order"):
        assert words in out


def test_export_with_weights_labels_and_preprocessing(tmp_path, weights, capsys):
    out_path = tmp_path / "out" / "tiny.onnx"
    code = main(["export", "export.models:tiny_cnn", "--weights", weights, "--input-shape", "1x1x8x8",
                 "-o", str(out_path), "--labels", DIGITS, "--mean", "0.5", "--std", "0.25",
                 "--resize", "8x8"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "max abs" in out and "batch 3 " in out and "wrote {}".format(out_path) in out
    meta = ModelMetadata.for_model(str(out_path))
    assert meta.class_names == DIGITS.split(",")
    assert meta.preprocessing.to_dict() == {"resize_hw": [8, 8], "mean": [0.5], "std": [0.25],
                                            "channel_order": "L", "scale": 1.0 / 255.0}
    assert meta.inputs[0].shape == (-1, 1, 8, 8) and meta.source == "export.models:tiny_cnn (weights w.pt)"


def test_static_batch_names_opset_note_and_torchscript(tmp_path, capsys):
    scripted = tmp_path / "net.ts"
    torch.jit.save(torch.jit.script(models.tiny_cnn().eval()), str(scripted))
    out_path = tmp_path / "net.onnx"
    code = main(["export", str(scripted), "--input-shape", "2x1x8x8", "--static-batch", "-o",
                 str(out_path), "--opset", "17", "--input-name", "image", "--output-name", "scores"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "opset 17 > 13" in captured.err
    meta = ModelMetadata.for_model(str(out_path))
    assert meta.inputs[0].to_dict() == {"name": "image", "shape": [2, 1, 8, 8], "dtype": "float32"}
    assert meta.outputs[0].name == "scores" and meta.opset == 17


def test_labels_file_text_and_json(tmp_path, capsys):
    text = tmp_path / "labels.txt"
    text.write_text("\n".join("class {}".format(i) for i in range(10)) + "\n\n")
    assert main(["export", "export.models:tiny_cnn", "--input-shape", "1x1x8x8", "-o",
                 str(tmp_path / "a.onnx"), "--labels-file", str(text)]) == 0
    assert ModelMetadata.for_model(str(tmp_path / "a.onnx")).class_names[3] == "class 3"
    js = tmp_path / "labels.json"
    js.write_text(json.dumps(list("abcdefghij")))
    assert main(["export", "export.models:tiny_cnn", "--input-shape", "1x1x8x8", "-o",
                 str(tmp_path / "b.onnx"), "--labels-file", str(js)]) == 0
    assert ModelMetadata.for_model(str(tmp_path / "b.onnx")).class_names[-1] == "j"


def test_raw_uint8_parity_inputs(tmp_path, capsys):
    raw = tmp_path / "raw.npz"
    np.savez(str(raw), images=np.random.RandomState(0).randint(0, 256, (5, 8, 8, 1)).astype(np.uint8))
    assert main(["export", "export.models:tiny_cnn", "--input-shape", "1x1x8x8", "-o",
                 str(tmp_path / "p.onnx"), "--parity-inputs", str(raw), "--mean", "0.5"]) == 0
    assert "raw.npz" in capsys.readouterr().out


@pytest.mark.parametrize("extra, words", [
    (["--labels", "a,b"], "2 class labels given"),
    (["--labels", "a,,b"], "--labels has an empty name"),
    (["--labels", "a", "--labels-file", "x.txt"], "not both"),
    (["--labels-file", "missing.txt"], "no such labels file"),
    (["--mean", "0.1,0.2"], "mean has 2 values"),
    (["--std", "0"], "std values must be positive"),
    (["--resize", "16x16"], "does not match the model input"),
    (["--resize", "big"], "resize must look like"),
    (["--channel-order", "RGB"], "channel order RGB gives 3"),
    (["--tolerance", "-1"], "tolerance must be a finite number"),
    (["--opset", "5"], "opset must be an integer"),
    (["--parity-inputs", "missing.npz"], "no such parity input file"),
    (["--weights", "missing.pt"], "no such weights file"),
    (["--output-name", "a,b"], "1 output(s) but 2 output name(s)"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, extra, words):
    out_path = tmp_path / "x.onnx"
    code = main(["export", "export.models:tiny_cnn", "--input-shape", "1x1x8x8", "-o", str(out_path)]
                + extra)
    assert code == 1
    _one_line_error(capsys, words)
    assert not out_path.exists()


@pytest.mark.parametrize("model, shape, words", [
    ("export.models:nope", "1x1x8x8", "has no attribute 'nope'"),
    ("no_such_module:build", "1x1x8x8", "no module named 'no_such_module'"),
    ("export.models:FACTORIES", "1x1x8x8", "not a callable factory"),
    ("export.models:tiny_cnn", "1x1x8", "the model fails on an input of shape 1x1x8"),
    ("export.models:tiny_cnn", "1xAx8x8", "shape must look like"),
])
def test_bad_models_are_one_line_errors(tmp_path, capsys, model, shape, words):
    assert main(["export", model, "--input-shape", shape, "-o", str(tmp_path / "x.onnx")]) == 1
    _one_line_error(capsys, words)


def test_bad_label_files(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{")
    not_list = tmp_path / "obj.json"
    not_list.write_text('{"a": 1}')
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\xfa")
    for path, words in ((empty, "has no labels"), (bad_json, "not valid JSON"),
                        (not_list, "JSON list of names"), (binary, "not UTF-8")):
        assert main(["export", "export.models:tiny_cnn", "--input-shape", "1x1x8x8", "-o",
                     str(tmp_path / "x.onnx"), "--labels-file", str(path)]) == 1
        _one_line_error(capsys, words)


def test_not_torchscript_file_is_one_line(tmp_path, weights, capsys):
    assert main(["export", weights, "--input-shape", "1x1x8x8", "-o", str(tmp_path / "x.onnx")]) == 1
    _one_line_error(capsys, "is not a TorchScript file")
    assert not os.path.exists(str(tmp_path / "x.onnx"))
