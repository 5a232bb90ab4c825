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
                 "-o", out_csv, "--report", out_json, "--no-progress"])
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


@pytest.mark.parametrize("args, words, code", [
    (["--batch", "0"], "'--batch': 0 is not in the range x>=1", 2),
    (["--duplicate", "2"], "'--duplicate': 2.0 is not in the range 0.0<=x<=1.0", 2),
    (["--data", "nothing-here"], "neither a bundled data set", 1),
])
def test_bad_options_are_one_line_errors(spec, capsys, args, words, code):
    argv = ["run", spec, "--data", "digits:test", "--no-progress"]
    if args[0] == "--data":
        argv[3] = args[1]
    else:
        argv += args
    assert main(argv) == code
    _one_line_error(capsys, words)


def test_missing_spec_and_empty_folder_are_one_line_errors(tmp_path, spec, capsys):
    assert main(["run", str(tmp_path / "none.yaml"), "--data", "digits:test"]) == 1
    _one_line_error(capsys, "no such deployment spec")
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    assert main(["run", spec, "--data", str(tmp_path / "empty")]) == 1
    _one_line_error(capsys, "has no image files")


# -- energy (toolkit.power) --------------------------------------------------------------------
def test_help_lists_the_shared_power_options(capsys):
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    for words in ("--power [auto|ina3221|tegrastats|jtop|rapl|nvml|none]", "--power-rate-hz",
                  "--idle-s", "--power-sysfs-root", "not measured", "ESTIMATE"):
        assert words in out


def test_run_measures_energy_on_a_fake_ina3221(spec, tmp_path, capsys):
    from tests.toolkit.power.fakes import FakeJetson
    nano = FakeJetson(tmp_path / "nano", "nano")
    out_json = str(tmp_path / "r.json")
    assert main(["run", spec, "--data", "digits:test", "--no-progress", "--power", "ina3221",
                 "--power-sysfs-root", nano.root, "--idle-s", "0.1", "--report", out_json]) == 0
    out = capsys.readouterr().out
    assert "energy: measured with INA3221" in out and "idle baseline: " in out
    assert "window 'run': " in out and "360 inferences" in out and "  per inference: " in out
    energy = json.load(open(out_json))["energy"]
    window = energy["windows"][-1]
    assert window["measured"] and window["inferences"] == 360
    assert window["mj_per_inference"] == pytest.approx(window["energy_mj"] / 360)
    assert energy["source"]["source"] == "ina3221" and energy["estimate"] is None


def test_run_with_nothing_to_measure_shows_the_expected_estimate(spec, tmp_path, capsys,
                                                                 monkeypatch):
    from toolkit.power import sources
    from toolkit.strategies.thresholds import model_energy_cost
    monkeypatch.setattr(sources, "AUTO_ORDER", ("ina3221", "rapl"))  # only the (empty) tree
    (tmp_path / "empty").mkdir()
    out_json = str(tmp_path / "r.json")
    assert main(["run", spec, "--data", "digits:test", "--duplicate", "1.0", "--no-progress",
                 "--power-sysfs-root", str(tmp_path / "empty"), "--report", out_json]) == 0
    out = capsys.readouterr().out
    assert "energy: not measured (no power source works here; `toolkit power --list` says why)\n" \
        in out  # one short line, not every source's reason (about 700 characters before)
    assert "ESTIMATE, not measured (analytical estimate" in out
    assert "estimate per sample = (1 - 0.500) x [E(linear) + " in out
    report = json.load(open(out_json))
    rate = report["handoff_rate"]
    linear = model_energy_cost(str(tmp_path / "linear.onnx"))[0]
    small = model_energy_cost(str(tmp_path / "small.onnx"))[0]
    assert report["energy"]["estimate"]["value"] == pytest.approx(
        (1 - report["memo_hit_rate"]) * (linear + rate * small))


def test_run_with_power_none_has_no_energy(spec, tmp_path, capsys):
    out_json = str(tmp_path / "r.json")
    assert main(["run", spec, "--data", "digits:test", "--no-progress", "--power", "none",
                 "--report", out_json]) == 0
    out = capsys.readouterr().out
    assert "energy" not in out and "ESTIMATE" not in out
    assert json.load(open(out_json))["energy"] is None


def test_bad_power_options_are_errors(spec, capsys):
    assert main(["run", spec, "--data", "digits:test", "--power", "ina3221",
                 "--power-sysfs-root", "/nonexistent-root", "--no-progress"]) == 1
    _one_line_error(capsys, "no INA3221 rails found under /nonexistent-root")
    assert main(["run", spec, "--data", "digits:test", "--power-rate-hz", "0"]) == 1
    _one_line_error(capsys, "sampling rate must be between")
    assert main(["run", spec, "--data", "digits:test", "--power", "battery"]) == 2


def test_run_on_a_split_of_an_image_folder(spec, tmp_path, capsys, digits_splits):
    """`--data images/:val` used to fail with "reading an image folder needs the model's input
    shape"; it runs the folder's validation part, by the same rule as every other source."""
    from calibration.datasets import list_image_folder
    from calibration.splits import split_indices
    image_module = pytest.importorskip("PIL.Image")
    test = digits_splits[2]
    for i in range(30):
        folder = tmp_path / "images" / str(test.labels[i])
        folder.mkdir(parents=True, exist_ok=True)
        image_module.fromarray((test.images[i, 0] * 255).astype(np.uint8)).save(
            str(folder / "{}.png".format(i)))
    root = str(tmp_path / "images")
    out_csv = str(tmp_path / "p.csv")
    assert main(["run", spec, "--data", root + ":val", "-o", out_csv, "--no-progress"]) == 0
    rows = list(csv.DictReader(open(out_csv)))
    files = list_image_folder(root)[0]
    assert [r["source"] for r in rows] == [files[i][0] for i in split_indices(30)["val"]]
    assert "images:val: 6 samples" in capsys.readouterr().out
