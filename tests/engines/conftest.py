"""Fixtures shared by the engine tests."""
import pytest


@pytest.fixture(scope="session")
def qdq_model(small_cnn_onnx, digits_splits, tmp_path_factory):
    """small_cnn's Q/DQ model for TensorRT (signed, symmetric), as ``toolkit calibrate`` writes it
    (calibrated on the digits train split). Tests read it; none writes it."""
    pytest.importorskip("onnxruntime.quantization")
    from calibration.qdq import QdqConfig, quantize_qdq
    out = str(tmp_path_factory.mktemp("qdq") / "small.int8.onnx")
    quantize_qdq(small_cnn_onnx, digits_splits[0].images, out, QdqConfig(batch_size=16))
    return out
