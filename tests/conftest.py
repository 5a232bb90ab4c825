"""Shared fixtures: the bundled digits data and small trained models exported to ONNX.

Trained once per test session (a few seconds on 2 cores) and shared by every test that needs a
real model, so the suite stays fast.
"""
import importlib.util
import os

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# NVIDIA's TensorRT/pycuda name lists: shared/trt-api beside the repository, or $TRT_API_DIR
TRT_API_DIR = os.environ.get("TRT_API_DIR") or os.path.join(os.path.dirname(REPO_ROOT), "shared",
                                                            "trt-api")


@pytest.fixture(scope="session")
def digits_splits():
    """(train, val, test) of the 8x8 digits, the fixed 60/20/20 split."""
    from calibration.datasets import load_digits_variant
    return load_digits_variant("digits").split(seed=0)


def _export_plain(model, path, shape):
    """Export through the toolkit's exporter (input 'input', output 'logits', dynamic batch):
    writes ``path`` and its metadata sidecar ``path.json``; returns ``path`` as a str."""
    from export.onnx_export import export_to_onnx
    result = export_to_onnx(model, str(path), tuple(shape), input_names=("input",),
                            output_names=("logits",))
    return str(result.onnx_path)


@pytest.fixture(scope="session")
def trained_small_cnn(digits_splits):
    """A small_cnn trained for a few epochs on digits (torch module, eval mode)."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from export import models, training
    torch.manual_seed(0)  # the initial weights: the same model whatever ran before
    model = models.small_cnn()
    return training.train_classifier(model, digits_splits[0], training.TrainConfig(epochs=6))


@pytest.fixture(scope="session")
def small_cnn_onnx(trained_small_cnn, tmp_path_factory):
    """Path of ``trained_small_cnn`` exported to ONNX (input 'input' Nx1x8x8, output 'logits'),
    with its metadata sidecar ``<path>.json`` (identity preprocessing, no class names)."""
    path = tmp_path_factory.mktemp("models") / "small_cnn.onnx"
    return _export_plain(trained_small_cnn, path, (1, 1, 8, 8))


@pytest.fixture(scope="session")
def cnn_onnx(tmp_path_factory, request):
    """An ONNX CNN for engine tests that need any model of ``small_cnn_onnx``'s interface: that
    one where torch is installed; without torch (the device test jobs, as on a Jetson) a CNN built
    with ``onnx.helper`` (random weights, untrained), so the TensorRT tests run there too."""
    if importlib.util.find_spec("torch") is not None:
        return request.getfixturevalue("small_cnn_onnx")
    return _helper_cnn(str(tmp_path_factory.mktemp("models") / "helper_cnn.onnx"))


def _helper_cnn(path):
    """Conv(1->4, 3x3) -> Relu -> Flatten -> Gemm(256->10), written with its sidecar."""
    onnx = pytest.importorskip("onnx")
    import hashlib
    from onnx import TensorProto, helper, numpy_helper
    from engines.base import TensorSpec
    from engines.model_metadata import ModelMetadata, sidecar_path
    rng = np.random.RandomState(0)
    weights = [numpy_helper.from_array(rng.normal(0, 0.5, shape).astype(np.float32), name)
               for name, shape in (("conv_w", (4, 1, 3, 3)), ("conv_b", (4,)),
                                   ("fc_w", (10, 256)), ("fc_b", (10,)))]
    nodes = [helper.make_node("Conv", ["input", "conv_w", "conv_b"], ["conv"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["conv"], ["relu"]),
             helper.make_node("Flatten", ["relu"], ["flat"], axis=1),
             helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1)]
    graph = helper.make_graph(
        nodes, "small_cnn_helper",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7  # onnxruntime 1.10 (JetPack 4.6) reads IR <= 8
    data = model.SerializeToString()
    with open(path, "wb") as handle:
        handle.write(data)
    ModelMetadata(inputs=[TensorSpec("input", (-1, 1, 8, 8), "float32")],
                  outputs=[TensorSpec("logits", (-1, 10), "float32")],
                  onnx_sha256=hashlib.sha256(data).hexdigest()).save(sidecar_path(path))
    return path


@pytest.fixture
def rng():
    return np.random.RandomState(0)
