import json

import pytest

from basics.errors import InputError
from basics.fileio import sha256_file
from engines.preprocess import Preprocessing
from engines.base import TensorSpec
from engines.model_metadata import ModelMetadata, sidecar_path


def _meta(**overrides):
    fields = dict(inputs=[TensorSpec("input", (-1, 3, 8, 8), "float32")],
                  outputs=[TensorSpec("logits", (-1, 3), "float32")],
                  class_names=["cat", "dog", "bird"],
                  preprocessing=Preprocessing(resize_hw="8x8", mean=[0.5, 0.4, 0.3], std=0.2,
                                              channel_order="BGR"),
                  onnx_sha256="0" * 64, opset=13, source="export.models:small_cnn",
                  parity={"max_abs_error": 1e-7, "max_rel_error": 1e-6})
    fields.update(overrides)
    return ModelMetadata(**fields)


def test_dict_round_trip():
    meta = _meta()
    again = ModelMetadata.from_dict(json.loads(json.dumps(meta.to_dict())))
    assert again == meta
    assert again.inputs[0].shape == (-1, 3, 8, 8) and again.inputs[0].dtype.name == "float32"
    assert again.preprocessing.channel_order == "BGR" and again.num_classes == 3
    assert again.class_name(1) == "dog" and again.class_name(7) == "7"


def test_defaults_and_dict_preprocessing():
    meta = ModelMetadata()
    assert meta.preprocessing.is_identity and meta.class_names is None and meta.num_classes is None
    assert meta.class_name(2) == "2"
    meta = ModelMetadata(preprocessing={"mean": [0.5]}, inputs=[{"name": "x", "shape": [1, 2],
                                                                "dtype": "float16"}])
    assert meta.preprocessing.mean == (0.5,) and meta.inputs[0].dtype.name == "float16"


def test_save_load_and_for_model(tmp_path):
    onnx_path = tmp_path / "model.onnx"
    onnx_path.write_bytes(b"not really onnx")
    meta = _meta(onnx_sha256=sha256_file(str(onnx_path)))
    meta.save(sidecar_path(str(onnx_path)))
    assert (tmp_path / "model.onnx.json").is_file()
    assert ModelMetadata.load(str(tmp_path / "model.onnx.json")) == meta
    assert ModelMetadata.for_model(str(onnx_path)) == meta


def test_for_model_without_sidecar_is_none(tmp_path):
    assert ModelMetadata.for_model(str(tmp_path / "absent.onnx")) is None


def test_for_model_rejects_a_stale_sidecar(tmp_path):
    onnx_path = tmp_path / "model.onnx"
    onnx_path.write_bytes(b"version 2")
    _meta(onnx_sha256="ab" * 32).save(str(onnx_path) + ".json")
    with pytest.raises(InputError, match="describes another model"):
        ModelMetadata.for_model(str(onnx_path))
    assert ModelMetadata.for_model(str(onnx_path), verify=False).class_names == ["cat", "dog", "bird"]


def test_load_missing_and_invalid_json(tmp_path):
    with pytest.raises(InputError, match="no such metadata file"):
        ModelMetadata.load(str(tmp_path / "none.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        ModelMetadata.load(str(bad))
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="not valid JSON"):
        ModelMetadata.load(str(bad))


@pytest.mark.parametrize("change, words", [
    ({"format": 99}, "format 99 is not supported"),
    ({"colour": "red"}, "unknown model metadata field"),
    ({"class_names": "a,b"}, "class_names must be a list"),
    ({"inputs": {"name": "x"}}, "inputs must be a list"),
    ({"inputs": [{"name": "x"}]}, "bad inputs entry"),
    ({"outputs": [{"name": "y", "shape": [1], "dtype": "nonsense"}]}, "bad outputs entry"),
    ({"preprocessing": {"channel_order": "CMYK"}}, "channel order"),
])
def test_bad_metadata_is_one_line_error(tmp_path, change, words):
    data = _meta().to_dict()
    data.update(change)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=words) as info:
        ModelMetadata.load(str(path))
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_non_object_and_bad_constructor_args():
    with pytest.raises(InputError, match="must be a JSON object"):
        ModelMetadata.from_dict([1, 2])
    with pytest.raises(InputError, match="preprocessing must be a Preprocessing"):
        ModelMetadata(preprocessing="RGB")
    with pytest.raises(InputError, match="tensor spec"):
        ModelMetadata(inputs=["input"])
