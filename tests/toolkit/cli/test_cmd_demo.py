"""``toolkit demo``: the whole flow, kept quick (1 epoch each, few timed calls, a temp folder)."""
import json
import os

import pytest

from toolkit.cli.main import main

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("yaml")


def test_help(capsys):
    assert main(["demo", "--help"]) == 0
    out = capsys.readouterr().out
    for words in ("Steps:", "train export.models.small_cnn", "export.models.large_cnn",
                  "memo + cascade", "ESTIMATE", "Examples:", "toolkit demo --out",
                  "--baseline-epochs", "--power", "under 3 minutes"):
        assert words in out


def test_demo_runs_end_to_end(tmp_path, capsys, monkeypatch):
    from toolkit.power import sources
    monkeypatch.setattr(sources, "AUTO_ORDER", ("ina3221", "rapl"))  # only the (empty) tree
    (tmp_path / "empty").mkdir()
    out_dir = str(tmp_path / "demo")
    assert main(["demo", "--out", out_dir, "--epochs", "1", "--baseline-epochs", "1",
                 "--iterations", "3", "--repeats", "1", "--backend", "onnxruntime",
                 "--power-sysfs-root", str(tmp_path / "empty"), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    steps = [line.split(":")[0] for line in lines if not line.startswith("  ")]
    assert steps == ["data", "train", "export", "build", "evaluate", "latency", "latency",
                     "train", "export", "build", "threshold", "spec", "compare",
                     "reproduce by hand", "report"]
    assert "latency: batch  1: median" in lines[5] and "p95" in lines[5]
    assert "latency: batch 32: median" in lines[6] and "images/s" in lines[6]
    assert lines[7].startswith("train: large_cnn (the large baseline), 1 epochs")

    # the comparison table: a header, three rows, what the energy column is
    at = lines.index(next(line for line in lines if line.startswith("compare: ")))
    assert "(720 samples)" in lines[at]
    header = lines[at + 1].split()
    assert header[:4] == ["strategy", "accuracy", "ms/sample", "handoff"]
    assert "speed-up" in header and "(EST.)" in lines[at + 1]
    rows = lines[at + 2:at + 5]
    for row, name in zip(rows, ("large alone", "cascade small -> large", "memo + cascade")):
        assert row.strip().startswith(name)
        accuracy = float(row.strip()[len(name):].split()[0])
        assert 0.0 <= accuracy <= 1.0
    assert rows[0].split()[-1] == "(100%)" and rows[0].split()[-3] == "1.00x"
    assert lines[at + 5].startswith("  energy: ESTIMATE, not measured (no power source here")
    commands = [line.strip() for line in lines if line.startswith("  toolkit ")]
    assert [c.split()[1] for c in commands] == ["export", "build", "export", "build", "bench",
                                                "pair", "run", "run", "run"]
    assert "--baseline" not in commands[2] and "export.models:large_cnn" in commands[2]

    for name in ("small_cnn.pt", "small_cnn.onnx", "small_cnn.onnx.json", "small_cnn.engine",
                 "small_cnn.engine.json", "large_cnn.pt", "large_cnn.onnx", "large_cnn.engine",
                 "large.yaml", "cascade.yaml", "deploy.yaml", "demo_report.json", "split.json"):
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
    assert 0.0 <= steps["threshold"]["threshold"] <= 1.0
    compare = steps["compare"]
    assert not compare["energy_measured"] and compare["samples"] == 720
    memo = compare["rows"][2]
    assert memo["memo_hit_rate"] == 0.5 and "memo" in memo["describe"]
    assert memo["energy"]["estimate"]["formula"].startswith("(1 - 0.500) x [E(small) + ")
    for row in compare["rows"]:
        assert 0.0 <= row["accuracy"] <= 1.0 and row["ms_per_sample"] > 0
    # the printed commands read the demo's own split; the written spec runs by hand as printed
    split = os.path.join(out_dir, "split.json")
    assert any("--data {}:val".format(split) in c for c in report["commands"])
    assert any("--data {}:test".format(split) in c for c in report["commands"])
    assert main(["run", os.path.join(out_dir, "deploy.yaml"), "--data", split + ":test",
                 "--power", "none", "--no-progress"]) == 0
    assert "memo hit rate" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "error: --epochs must be at least 1, got 0"),
    (["--baseline-epochs", "0"], "error: --baseline-epochs must be at least 1, got 0"),
    (["--repeats", "0"], "error: repeats must be at least 1, got 0"),
    (["--power-rate-hz", "0"], "error: the power sampling rate must be between 0.1 and 5000 Hz, "
                               "got 0"),
])
def test_bad_options(tmp_path, capsys, args, message):
    assert main(["demo", "--out", str(tmp_path / "d")] + args) == 1
    assert capsys.readouterr().err.strip() == message


def test_the_table_labels_measured_energy_and_its_flags():
    from toolkit.cli.cmd_demo import _measured_energy, _table

    class Report(object):
        energy = {"windows": [{"measured": True, "mj_per_inference": 0.5,
                               "mj_per_inference_above_idle": 0.2, "flags": ["window short"]}]}
    energy = _measured_energy(Report())
    assert energy["mj_per_inference"] == 0.2 and energy["above_idle"]
    Report.energy = {"windows": [{"measured": False}]}
    assert _measured_energy(Report()) is None
    rows = [{"strategy": name, "accuracy": 0.9, "ms_per_sample": ms, "handoff_rate": handoff,
             "memo_hit_rate": hits, "speedup_vs_large": 0.04 / ms, "energy_per_inference": mj,
             "energy_vs_large": mj / 0.4, "energy": energy}
            for name, ms, handoff, hits, mj in (("large alone", 0.04, None, None, 0.4),
                                                ("cascade small -> large", 0.02, 0.1, None, 0.1),
                                                ("memo + cascade", 0.01, 0.1, 0.5, 0.05))]
    lines = _table({"data": "digits:test+dup1", "samples": 720, "batch": 32, "repeats": 5,
                    "rows": rows, "energy_measured": True, "power_source": "INA3221 (fake)",
                    "idle": {"power_mw": 2028.0}, "switched_off": False})
    assert "mJ/inference" in lines[1] and "EST" not in "".join(lines)
    assert lines[2].split()[-2:] == ["0.4", "(100%)"] and lines[4].split()[-2:] == ["0.05", "(12%)"]
    assert lines[4].split()[-3] == "4.00x" and lines[4].split()[-4] == "0.500"
    assert lines[5] == ("  energy: MEASURED with INA3221 (fake), mJ per inference above the idle "
                        "baseline of 2028 mW (percent: of the large model's)")
    assert lines[6].startswith("  ! flagged windows for 3 of 3 strategies, e.g. window short")
