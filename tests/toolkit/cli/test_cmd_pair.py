import json
import shutil

import numpy as np
import pytest

from tests.toolkit.strategies.conftest import linear_image_onnx
from toolkit.cli.main import main

pytest.importorskip("onnxruntime")


@pytest.fixture
def pool(tmp_path, small_cnn_onnx):
    """Three models: the trained small CNN and two linear 8x8 'models'."""
    shutil.copy(small_cnn_onnx, str(tmp_path / "small.onnx"))
    paths = [str(tmp_path / "small.onnx")]
    for seed in (1, 2):
        path = str(tmp_path / "linear{}.onnx".format(seed))
        with open(path, "wb") as handle:
            handle.write(linear_image_onnx(np.random.RandomState(seed).randn(64, 10)))
        paths.append(path)
    return paths


def _one_line_error(capsys, words):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and words in err[-1], err


def test_help_explains_with_examples(capsys):
    for command in (["pair", "--help"], ["pair", "select", "--help"],
                    ["pair", "threshold", "--help"]):
        assert main(command) == 0
    out = capsys.readouterr().out
    for words in ("Examples:", "--target-accuracy", "--tolerance", "--write-spec",
                  "energy-model", "share of A's errors B gets right"):
        assert words in out


def test_select_writes_json_plot_and_a_runnable_spec(pool, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out_json, out_png, out_spec = (str(tmp_path / n) for n in ("s.json", "s.png", "d.yaml"))
    code = main(["pair", "select"] + pool + ["--data", "digits:val", "--target-accuracy", "0.5",
                                             "--report", out_json, "--plot", out_png,
                                             "--write-spec", out_spec, "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "recommended:" in printed and "complementarity" in printed
    result = json.load(open(out_json))
    assert len(result["pairs"]) == 6 and len(result["models"]) == 3
    assert result["recommended"]["meets_target"]
    assert result["recommended"]["choice"]["accuracy"] >= 0.5
    assert len(result["recommended"]["curve"]["thresholds"]) > 100
    assert open(out_png, "rb").read(4) == b"\x89PNG"
    assert main(["run", out_spec, "--data", "digits:test", "--no-progress"]) == 0


def test_threshold_for_a_fixed_pair(pool, tmp_path, capsys):
    out_json = str(tmp_path / "t.json")
    code = main(["pair", "threshold", pool[1], pool[0], "--data", "digits:val", "--score",
                 "entropy", "--post-check", "--tolerance", "0.05", "--report", out_json,
                 "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "best accuracy: threshold" in printed
    result = json.load(open(out_json))
    assert result["first"] == "linear1" and result["second"] == "small"
    assert result["curve"]["score"] == "entropy" and result["curve"]["post_check"]
    assert result["chosen"]["rule"] in ("near-best", "best-accuracy")


def test_select_within_a_budget_handing_off_to_one_model(pool, tmp_path, capsys):
    out_json = str(tmp_path / "b.json")
    assert main(["pair", "select"] + pool + ["--data", "digits:val", "--budget", "0.5",
                                             "--second", "small", "--cost", "energy-model",
                                             "--report", out_json, "--no-progress"]) == 0
    result = json.load(open(out_json))
    assert {p["second"] for p in result["pairs"]} == {"small"} and len(result["pairs"]) == 2
    small = [m for m in result["models"] if m["name"] == "small"][0]
    best = max(result["models"], key=lambda m: m["accuracy"])
    assert result["cost_budget"] == pytest.approx(0.5 * best["cost"])
    choice = result["recommended"]["choice"]
    assert choice["rule"] == "budget" and choice["expected_cost"] <= result["cost_budget"] * 1.0001
    assert best["name"] == "small" and small["cost"] > choice["expected_cost"]


def test_threshold_within_a_budget(pool, tmp_path, capsys):
    out_json = str(tmp_path / "tb.json")
    assert main(["pair", "threshold", pool[1], pool[0], "--data", "digits:val", "--budget",
                 "0.4", "--cost", "energy-model", "--report", out_json, "--no-progress"]) == 0
    result = json.load(open(out_json))
    chosen, curve = result["chosen"], result["curve"]
    assert chosen["rule"] == "budget"
    assert chosen["expected_cost"] <= 0.4 * curve["cost_second"] * 1.0001
    assert chosen["handoff_rate"] < 0.4


def test_energy_model_costs(pool, tmp_path, capsys):
    pytest.importorskip("onnx")
    out_json = str(tmp_path / "e.json")
    assert main(["pair", "threshold", pool[1], pool[0], "--data", "digits:val", "--cost",
                 "energy-model", "--report", out_json, "--no-progress"]) == 0
    curve = json.load(open(out_json))["curve"]
    assert "energy" in curve["cost_unit"]
    assert curve["cost_second"] > curve["cost_first"] > 0  # the CNN costs more than a matmul


@pytest.mark.parametrize("extra, words", [
    (["--target-accuracy", "0.9", "--tolerance", "0.01"], "give one of"),
    (["--budget", "0.3", "--tolerance", "0.01"], "give one of"),
    (["--budget", "0"], "--budget must be a fraction > 0"),
    (["--second", "nope"], "--second nope: not one of the models"),
    (["--target-accuracy", "1.5"], "--target-accuracy must be in [0, 1]"),
    (["--tolerance", "-0.1"], "--tolerance must be in [0, 1]"),
    (["--batch", "0"], "'--batch': 0 is not in the range x>=1"),
])
def test_bad_select_options_are_one_line_errors(pool, capsys, extra, words):
    code = 2 if words.startswith("'--") else 1  # click's usage errors keep exit code 2
    assert main(["pair", "select"] + pool + ["--data", "digits:val", "--no-progress"] + extra) == code
    _one_line_error(capsys, words)


def test_pool_errors_are_one_line_errors(pool, tmp_path, capsys):
    assert main(["pair", "select", pool[0], "--data", "digits:val"]) == 1
    _one_line_error(capsys, "at least two models")
    assert main(["pair", "select", pool[0], str(tmp_path / "x.onnx"), "--data", "digits:val"]) == 1
    _one_line_error(capsys, "no such engine or ONNX file")
    five = str(tmp_path / "five.onnx")
    with open(five, "wb") as handle:
        handle.write(linear_image_onnx(np.ones((64, 5))))
    assert main(["pair", "threshold", pool[0], five, "--data", "digits:val", "--no-progress"]) == 1
    _one_line_error(capsys, "disagree on the number of classes")
    engine = str(tmp_path / "m.engine")
    open(engine, "wb").close()
    assert main(["pair", "threshold", pool[0], engine, "--data", "digits:val", "--cost",
                 "energy-model"]) == 1
    _one_line_error(capsys, "--cost energy-model estimates .onnx files")


def test_select_on_an_npz_split_sees_only_the_validation_samples(pool, tmp_path, capsys):
    """`--data hard.npz:val` used to load the whole file (1797 samples) and drop ':val'."""
    from calibration.datasets import load_dataset
    digits = load_dataset("digits")
    npz = str(tmp_path / "hard.npz")
    np.savez(npz, images=digits.images, labels=digits.labels)
    out_json = str(tmp_path / "s.json")
    assert main(["pair", "select"] + pool + ["--data", npz + ":val", "--json", out_json,
                                             "--no-progress"]) == 0
    printed = capsys.readouterr().out
    val = load_dataset("digits:val")
    assert "{} validation samples".format(len(val)) in printed and len(val) == 359
    assert "data: hard.npz:val (359 samples)" in printed
    result = json.load(open(out_json))
    assert result["samples"] == 359 and result["data"] == "hard.npz:val"
    # the same pool on digits:val (the same split of the same images) gives the same figures
    same_json = str(tmp_path / "same.json")
    assert main(["pair", "select"] + pool + ["--data", "digits:val", "--json", same_json,
                                             "--no-progress", "--cost", "energy-model"]) == 0
    assert main(["pair", "select"] + pool + ["--data", npz + ":val", "--json", out_json,
                                             "--no-progress", "--cost", "energy-model"]) == 0
    assert json.load(open(out_json))["models"] == json.load(open(same_json))["models"]


def test_select_default_rule_is_printed_and_the_papers_rule_is_an_option(pool, tmp_path, capsys):
    out_json = str(tmp_path / "s.json")
    assert main(["pair", "select"] + pool + ["--data", "digits:val", "--json", out_json,
                                             "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "rule near-best: the cheapest pair and threshold within 0.005 of the best" in printed
    result = json.load(open(out_json))
    assert result["rule"] == "near-best" and result["tolerance"] == 0.005
    assert result["recommended"]["choice"]["accuracy"] >= result["best_accuracy"] - 0.005 - 1e-9
    assert main(["pair", "select"] + pool + ["--data", "digits:val", "--rule", "best-accuracy",
                                             "--json", out_json, "--no-progress"]) == 0
    assert "rule best-accuracy (the paper's)" in capsys.readouterr().out
    paper = json.load(open(out_json))
    assert paper["recommended"]["choice"]["accuracy"] == paper["best_accuracy"]


@pytest.mark.parametrize("extra, words", [
    (["--rule", "best-accuracy", "--tolerance", "0.01"], "--rule best-accuracy does not take"),
    (["--rule", "target"], "--rule target needs --target-accuracy"),
    (["--rule", "near-best", "--budget", "0.5"], "--rule near-best does not take --budget"),
])
def test_rule_and_goal_values_must_agree(pool, capsys, extra, words):
    assert main(["pair", "select"] + pool + ["--data", "digits:val", "--no-progress"] + extra) == 1
    _one_line_error(capsys, words)


def test_threshold_says_when_a_large_first_pair_saves_nothing(pool, capsys):
    # the CNN (costlier by the energy model) first, a linear model second
    assert main(["pair", "threshold", pool[0], pool[1], "--data", "digits:val", "--cost",
                 "energy-model", "--rule", "best-accuracy", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "note: small -> linear1 saves nothing: its first model small is the more expensive" \
        in out
    assert main(["pair", "threshold", pool[1], pool[0], "--data", "digits:val", "--cost",
                 "energy-model", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "rule near-best (tolerance 0.005 below the best accuracy)" in out
