"""The exported repository: self-contained strategy model folder, refusals before any work."""
import os

import numpy as np
import pytest

from basics.errors import InputError
from toolkit.deployment import load_spec
from toolkit.running import run_deployment
from toolkit.triton.export import ExportOptions, export_repository


def test_the_strategy_folder_runs_the_same_deployment(spec_folder, tmp_path, digits_splits):
    spec = tmp_path / "memo.yaml"
    spec.write_text((spec_folder / "memo.yaml").read_text().replace(
        "small.onnx", str(spec_folder / "small.onnx")).replace(
        "linear.onnx", str(spec_folder / "linear.onnx")).replace(
        "max_entries: 1000", "max_entries: 1000, file: memo.npz"))
    out = str(tmp_path / "repo")
    export_repository(str(spec), out)
    version = os.path.join(out, "memo", "1")
    assert sorted(os.listdir(os.path.join(version, "engines"))) == [
        "linear.onnx", "small.onnx", "small.onnx.json"]
    with open(os.path.join(version, "deploy.yaml")) as handle:
        assert "file" not in handle.read()  # the server's memo lives in memory
    with load_spec(str(spec)) as original, \
            load_spec(os.path.join(version, "deploy.yaml")) as exported:
        assert exported.describe() == original.describe()
        a = run_deployment(original, digits_splits[2])
        b = run_deployment(exported, digits_splits[2])
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.confidence, b.confidence)
    with open(os.path.join(out, "README.md")) as handle:
        readme = handle.read()
    for words in ("Jetson", "docker run", "--load-model=memo", "toolkit run --triton"):
        assert words in readme


def test_an_existing_folder_is_refused_before_any_work(spec_folder, tmp_path):
    out = tmp_path / "repo"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not an empty folder"):
        export_repository(str(spec_folder / "single.yaml"), str(out))
    assert os.listdir(str(out)) == ["keep.txt"]
    assert [p for p in os.listdir(str(tmp_path)) if p.startswith(".triton")] == []


def test_an_empty_folder_is_filled(spec_folder, tmp_path):
    out = tmp_path / "repo"
    out.mkdir()
    export_repository(str(spec_folder / "single.yaml"), str(out),
                      ExportOptions(model_name="digits", engine_models=False))
    assert sorted(os.listdir(str(out))) == ["README.md", "digits"]


@pytest.mark.parametrize("options, words", [
    (dict(model_name="a b"), "model name"),
    (dict(max_batch=0), "--max-batch"),
    (dict(max_batch=8, preferred_batch=(16,)), "--preferred-batch"),
    (dict(queue_delay_us=-1), "--queue-delay-us"),
    (dict(instances=0), "--instances"),
])
def test_bad_options_are_one_line_errors(spec_folder, tmp_path, options, words):
    with pytest.raises(InputError, match=words):
        export_repository(str(spec_folder / "single.yaml"), str(tmp_path / "repo"),
                          ExportOptions(**options))
    assert not os.path.exists(str(tmp_path / "repo"))


def test_an_onnx_runtime_engine_file_exports_with_its_profile(spec_folder, tmp_path, digits_splits):
    from tests.toolkit.triton.test_model_config import parse
    from toolkit.cli.main import main
    engine = str(tmp_path / "small.engine")
    assert main(["build", str(spec_folder / "small.onnx"), "-o", engine, "--max-batch", "16"]) == 0
    spec = tmp_path / "e.yaml"
    spec.write_text("engines: {small: small.engine}\nstrategy: small\n")
    out = str(tmp_path / "repo")
    export_repository(str(spec), out)
    config = parse(os.path.join(out, "e_small", "config.pbtxt"))
    assert config.platform == "onnxruntime_onnx" and config.max_batch_size == 16
    from engines.engine_file import read_engine
    with open(os.path.join(out, "e_small", "1", "model.onnx"), "rb") as handle:
        assert handle.read() == read_engine(engine)[0]  # the engine's ONNX bytes
    version = os.path.join(out, "e", "1")
    assert sorted(os.listdir(os.path.join(version, "engines"))) == ["small.engine",
                                                                   "small.engine.json"]
    with load_spec(str(spec)) as original, \
            load_spec(os.path.join(version, "deploy.yaml")) as exported:
        a = run_deployment(original, digits_splits[2])
        b = run_deployment(exported, digits_splits[2])
    np.testing.assert_array_equal(a.confidence, b.confidence)


def test_the_default_preferred_sizes_fit_the_max_batch():
    assert ExportOptions().preferred_batch == (8, 32)
    assert ExportOptions(max_batch=16).preferred_batch == (8,)
    assert ExportOptions(max_batch=4).preferred_batch == (4,)
    assert ExportOptions(max_batch=4, preferred_batch=[2]).preferred_batch == (2,)
