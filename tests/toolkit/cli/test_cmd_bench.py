"""``toolkit bench``: engines, plain ONNX and deployment specs; one-line errors."""
import json
import shutil

import numpy as np
import pytest

from toolkit.cli.main import main

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def engine_path(small_cnn_onnx, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("bench") / "m.engine")
    assert main(["build", small_cnn_onnx, "-o", path, "--max-batch", "8", "--backend",
                 "onnxruntime"]) == 0
    return path


def _one_line_error(capsys, words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err


def test_help(capsys):
    assert main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    for words in ("Examples:", "toolkit bench model.engine --batch 32", "deploy.yaml", "--duplicate",
                  "p95", "trtexec"):
        assert words in out


def test_bench_an_engine(engine_path, capsys):
    assert main(["bench", engine_path, "--batch", "8", "--iterations", "5", "--warmup", "1",
                 "--threads", "1"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith(engine_path + ": backend onnxruntime, max_batch 8, precision fp32")
    assert lines[1] == "batch 8, 5 timed calls after 1 warm-up calls"
    assert lines[2].startswith("latency (ms): min ") and " p99 " in lines[2]
    assert lines[3].startswith("throughput: ")
    assert "bench" in captured.err  # the progress bar


def test_bench_json_on_a_plain_onnx(small_cnn_onnx, capsys):
    assert main(["bench", small_cnn_onnx, "--iterations", "3", "--warmup", "0", "--json",
                 "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["calls"] == 3 and summary["batch_size"] == 1
    assert summary["backend"] == "onnxruntime (plain ONNX)" and summary["max_batch"] is None
    assert summary["latency_p95_ms"] > 0 and summary["throughput_per_s"] > 0


@pytest.mark.parametrize("args, words, code", [
    (["--batch", "9"], "batch 9 is above the engine's maximum batch 8", 1),
    (["--iterations", "0"], "'--iterations': 0 is not in the range x>=1", 2),
    (["--warmup", "-1"], "'--warmup': -1 is not in the range x>=0", 2),
    (["--batch", "0"], "'--batch': 0 is not in the range x>=1", 2),
    (["--data", "digits:test"], "--data and --duplicate apply to deployment specs", 1),
    (["--providers", "cuda"], "onnxruntime here lacks CUDAExecutionProvider", 1),
])
def test_bad_options(engine_path, capsys, args, words, code):
    assert main(["bench", engine_path, "--no-progress"] + args) == code
    _one_line_error(capsys, words)


def test_missing_and_corrupt_targets(engine_path, tmp_path, capsys):
    assert main(["bench", str(tmp_path / "none.engine")]) == 1
    _one_line_error(capsys, "no such file")
    copy = str(tmp_path / "m.engine")
    with open(engine_path, "rb") as handle:
        data = handle.read()
    with open(copy, "wb") as handle:
        handle.write(data[:-10])
    shutil.copy(engine_path + ".json", copy + ".json")
    assert main(["bench", copy]) == 1
    _one_line_error(capsys, "truncated")


@pytest.fixture
def spec(tmp_path, small_cnn_onnx):
    pytest.importorskip("toolkit.deploy")
    shutil.copy(small_cnn_onnx, str(tmp_path / "small.onnx"))
    path = tmp_path / "deploy.yaml"
    path.write_text("engines: {small: small.onnx}\nstrategy: {type: single, engine: small}\n"
                    "memo: exact\n")
    return str(path)


def test_bench_a_deployment_spec(spec, capsys):
    assert main(["bench", spec, "--data", "digits:test", "--duplicate", "1.0", "--json",
                 "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == 720 and report["memo_hit_rate"] == 0.5
    assert main(["bench", spec, "--data", "digits:test", "--no-progress"]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_a_spec_needs_data(spec, capsys):
    assert main(["bench", spec]) == 1
    _one_line_error(capsys, "a deployment spec needs --data")
    assert main(["bench", spec, "--data", "digits:test", "--duplicate", "2"]) == 2
    _one_line_error(capsys, "'--duplicate': 2.0 is not in the range 0.0<=x<=1.0")


def test_bench_a_spec_on_an_image_folder_saves_the_memo(tmp_path, small_cnn_onnx, digits_splits,
                                                        capsys):
    pytest.importorskip("toolkit.deploy")
    image_module = pytest.importorskip("PIL.Image")
    test = digits_splits[2]
    for i in range(10):
        folder = tmp_path / "images" / str(test.labels[i])
        folder.mkdir(parents=True, exist_ok=True)
        image_module.fromarray(np.round(test.images[i, 0] * 255).astype(np.uint8)).save(
            str(folder / "{}.png".format(i)))
    shutil.copy(small_cnn_onnx, str(tmp_path / "small.onnx"))
    plain = tmp_path / "plain.yaml"
    plain.write_text("engines: {small: small.onnx}\nstrategy: small\nmemo: exact\n")
    args = ["--data", str(tmp_path / "images"), "--duplicate", "1.0", "--batch", "4",
            "--no-progress"]
    assert main(["bench", str(plain), "--json"] + args) == 0
    bench = json.loads(capsys.readouterr().out)
    # the same data and duplicate protocol as `toolkit run`: every file twice, copies hit the memo
    assert bench["samples"] == 20 and bench["memo_hit_rate"] == 0.5
    assert main(["run", str(plain), "--json", str(tmp_path / "run.json")] + args) == 0
    with open(str(tmp_path / "run.json")) as handle:
        run = json.load(handle)
    for key in ("samples", "accuracy", "memo_hit_rate", "data"):
        assert bench[key] == run[key], key
    capsys.readouterr()
    spec = tmp_path / "deploy.yaml"
    spec.write_text("engines: {small: small.onnx}\nstrategy: small\n"
                    "memo: {mode: exact, file: memo.npz}\n")
    assert main(["bench", str(spec), "--json"] + args) == 0
    assert json.loads(capsys.readouterr().out)["memo_hit_rate"] == 0.5
    assert (tmp_path / "memo.npz").is_file()  # the deployment was closed: the memo was saved
    assert main(["bench", str(spec), "--data", str(tmp_path / "images"), "--duplicate", "1.0",
                 "--duplicate-transform", "rotate", "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    # originals hit the memo loaded from memo.npz, rotated copies (other bytes) miss: without the
    # saved file the rate would be 0
    assert report["samples"] == 20 and report["memo_hit_rate"] == 0.5


def test_bench_a_spec_on_an_empty_image_folder(spec, tmp_path, capsys):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    assert main(["bench", spec, "--data", str(tmp_path / "empty"), "--no-progress"]) == 1
    _one_line_error(capsys, "has no image files")


# -- energy (toolkit.power) --------------------------------------------------------------------
@pytest.fixture
def sysfs_only(monkeypatch):
    """`--power auto` looks only at sources under --power-sysfs-root (not a real tegrastats,
    jtop or NVML of the machine running the tests)."""
    from toolkit.power import sources
    monkeypatch.setattr(sources, "AUTO_ORDER", ("ina3221", "rapl"))


def _fake_nano(tmp_path):
    from tests.toolkit.power.fakes import FakeJetson
    return FakeJetson(tmp_path / "nano", "nano")


def test_bench_an_engine_measures_energy_on_a_fake_ina3221(engine_path, tmp_path, capsys):
    nano = _fake_nano(tmp_path)
    assert main(["bench", engine_path, "--batch", "8", "--iterations", "20", "--warmup", "1",
                 "--no-progress", "--power", "ina3221", "--power-sysfs-root", nano.root,
                 "--idle-s", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "energy: measured with INA3221" in out and "on Jetson Nano" in out
    assert "total = POM_5V_IN" in out and "idle baseline: " in out
    assert "window 'bench': " in out and ", 160 inferences, " in out
    assert "  per inference: " in out and " above idle (" in out
    assert "ESTIMATE" not in out  # measured: no estimate


def test_bench_a_spec_measures_energy_per_inference_as_json(spec, tmp_path, capsys):
    nano = _fake_nano(tmp_path)
    assert main(["bench", spec, "--data", "digits:test", "--json", "--no-progress", "--power",
                 "ina3221", "--power-sysfs-root", nano.root, "--idle-s", "0.1"]) == 0
    energy = json.loads(capsys.readouterr().out)["energy"]
    assert energy["measured"] and "INA3221" in energy["source"]["description"]
    assert energy["idle"]["power_mw"] == pytest.approx(nano.power_mw("POM_5V_IN"), rel=0.01)
    window = energy["windows"][-1]
    assert window["name"] == "run" and window["inferences"] == 360 and window["measured"]
    assert window["mj_per_inference"] == pytest.approx(window["energy_mj"] / 360)
    assert window["mj_per_inference_above_idle"] is not None
    assert window["avg_power_mw"] == pytest.approx(nano.power_mw("POM_5V_IN"), rel=0.01)
    assert energy["estimate"] is None


def test_bench_with_power_none_reports_no_energy(engine_path, spec, capsys):
    assert main(["bench", engine_path, "--iterations", "3", "--no-progress", "--power",
                 "none"]) == 0
    out = capsys.readouterr().out
    assert "energy" not in out and "ESTIMATE" not in out
    assert main(["bench", engine_path, "--iterations", "3", "--no-progress", "--power", "none",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["energy"] is None
    assert main(["bench", spec, "--data", "digits:test", "--no-progress", "--power",
                 "none"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "energy" not in out and "ESTIMATE" not in out


def test_bench_auto_with_nothing_to_measure_shows_the_estimate(small_cnn_onnx, tmp_path, capsys,
                                                                sysfs_only):
    from toolkit.strategies.thresholds import model_energy_cost
    (tmp_path / "empty").mkdir()
    assert main(["bench", small_cnn_onnx, "--iterations", "3", "--no-progress",
                 "--power-sysfs-root", str(tmp_path / "empty"), "--json"]) == 0
    energy = json.loads(capsys.readouterr().out)["energy"]
    assert not energy["measured"] and "no INA3221 rails" in energy["not_measured_reason"]
    expected, unit = model_energy_cost(small_cnn_onnx)
    assert energy["estimate"]["value"] == pytest.approx(expected)
    assert energy["estimate_detail"]["formula"] == "E(small_cnn.onnx)"
    assert main(["bench", small_cnn_onnx, "--iterations", "3", "--no-progress",
                 "--power-sysfs-root", str(tmp_path / "empty")]) == 0
    out = capsys.readouterr().out
    assert "energy: not measured (no power source works here; `toolkit power --list` says " \
        "why)\n" in out
    assert "window 'bench': " in out and "energy not measured" in out
    assert "ESTIMATE, not measured (analytical estimate" in out and "normalized" in out
    assert "estimate per sample = E(small_cnn.onnx) = " in out


def test_bench_an_engine_estimates_from_its_source_onnx(engine_path, small_cnn_onnx, tmp_path,
                                                        capsys, sysfs_only):
    (tmp_path / "empty").mkdir()
    copy = str(tmp_path / "m.engine")
    shutil.copy(engine_path, copy)
    shutil.copy(engine_path + ".json", copy + ".json")
    args = ["bench", copy, "--iterations", "3", "--no-progress", "--power-sysfs-root",
            str(tmp_path / "empty")]
    assert main(args) == 0  # the sidecar's source ONNX is not next to the copy: no estimate
    out = capsys.readouterr().out
    assert "energy: not measured" in out
    assert "ESTIMATE unavailable: " in out and "small_cnn.onnx, which is not next to it" in out
    shutil.copy(small_cnn_onnx, str(tmp_path / "small_cnn.onnx"))
    assert main(args) == 0
    assert "estimate per sample = E(m.engine) = " in capsys.readouterr().out
