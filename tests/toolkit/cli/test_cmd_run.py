import csv
import json
import shutil

import numpy as np
import pytest

from tests.toolkit.strategies.conftest import linear_image_onnx
from toolkit.cli.main import main

pytest.importorskip("onnxruntime")


@pytest.fixture
def spec(tmp_path, small_cnn_onnx):
    shutil.copy(small_cnn_onnx, str(tmp_path / "small.onnx"))
    with open(str(tmp_path / "linear.onnx"), "wb") as handle:
        handle.write(linear_image_onnx(np.random.RandomState(0).randn(64, 10)))
    path = tmp_path / "deploy.yaml"
    path.write_text("engines: {linear: linear.onnx, small: small.onnx}\n"
                    "strategy: {type: cascade, first: linear, second: small, threshold: 0.95}\n"
                    "memo: exact\n")
    return str(path)


def _one_line_error(capsys, words):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and words in err[-1], err


def test_help_explains_with_examples(capsys):
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    for words in ("Examples:", "toolkit run deploy.yaml --data digits:test", "--duplicate",
                  "--duplicate-transform", "image folder", "--power"):
        assert words in out


def test_run_writes_predictions_and_report(spec, tmp_path, capsys):
    out_csv, out_json = str(tmp_path / "p.csv"), str(tmp_path / "r.json")
    code = main(["run", spec, "--data", "digits:test", "--duplicate", "1.0", "--batch", "40",
                 "-o", out_csv, "--json", out_json, "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "memo hit rate       0.500" in printed and "accuracy" in printed
    with open(out_csv) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 720 and set(rows[0]) == {"index", "label", "class_name", "confidence",
                                                  "true_label"}
    report = json.load(open(out_json))
    assert report["samples"] == 720 and report["memo_hit_rate"] == 0.5
    accuracy = np.mean([r["label"] == r["true_label"] for r in rows])
    assert report["accuracy"] == pytest.approx(accuracy)


def test_run_on_an_image_folder_with_rotated_copies(spec, tmp_path, capsys, digits_splits):
    from PIL import Image
    test = digits_splits[2]
    for i in range(12):
        folder = tmp_path / "images" / str(test.labels[i])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(test.images[i, 0] * 255).astype(np.uint8)).save(
            str(folder / "{}.png".format(i)))
    out_csv = str(tmp_path / "p.csv")
    code = main(["run", spec, "--data", str(tmp_path / "images"), "--duplicate", "1.0",
                 "--duplicate-transform", "rotate", "-o", out_csv, "--no-progress"])
    assert code == 0
    with open(out_csv) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 24 and rows[-1]["source"].endswith("#rotate")
    assert "memo hit rate       0.000" in capsys.readouterr().out  # rotated bytes differ


@pytest.mark.parametrize("args, words", [
    (["--batch", "0"], "--batch must be at least 1"),
    (["--duplicate", "2"], "--duplicate must be between 0 and 1"),
    (["--data", "nothing-here"], "neither a bundled data set"),
])
def test_bad_options_are_one_line_errors(spec, capsys, args, words):
    argv = ["run", spec, "--data", "digits:test", "--no-progress"]
    if args[0] == "--data":
        argv[3] = args[1]
    else:
        argv += args
    assert main(argv) == 1
    _one_line_error(capsys, words)


def test_missing_spec_and_empty_folder_are_one_line_errors(tmp_path, spec, capsys):
    assert main(["run", str(tmp_path / "none.yaml"), "--data", "digits:test"]) == 1
    _one_line_error(capsys, "no such deployment spec")
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    assert main(["run", spec, "--data", str(tmp_path / "empty")]) == 1
    _one_line_error(capsys, "has no image files")
