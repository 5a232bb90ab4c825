"""load_engine: ONNX Runtime engines and plain ONNX, and every engine file that must be refused."""
import json
import os
import shutil

import numpy as np
import pytest

from basics.errors import EngineCompatibilityError, InputError
from basics.fileio import sha256_file
from engines.build import build_engine
from engines.build_config import BuildConfig
from engines.engine_file import EngineSidecar, write_engine
from engines.load import check_tensorrt_target, load_engine

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def built(small_cnn_onnx, tmp_path_factory):
    """small_cnn built for ONNX Runtime, batch 2..8 (a fresh copy per test via ``engine_copy``)."""
    out = str(tmp_path_factory.mktemp("built") / "m.engine")
    build_engine(small_cnn_onnx, out, BuildConfig(min_batch=2, max_batch=8, backend="onnxruntime"))
    return out


@pytest.fixture
def engine_copy(built, tmp_path):
    path = str(tmp_path / "m.engine")
    shutil.copy(built, path)
    shutil.copy(built + ".json", path + ".json")
    return path


def test_loads_an_onnxruntime_engine(engine_copy, small_cnn_onnx, digits_splits):
    x = digits_splits[2].images[:8]
    with load_engine(engine_copy, threads=1) as engine, load_engine(small_cnn_onnx) as plain:
        assert engine.identity() == sha256_file(engine_copy)
        assert (engine.min_batch, engine.max_batch) == (2, 8)
        assert engine.threads == 1 and engine.metadata == plain.metadata  # the ONNX's sidecar
        assert engine.metadata.onnx_sha256 == sha256_file(small_cnn_onnx)
        np.testing.assert_allclose(engine.infer({"input": x})["logits"],
                                   plain.infer({"input": x})["logits"], rtol=1e-5, atol=1e-6)


def test_loads_a_plain_onnx_with_its_metadata(small_cnn_onnx, tmp_path):
    from engines.model_metadata import ModelMetadata, sidecar_path
    path = str(tmp_path / "m.onnx")
    shutil.copy(small_cnn_onnx, path)
    with load_engine(path) as engine:
        assert engine.identity() == sha256_file(path)
        assert engine.max_batch is None and engine.metadata is None
    ModelMetadata(class_names=list("0123456789"), onnx_sha256=sha256_file(path)).save(
        sidecar_path(path))
    with load_engine(path) as engine:
        assert engine.metadata.class_names == list("0123456789")


def test_a_plain_onnx_is_hashed_once_and_a_stale_sidecar_refused(small_cnn_onnx, tmp_path,
                                                                   monkeypatch):
    import engines.load
    import engines.model_metadata
    from engines.model_metadata import ModelMetadata, sidecar_path
    path = str(tmp_path / "m.onnx")
    shutil.copy(small_cnn_onnx, path)
    digest = sha256_file(path)
    ModelMetadata(class_names=list("0123456789"), onnx_sha256=digest).save(sidecar_path(path))
    calls = []

    def counting_sha256(name):
        calls.append(name)
        return sha256_file(name)
    monkeypatch.setattr(engines.load, "sha256_file", counting_sha256)
    monkeypatch.setattr(engines.model_metadata, "sha256_file", counting_sha256)
    with load_engine(path) as engine:
        assert engine.identity() == digest and engine.metadata.onnx_sha256 == digest
    assert calls == [path]
    ModelMetadata(onnx_sha256="0" * 64).save(sidecar_path(path))
    with pytest.raises(InputError, match=r"m.onnx.json describes another model \(sha256 "
                                         r"000000000000\.\.\., the file has {}".format(digest[:12])):
        load_engine(path)


def test_engine_metadata_comes_from_the_sidecar(engine_copy):
    from engines.model_metadata import ModelMetadata
    with open(engine_copy + ".json") as handle:
        data = json.load(handle)
    data["metadata"] = ModelMetadata(class_names=list("abcdefghij")).to_dict()
    with open(engine_copy + ".json", "w") as handle:
        json.dump(data, handle)
    with load_engine(engine_copy) as engine:
        assert engine.metadata.class_name(3) == "d"


@pytest.mark.parametrize("feeds, message", [
    ({"input": np.zeros((9, 1, 8, 8), np.float32)}, "batch 9 is above the engine's maximum batch 8"),
    ({"input": np.zeros((1, 1, 8, 8), np.float32)}, "batch 1 is below the engine's minimum batch 2"),
    ({"input": np.zeros((2, 1, 16, 16), np.float32)}, "must have shape Nx1x8x8, got 2x1x16x16"),
    ({"input": np.zeros((2, 1, 8, 8), np.float64)}, "input 'input' must be float32, got float64"),
    ({"image": np.zeros((2, 1, 8, 8), np.float32)}, "engine inputs are ['input'], got ['image']"),
])
def test_bad_inputs_to_a_loaded_engine(engine_copy, feeds, message):
    with load_engine(engine_copy) as engine:
        with pytest.raises(InputError) as info:
            engine.infer(feeds)
    assert message in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such engine or ONNX file"):
        load_engine(str(tmp_path / "none.engine"))


def test_missing_sidecar(engine_copy):
    os.remove(engine_copy + ".json")
    with pytest.raises(EngineCompatibilityError, match="has no sidecar"):
        load_engine(engine_copy)


def test_truncated_engine(engine_copy):
    size = os.path.getsize(engine_copy)
    with open(engine_copy, "r+b") as handle:
        handle.truncate(size // 2)
    with pytest.raises(EngineCompatibilityError, match="truncated"):
        load_engine(engine_copy)


def test_corrupted_engine(engine_copy):
    with open(engine_copy, "r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(EngineCompatibilityError, match="is corrupted"):
        load_engine(engine_copy)


def _foreign_tensorrt_engine(tmp_path, **facts):
    fields = dict(tensorrt_version="8.2.1.8", gpu_name="NVIDIA Tegra X1", compute_capability="5.3")
    fields.update(facts)
    sidecar = EngineSidecar("tensorrt", "fp16", 1, 1, 8, "", 0, [], [], source_onnx="m.onnx",
                            **fields)
    path = str(tmp_path / "nano.engine")
    write_engine(path, b"serialized TensorRT plan", sidecar)
    return path, sidecar


def test_tensorrt_engine_on_a_machine_without_tensorrt(tmp_path, monkeypatch):
    monkeypatch.setattr("engines.tensorrt_backend.tensorrt_available", lambda: False)
    path, _ = _foreign_tensorrt_engine(tmp_path)
    with pytest.raises(EngineCompatibilityError) as info:
        load_engine(path)
    text = str(info.value)
    assert "is a TensorRT engine built for TensorRT 8.2.1.8 on NVIDIA Tegra X1" in text
    assert "cannot run TensorRT" in text and "rebuild it here from m.onnx" in text


HERE = {"tensorrt_version": "8.2.1.8", "gpu_name": "NVIDIA Tegra X1", "compute_capability": "5.3"}


@pytest.mark.parametrize("facts, message", [
    (dict(HERE, tensorrt_version="10.3.0"),
     "built for TensorRT version 8.2.1.8 but this machine has TensorRT version 10.3.0"),
    (dict(HERE, gpu_name="Orin"), "built for GPU NVIDIA Tegra X1 but this machine has GPU Orin"),
    (dict(HERE, compute_capability=(8, 7)),
     "built for compute capability 5.3 but this machine has compute capability 8.7"),
])
def test_tensorrt_engine_for_another_version_or_gpu(tmp_path, facts, message):
    _, sidecar = _foreign_tensorrt_engine(tmp_path)
    with pytest.raises(EngineCompatibilityError, match=message):
        check_tensorrt_target(sidecar, facts, "nano.engine")
    check_tensorrt_target(sidecar, dict(HERE, compute_capability=(5, 3)))  # the same: no error


def test_foreign_tensorrt_engine_is_refused_before_deserializing(tmp_path, monkeypatch):
    import engines.tensorrt_backend as backend
    monkeypatch.setattr(backend, "tensorrt_available", lambda: True)
    monkeypatch.setattr(backend, "runtime_facts", lambda trt=None: dict(HERE, gpu_name="Orin"))

    def must_not_run(*args, **kwargs):
        raise AssertionError("deserialized a foreign engine")

    monkeypatch.setattr(backend, "TensorRTEngine", must_not_run)
    path, _ = _foreign_tensorrt_engine(tmp_path)
    with pytest.raises(EngineCompatibilityError, match="GPU NVIDIA Tegra X1 but this machine has"):
        load_engine(path)


# -- TensorRT through H3's test double (tests/engines/trt_double: NOT TensorRT; it keeps the ONNX
# and runs it on ONNX Runtime, strict about the 8.2 / 10.x API) ------------------------------------
@pytest.mark.parametrize("mode", ["8.2", "10"], ids=["trt8.2", "trt10"])
def test_build_and_load_a_tensorrt_engine_through_the_cli(monkeypatch, mode, small_cnn_onnx,
                                                          tmp_path, digits_splits, capsys):
    from tests.engines.trt_double import install_trt_double
    from toolkit.cli.main import main
    double = install_trt_double(monkeypatch, mode)
    out = str(tmp_path / "m.engine")
    assert main(["build", small_cnn_onnx, "--backend", "tensorrt", "--precision", "fp16",
                 "--min-batch", "1", "--opt-batch", "4", "--max-batch", "8", "-o", out]) == 0
    assert "tensorrt fp16, batch 1/4/8, TensorRT {}".format(double.trt.__version__) in \
        capsys.readouterr().out
    with open(out + ".json") as handle:
        sidecar = json.load(handle)
    assert sidecar["backend"] == "tensorrt" and sidecar["gpu_name"] == double.gpu.name
    assert sidecar["compute_capability"] == {"8.2": "5.3", "10": "8.7"}[mode]
    assert sidecar["workspace_mb"] == 256 and sidecar["tensorrt_version"] == double.trt.__version__
    x = digits_splits[2].images[:8]
    with load_engine(out) as engine, load_engine(small_cnn_onnx) as reference:
        assert type(engine).__name__ == "TensorRTEngine"
        assert engine.identity() == sha256_file(out) and engine.max_batch == 8
        np.testing.assert_allclose(engine.infer({"input": x})["logits"],
                                   reference.infer({"input": x})["logits"], rtol=1e-4, atol=1e-5)
        with pytest.raises(InputError, match="batch 9 is above the engine's maximum batch 8"):
            engine.infer({"input": digits_splits[2].images[:9]})
    assert main(["bench", out, "--batch", "4", "--iterations", "3", "--no-progress"]) == 0
    assert "backend tensorrt" in capsys.readouterr().out


def test_auto_backend_picks_tensorrt_where_it_is_usable(monkeypatch, small_cnn_onnx, tmp_path):
    from tests.engines.trt_double import install_trt_double
    install_trt_double(monkeypatch, "10")
    sidecar = build_engine(small_cnn_onnx, str(tmp_path / "m.engine"), BuildConfig(max_batch=4))
    assert sidecar.backend == "tensorrt" and sidecar.gpu_name == "Orin"


@pytest.mark.parametrize("other, message", [
    (dict(gpu_name="Orin", cc=(8, 7)), "built for GPU NVIDIA Tegra X1 but this machine has GPU Orin"),
    (dict(version="8.2.3.0"), "built for TensorRT version 8.2.1.8 but this machine has TensorRT "
                              "version 8.2.3.0"),
])
def test_an_engine_built_elsewhere_is_refused(monkeypatch, small_cnn_onnx, tmp_path, other,
                                              message):
    from tests.engines.trt_double import install_trt_double
    out = str(tmp_path / "nano.engine")
    with monkeypatch.context() as nano:
        install_trt_double(nano, "8.2")
        build_engine(small_cnn_onnx, out, BuildConfig(max_batch=4, backend="tensorrt"))
    install_trt_double(monkeypatch, "8.2", **other)
    with pytest.raises(EngineCompatibilityError, match=message):
        load_engine(out)


def test_int8_on_a_nano_is_a_clear_error(monkeypatch, small_cnn_onnx, tmp_path, capsys):
    from tests.engines.trt_double import install_trt_double
    from toolkit.cli.main import main
    install_trt_double(monkeypatch, "8.2", fast_int8=False)
    assert main(["build", small_cnn_onnx, "--precision", "int8", "--backend", "tensorrt",
                 "-o", str(tmp_path / "m.engine")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no fast INT8" in err[0] and "fp16" in err[0], err
    assert not os.path.exists(str(tmp_path / "m.engine"))
