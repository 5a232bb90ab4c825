"""Calibration data for a model (calibration/sources.py): its input, preprocessing, batches."""
import os
import shutil
import sys

import numpy as np
import pytest

from basics.errors import InputError, MissingDependencyError
from calibration.sources import BatchReader, load_calibration_set, model_input

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture
def bare_onnx(small_cnn_onnx, tmp_path):
    """small_cnn without its metadata sidecar."""
    path = str(tmp_path / "bare.onnx")
    shutil.copy(small_cnn_onnx, path)
    return path


def write_png_digits(root, data, count):
    """``count`` images of ``data`` as PNG files in one sub-folder per class under ``root``."""
    from PIL import Image
    for i in range(count):
        folder = os.path.join(str(root), str(data.labels[i]))
        if not os.path.isdir(folder):
            os.makedirs(folder)
        Image.fromarray(np.round(data.images[i, 0] * 255).astype(np.uint8)).save(
            os.path.join(folder, "{}.png".format(i)))
    return str(root)


def test_model_input_from_the_sidecar_or_the_onnx(small_cnn_onnx, bare_onnx, monkeypatch):
    spec, meta = model_input(small_cnn_onnx)
    assert (spec.name, spec.shape, spec.dtype.name) == ("input", (-1, 1, 8, 8), "float32")
    assert meta is not None and meta.inputs == [spec]
    spec, meta = model_input(bare_onnx)
    assert (spec.name, spec.shape, meta) == ("input", (-1, 1, 8, 8), None)
    monkeypatch.setitem(sys.modules, "onnx", None)  # a Jetson without onnx: ONNX Runtime reads it
    assert model_input(bare_onnx)[0].shape == (-1, 1, 8, 8)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match="needs its metadata sidecar"):
        model_input(bare_onnx)


def test_model_input_rejects(tmp_path):
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["out"])], "two",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 4]) for n in ("a", "b")],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 4])])
    path = str(tmp_path / "two.onnx")
    with open(path, "wb") as handle:
        handle.write(helper.make_model(graph).SerializeToString())
    with pytest.raises(InputError, match="models with one image input; .* has 2: a, b"):
        model_input(path)
    graph = helper.make_graph(
        [helper.make_node("Identity", ["a"], ["out"])], "flat",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 4])])
    with open(path, "wb") as handle:
        handle.write(helper.make_model(graph).SerializeToString())
    with pytest.raises(InputError, match="float NCHW images; input 'a' .* is Nx4 float32"):
        model_input(path)
    with pytest.raises(InputError, match="no such ONNX file"):
        model_input(str(tmp_path / "none.onnx"))
    with open(path, "wb") as handle:
        handle.write(b"\x08\x01garbage")
    with pytest.raises(InputError, match="not a valid ONNX model"):
        model_input(path)


def test_load_calibration_set_applies_the_models_preprocessing(small_cnn_onnx, tmp_path,
                                                               digits_splits):
    from engines.model_metadata import ModelMetadata, sidecar_path
    path = str(tmp_path / "m.onnx")
    shutil.copy(small_cnn_onnx, path)
    meta = ModelMetadata.load(sidecar_path(small_cnn_onnx))
    meta.preprocessing = meta.preprocessing.from_dict({"resize_hw": [8, 8], "mean": [0.5],
                                                       "std": [0.25]})
    meta.save(sidecar_path(path))
    calibration_set = load_calibration_set("digits:train", path)
    assert calibration_set.name == "digits:train" and len(calibration_set) == 1078
    np.testing.assert_allclose(calibration_set.images, (digits_splits[0].images - 0.5) / 0.25,
                               atol=1e-6)
    # a 16x16 data set resized to the model's 8x8 by that preprocessing
    assert load_calibration_set("digits16", path).images.shape == (1797, 1, 8, 8)


def test_load_calibration_set_from_an_image_folder(bare_onnx, tmp_path, digits_splits):
    root = write_png_digits(tmp_path / "images", digits_splits[0], 12)
    calibration_set = load_calibration_set(root, bare_onnx)
    assert calibration_set.images.shape == (12, 1, 8, 8) and calibration_set.metadata is None
    assert calibration_set.images.dtype == np.float32


def test_load_calibration_set_rejects_data_of_another_size(bare_onnx):
    with pytest.raises(InputError, match="images of digits16 are 1x16x16 but bare.onnx takes "
                                         "Nx1x8x8"):
        load_calibration_set("digits16", bare_onnx)
    with pytest.raises(InputError, match="neither a bundled data set"):
        load_calibration_set("nothing", bare_onnx)


def test_batch_reader_hands_out_full_batches():
    images = np.arange(10 * 4, dtype=np.float64).reshape(10, 1, 2, 2)
    seen = []
    reader = BatchReader(images, "input", batch_size=4, on_batch=seen.append)
    assert len(reader) == 2
    first = reader.get_next()
    assert list(first) == ["input"] and first["input"].dtype == np.float32
    assert first["input"].shape == (4, 1, 2, 2) and first["input"].flags["C_CONTIGUOUS"]
    assert reader.get_next()["input"][0, 0, 0, 0] == 16.0
    assert reader.get_next() is None and reader.batches_read == 2 and len(seen) == 2
    reader.rewind()
    assert reader.get_next()["input"][0, 0, 0, 0] == 0.0
    assert len(BatchReader(images, "input", batch_size=2, max_batches=3)) == 3


@pytest.mark.parametrize("count, batch_size, max_batches, message", [
    (3, 4, None, "at least one full batch of 4 images, got 3"),
    (8, 0, None, "batch size must be positive"),
    (8, 4, 0, "max_batches must be at least 1"),
])
def test_batch_reader_rejects(count, batch_size, max_batches, message):
    with pytest.raises(InputError, match=message):
        BatchReader(np.zeros((count, 1, 2, 2), np.float32), "input", batch_size, max_batches)
