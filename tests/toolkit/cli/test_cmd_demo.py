"""``toolkit demo``: the whole flow, kept quick (a small pool, one epoch, one run each)."""
import json
import os

import numpy as np
import pytest

from toolkit.cli.main import main

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("yaml")
pytest.importorskip("matplotlib")

ROWS = ["large", "best_small", "cascade", "memo_cascade", "cbnet", "int8", "pruned"]


def _tiny_config(out_dir, **kwargs):
    from toolkit.cli.demo.config import DemoConfig
    from toolkit.power.config import PowerConfig
    settings = dict(datasets=("digits",), out_dir=out_dir, pool_models=("tiny_cnn",),
                    baseline="small_cnn", epochs=1, cbnet_epochs=1, finetune_epochs=1,
                    prune_rounds=0, calibration_samples=32, repeats=1,
                    power=PowerConfig(source="none"), progress=False)
    settings.update(kwargs)
    return DemoConfig(**settings)


def test_help(capsys):
    assert main(["demo", "--help"]) == 0
    out = capsys.readouterr().out
    for words in ("report.md", "--fresh", "pair select", "CBNet", "INT8", "pruned", "ESTIMATE",
                  "duplicated protocol", "Examples:", "--data photos/"):
        assert words in out


def test_the_demo_reports_every_strategy_and_reuses_its_stages(tmp_path):
    from toolkit.cli.demo.pipeline import run_demo
    out_dir = str(tmp_path / "demo")
    lines = []
    first = run_demo(_tiny_config(out_dir), log=lines.append)
    assert first["stages"]["reused"] == []
    assert first["stages"]["ran"] == ["pool digits", "cbnet digits", "prune digits",
                                      "engines digits", "select digits"]
    result = first["datasets"]["digits"]
    for protocol, samples in (("test", 360), ("duplicated", 720)):
        rows = result["protocols"][protocol]["rows"]
        assert [r["key"] for r in rows] == ROWS
        for row in rows:
            assert row["samples"] == samples and 0.0 <= row["accuracy"] <= 1.0
            low, high = row["accuracy_ci95"]
            assert low <= row["accuracy"] <= high
            assert row["energy_per_inference"] > 0 and not row["energy_measured"]
            assert row["latency_p50_ms"] <= row["latency_p95_ms"]
    duplicated = {r["key"]: r for r in result["protocols"]["duplicated"]["rows"]}
    assert duplicated["memo_cascade"]["memo_hit_rate"] == pytest.approx(0.5)  # every image twice
    assert duplicated["memo_cascade"]["accuracy"] == duplicated["cascade"]["accuracy"]
    int8, large = duplicated["int8"], duplicated["large"]
    assert int8["energy_per_inference"] < large["energy_per_inference"]  # 8-bit estimate
    assert result["curve"]["chosen"]["threshold"] == result["selection"]["threshold"]
    assert first["energy"]["measured"] is False

    report_dir = os.path.join(out_dir, "report")
    assert sorted(os.listdir(report_dir)) == ["accuracy_energy_digits.png", "report.json",
                                              "report.md"]
    with open(os.path.join(report_dir, "report.json")) as handle:
        assert json.load(handle)["datasets"]["digits"]["selection"]["best_small"] == "tiny_cnn"
    text = open(os.path.join(report_dir, "report.md")).read()
    assert text.count("| large model |") == 2 and "ESTIMATE" in text
    assert any(line.startswith("digits - test split (360 samples") for line in lines)

    second = run_demo(_tiny_config(out_dir), log=lines.append)
    assert second["stages"]["ran"] == [] and len(second["stages"]["reused"]) == 5
    assert second["datasets"]["digits"]["selection"] == result["selection"]


def test_duplicated_clusters_name_the_test_image_each_sample_shows():
    from calibration.datasets import load_dataset
    from toolkit.cli.demo.compare import duplicated
    test = load_dataset("digits:test")
    data, clusters = duplicated(test, 1.0, seed=0)
    assert len(data) == len(clusters) == 2 * len(test)
    assert np.array_equal(data.images, test.images[clusters])


def test_an_image_folder_runs_with_its_shape_taken_from_the_images(tmp_path, capsys):
    from PIL import Image

    from calibration.datasets import load_dataset
    digits = load_dataset("digits")
    folder = tmp_path / "photos"
    for label in (0, 1, 2):
        (folder / str(label)).mkdir(parents=True)
        for number, index in enumerate(np.flatnonzero(digits.labels == label)[:40]):
            pixels = (digits.images[index, 0] * 255).astype(np.uint8)
            Image.fromarray(pixels).resize((12, 12)).save(str(folder / str(label) /
                                                              "{}.png".format(number)))
    out_dir = str(tmp_path / "out")
    assert main(["demo", "--data", str(folder), "--out", out_dir, "--epochs", "1",
                 "--cbnet-epochs", "1", "--prune-rounds", "0", "--repeats", "1", "--power",
                 "none", "--no-progress"]) == 0
    with open(os.path.join(out_dir, "report", "report.json")) as handle:
        report = json.load(handle)
    assert report["config"]["input_shape"] == [1, 12, 12]
    rows = report["datasets"]["photos"]["protocols"]["test"]["rows"]
    assert [r["key"] for r in rows] == ROWS and rows[0]["samples"] == 24


def test_a_bad_data_argument_is_one_line(capsys, tmp_path):
    assert main(["demo", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a bundled data set" in err[0]


def test_a_named_power_source_that_does_not_work_fails_before_any_training(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["demo", "--data", "digits", "--out", str(tmp_path / "o"), "--power", "ina3221",
                 "--power-sysfs-root", str(tmp_path / "empty"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ina3221" in err[0].lower()
    assert not (tmp_path / "o" / "digits").exists()  # nothing trained
