"""toolkit.running.engine_images: data-set images made one engine's input (pair, demo)."""
import numpy as np
import pytest

from basics.errors import InputError
from engines.preprocess import Preprocessing
from engines.model_metadata import ModelMetadata
from engines.onnxruntime_backend import OnnxRuntimeEngine
from toolkit.running import engine_images


def test_the_engines_preprocessing_is_applied(small_cnn_onnx, digits_splits):
    images = digits_splits[2].images[:4]
    meta = ModelMetadata(preprocessing=Preprocessing(mean=[0.5], std=[0.25]))
    with OnnxRuntimeEngine(small_cnn_onnx, metadata=meta) as engine:
        out = engine_images(engine, images)
    np.testing.assert_allclose(out, (images - 0.5) / 0.25, rtol=1e-6, atol=1e-6)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    with OnnxRuntimeEngine(small_cnn_onnx) as plain:
        np.testing.assert_array_equal(engine_images(plain, images), images)


def test_images_that_do_not_fit_the_model_are_a_one_line_error(small_cnn_onnx):
    with OnnxRuntimeEngine(small_cnn_onnx) as engine:
        with pytest.raises(InputError, match="images are 1x16x16 but the model takes 1x8x8"):
            engine_images(engine, np.zeros((2, 1, 16, 16), np.float32))
