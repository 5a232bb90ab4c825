"""build_engine: the ONNX Runtime backend end to end, precisions, sidecar contents, bad inputs."""
import os
import shutil
import sys
import types

import numpy as np
import pytest

from basics.errors import InputError, MissingDependencyError
from basics.fileio import sha256_file
from engines.backends import resolve_backend
from engines.build import build_engine
from engines.build_config import BuildConfig
from engines.engine_file import read_engine

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from tests.engines.test_onnxruntime_backend import (  # noqa: E402
    write_checker_failing_model,
    write_qdq_model,
    write_reshape_model,
    write_scale_model,
)

ORT = BuildConfig(backend="onnxruntime")


def test_fp32_engine_and_sidecar(small_cnn_onnx, tmp_path):
    out = str(tmp_path / "m.engine")
    sidecar = build_engine(small_cnn_onnx, out, BuildConfig(max_batch=16, backend="onnxruntime"))
    data, again = read_engine(out)
    assert again.to_dict() == sidecar.to_dict()
    assert data == open(small_cnn_onnx, "rb").read()  # fp32: the ONNX bytes as they are
    assert sidecar.backend == "onnxruntime" and sidecar.precision == "fp32"
    assert (sidecar.min_batch, sidecar.opt_batch, sidecar.max_batch) == (1, 16, 16)
    assert sidecar.source_onnx == "small_cnn.onnx"
    assert sidecar.source_onnx_sha256 == sha256_file(small_cnn_onnx)
    assert sidecar.engine_sha256 == sha256_file(out)
    assert sidecar.tensorrt_version is None and sidecar.gpu_name is None
    assert sidecar.onnxruntime_version and sidecar.toolkit_version and sidecar.built_at.endswith("Z")
    assert [s.to_dict() for s in sidecar.inputs] == [
        {"name": "input", "shape": [-1, 1, 8, 8], "dtype": "float32"}]
    assert sidecar.outputs[0].name == "logits"
    # the fixture's ONNX comes with its export's <onnx>.json, embedded in the engine's sidecar
    assert sidecar.metadata["onnx_sha256"] == sha256_file(small_cnn_onnx)
    assert sidecar.metadata["inputs"] == [s.to_dict() for s in sidecar.inputs]


def test_model_metadata_is_embedded(small_cnn_onnx, tmp_path):
    from engines.model_metadata import ModelMetadata, sidecar_path
    onnx_path = str(tmp_path / "digits.onnx")
    shutil.copy(small_cnn_onnx, onnx_path)
    meta = ModelMetadata(class_names=list("abcdefghij"), onnx_sha256=sha256_file(onnx_path))
    meta.save(sidecar_path(onnx_path))
    sidecar = build_engine(onnx_path, str(tmp_path / "digits.engine"), ORT)
    assert sidecar.model_metadata().class_names == list("abcdefghij")


def test_fp16_keeps_float32_io_and_close_outputs(small_cnn_onnx, tmp_path, digits_splits):
    from engines.load import load_engine
    out = str(tmp_path / "m16.engine")
    sidecar = build_engine(small_cnn_onnx, out, BuildConfig(precision="fp16", backend="onnxruntime"))
    assert sidecar.precision == "fp16" and "float16" in sidecar.notes[0]
    assert sidecar.inputs[0].dtype == np.float32
    assert sidecar.engine_sha256 != sha256_file(small_cnn_onnx)
    x = digits_splits[2].images[:32]
    with load_engine(out) as fp16, load_engine(small_cnn_onnx) as fp32:
        a, b = fp16.infer({"input": x})["logits"], fp32.infer({"input": x})["logits"]
    assert a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=0.05)
    assert np.mean(np.argmax(a, 1) == np.argmax(b, 1)) > 0.95


def test_int8_needs_qdq_nodes(small_cnn_onnx, tmp_path):
    with pytest.raises(InputError, match="needs a model that already holds Q/DQ nodes.*"
                                         "`toolkit calibrate .* --format qdq`"):
        build_engine(small_cnn_onnx, str(tmp_path / "m.engine"),
                     BuildConfig(precision="int8", backend="onnxruntime"))
    assert not os.path.exists(str(tmp_path / "m.engine"))
    with pytest.raises(InputError, match="on ONNX Runtime INT8 comes from a Q/DQ model "
                                         r"\(`toolkit calibrate MODEL.onnx"):
        build_engine(small_cnn_onnx, str(tmp_path / "m.engine"),
                     BuildConfig(precision="int8", backend="onnxruntime",
                                 calibration_cache=str(tmp_path / "m.cache")))


def test_int8_from_a_qdq_model(tmp_path):
    from engines.int8_gate import Int8Gate
    onnx_path = write_qdq_model(tmp_path / "q.onnx")
    gate = Int8Gate(np.tile(np.eye(4, dtype=np.float32), (2, 1)))  # clear arg-max: 8 samples
    sidecar = build_engine(onnx_path, str(tmp_path / "q.engine"),
                           BuildConfig(precision="int8", backend="onnxruntime"), gate)
    assert sidecar.precision == "int8"
    assert "DequantizeLinear" in sidecar.notes[0] and "QuantizeLinear" in sidecar.notes[0]
    assert "ONNX Runtime CPU form u8s8" in sidecar.notes[1]
    assert any(note.startswith("int8 gate: INT8 vs fp32 on 8 calibration samples")
               for note in sidecar.notes)


def test_int8_build_needs_gate_samples(tmp_path):
    onnx_path = write_qdq_model(tmp_path / "q.onnx")
    with pytest.raises(InputError, match="compares the INT8 model with fp32 on calibration "
                                         "samples before writing it: give --data"):
        build_engine(onnx_path, str(tmp_path / "q.engine"),
                     BuildConfig(precision="int8", backend="onnxruntime"))
    assert os.listdir(str(tmp_path)) == ["q.onnx"]


def test_calibration_cache_rules(small_cnn_onnx, tmp_path):
    with pytest.raises(InputError, match="a calibration cache only applies to INT8 builds"):
        build_engine(small_cnn_onnx, str(tmp_path / "m.engine"),
                     BuildConfig(calibration_cache="c.cache", backend="onnxruntime"))
    with pytest.raises(InputError, match="INT8 comes from a Q/DQ model"):
        build_engine(write_qdq_model(tmp_path / "q.onnx"), str(tmp_path / "q.engine"),
                     BuildConfig(precision="int8", calibration_cache="c.cache",
                                 backend="onnxruntime"))


def test_missing_onnx(tmp_path):
    with pytest.raises(InputError, match="no such ONNX file"):
        build_engine(str(tmp_path / "nope.onnx"), str(tmp_path / "m.engine"), ORT)


@pytest.mark.parametrize("content, message", [
    (b"", "is empty: not an ONNX model"),
    (b"\xff\xfe garbage that is not protobuf \x00\x01", "is not a valid ONNX model"),
])
def test_malformed_onnx(tmp_path, content, message):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        build_engine(str(path), str(tmp_path / "m.engine"), ORT)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_onnx_that_fails_the_checker(tmp_path):
    path = write_checker_failing_model(tmp_path / "broken.onnx")
    with pytest.raises(InputError, match="fails the ONNX checker"):
        build_engine(path, str(tmp_path / "m.engine"), ORT)


def test_engine_must_not_end_in_onnx(tmp_path):
    path = write_scale_model(tmp_path / "m.onnx")
    with pytest.raises(InputError, match="must not end in .onnx"):
        build_engine(path, str(tmp_path / "m2.onnx"), ORT)


def test_fixed_batch_model_needs_a_matching_profile(tmp_path):
    path = write_scale_model(tmp_path / "fixed.onnx", batch=1)
    with pytest.raises(InputError, match="has a fixed batch of 1, but the profile asks for 1..32"):
        build_engine(path, str(tmp_path / "m.engine"), ORT)
    sidecar = build_engine(path, str(tmp_path / "m.engine"),
                           BuildConfig(max_batch=1, backend="onnxruntime"))
    assert sidecar.max_batch == 1


def test_model_that_cannot_run_at_the_maximum_batch(tmp_path):
    path = write_reshape_model(tmp_path / "r.onnx")
    with pytest.raises(InputError, match="does not run at batch 32"):
        build_engine(path, str(tmp_path / "m.engine"), ORT)
    assert build_engine(path, str(tmp_path / "m.engine"),
                        BuildConfig(max_batch=1, backend="onnxruntime")).max_batch == 1


def test_backend_choice(monkeypatch):
    monkeypatch.setattr("engines.tensorrt_backend.tensorrt_available", lambda: False)
    assert resolve_backend("auto").name == "onnxruntime"
    assert resolve_backend("onnxruntime").name == "onnxruntime"
    monkeypatch.setattr("engines.tensorrt_backend.tensorrt_available", lambda: True)
    assert resolve_backend("auto").name == "tensorrt"
    with pytest.raises(InputError, match="unknown backend 'tpu'; use one of auto, tensorrt, "
                                         "onnxruntime"):
        resolve_backend("tpu")


def test_tensorrt_available_is_the_backend_check(monkeypatch):
    from engines.backends import get_backend
    from tests.engines.trt_double import install_trt_double
    tensorrt = get_backend("tensorrt")
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert tensorrt.available() is False
    install_trt_double(monkeypatch, "10")
    assert tensorrt.available() is True
    monkeypatch.setattr("engines.tensorrt_backend.tensorrt_available", lambda: False)
    assert tensorrt.available() is False  # one check, in engines.tensorrt_backend


def test_tensorrt_backend_without_tensorrt(tmp_path, monkeypatch):
    monkeypatch.setattr("engines.tensorrt_backend.tensorrt_available", lambda: False)
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt fails
    path = write_scale_model(tmp_path / "m.onnx")
    with pytest.raises(MissingDependencyError, match="'tensorrt' is needed for building TensorRT"):
        build_engine(path, str(tmp_path / "m.engine"), BuildConfig(backend="tensorrt"))
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))  # but no GPU
    with pytest.raises(MissingDependencyError, match="TensorRT is installed but cannot run here"):
        build_engine(path, str(tmp_path / "m.engine"), BuildConfig(backend="tensorrt"))


def test_a_stale_model_metadata_sidecar_fails_before_building(small_cnn_onnx, tmp_path):
    from engines.model_metadata import ModelMetadata, sidecar_path
    onnx_path = str(tmp_path / "digits.onnx")
    shutil.copy(small_cnn_onnx, onnx_path)
    ModelMetadata(onnx_sha256="0" * 64).save(sidecar_path(onnx_path))
    with pytest.raises(InputError, match="describes another model"):
        build_engine(onnx_path, str(tmp_path / "digits.engine"), ORT)
    assert not os.path.exists(str(tmp_path / "digits.engine"))


def test_truncated_onnx(small_cnn_onnx, tmp_path):
    data = open(small_cnn_onnx, "rb").read()
    path = tmp_path / "half.onnx"
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(InputError) as info:
        build_engine(str(path), str(tmp_path / "m.engine"), ORT)
    assert "is not a valid ONNX model" in str(info.value) and "\n" not in str(info.value)
