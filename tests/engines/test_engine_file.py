"""Engine files and their sidecars: round trip, atomic writes, and every way a file can be bad."""
import json
import os

import pytest

from basics.errors import EngineCompatibilityError, InputError
from engines.base import TensorSpec
from engines.engine_file import (
    FORMAT_VERSION,
    EngineSidecar,
    read_engine,
    read_sidecar,
    sidecar_path,
    write_engine,
)


def _sidecar(**overrides):
    fields = dict(backend="tensorrt", precision="fp16", min_batch=1, opt_batch=8, max_batch=16,
                  engine_sha256="", engine_size_bytes=0,
                  inputs=[TensorSpec("input", (-1, 1, 8, 8), "float32")],
                  outputs=[TensorSpec("logits", (-1, 10), "float32")], workspace_mb=256,
                  tensorrt_version="8.2.1.8", gpu_name="NVIDIA Tegra X1", compute_capability="5.3",
                  source_onnx="m.onnx", source_onnx_sha256="ab" * 32, built_at="2024-01-01T00:00:00Z",
                  build_seconds=12.5, toolkit_version="0.1.0", metadata={"class_names": ["a"]},
                  notes=["fp16"])
    fields.update(overrides)
    return EngineSidecar(**fields)


@pytest.fixture
def engine_file(tmp_path):
    path = str(tmp_path / "m.engine")
    write_engine(path, b"\x01\x02engine bytes" * 100, _sidecar())
    return path


def test_sidecar_round_trips_through_json():
    sidecar = _sidecar(engine_sha256="cd" * 32, engine_size_bytes=10)
    again = EngineSidecar.from_dict(json.loads(json.dumps(sidecar.to_dict())))
    assert again.to_dict() == sidecar.to_dict()
    assert again.inputs[0] == TensorSpec("input", (-1, 1, 8, 8), "float32")
    assert "TensorRT 8.2.1.8 on NVIDIA Tegra X1" in again.describe()


def test_unknown_sidecar_keys_from_newer_toolkits_are_ignored():
    data = _sidecar().to_dict()
    data["some_future_field"] = 1
    assert EngineSidecar.from_dict(data).max_batch == 16


def test_write_then_read(engine_file):
    data, sidecar = read_engine(engine_file)
    assert data == b"\x01\x02engine bytes" * 100
    assert sidecar.engine_size_bytes == len(data)
    assert len(sidecar.engine_sha256) == 64
    assert os.path.isfile(engine_file + ".json") and sidecar_path(engine_file) == engine_file + ".json"
    # atomic writes leave no temp files behind
    assert sorted(os.listdir(os.path.dirname(engine_file))) == ["m.engine", "m.engine.json"]


def test_missing_engine_file(tmp_path):
    with pytest.raises(InputError, match="no such engine file"):
        read_engine(str(tmp_path / "nothing.engine"))


def test_missing_sidecar(engine_file):
    os.remove(engine_file + ".json")
    with pytest.raises(EngineCompatibilityError, match="has no sidecar m.engine.json"):
        read_engine(engine_file)


def test_truncated_engine(engine_file):
    with open(engine_file, "rb") as handle:
        data = handle.read()
    with open(engine_file, "wb") as handle:
        handle.write(data[:100])
    with pytest.raises(EngineCompatibilityError, match="is 100 bytes but was built as 1400 bytes: "
                                                       "the file is truncated"):
        read_engine(engine_file)


def test_corrupted_engine(engine_file):
    with open(engine_file, "r+b") as handle:
        handle.seek(50)
        handle.write(b"\xff")
    with pytest.raises(EngineCompatibilityError, match="is corrupted: its sha256"):
        read_engine(engine_file)


def test_sidecar_that_is_not_json(engine_file):
    with open(engine_file + ".json", "w") as handle:
        handle.write("{not json")
    with pytest.raises(EngineCompatibilityError, match="is not valid JSON"):
        read_sidecar(engine_file)


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("engine_sha256"), "lacks engine_sha256"),
    (lambda d: d.update(format_version=FORMAT_VERSION + 1), "has sidecar format 2"),
    (lambda d: d.update(backend="openvino"), "unknown engine backend 'openvino'"),
    (lambda d: d.update(max_batch="many"), "is malformed"),
])
def test_bad_sidecar_contents(engine_file, change, message):
    with open(engine_file + ".json") as handle:
        data = json.load(handle)
    change(data)
    with open(engine_file + ".json", "w") as handle:
        json.dump(data, handle)
    with pytest.raises(EngineCompatibilityError, match=message):
        read_engine(engine_file)


def test_sidecar_must_be_an_object(engine_file):
    with open(engine_file + ".json", "w") as handle:
        json.dump([1, 2], handle)
    with pytest.raises(EngineCompatibilityError, match="not an engine sidecar"):
        read_engine(engine_file)


def test_rewrite_replaces_both_files(engine_file):
    write_engine(engine_file, b"new", _sidecar(precision="fp32"))
    data, sidecar = read_engine(engine_file)
    assert data == b"new" and sidecar.precision == "fp32"


def test_model_metadata_comes_back_as_an_object():
    from engines.model_metadata import ModelMetadata
    meta = ModelMetadata(class_names=["zero", "one"])
    sidecar = _sidecar(metadata=meta.to_dict())
    assert sidecar.model_metadata() == meta
    assert _sidecar(metadata=None).model_metadata() is None
