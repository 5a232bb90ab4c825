"""Helpers for strategy tests: hand-made ONNX "models" with exact control, a recording engine
wrapper, and a second real model (tiny_cnn) trained once per session."""
import numpy as np
import pytest

from engines.base import Engine


def logits_onnx(classes, matrix=None, negate=False, shape=None):
    """ONNX bytes of a model whose logits are its input: (N, 1, 1, C) -> (N, C), optionally times
    ``matrix`` (C x C). ``shape`` (C, H, W) with ``negate`` gives an image -> image model (-x)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    inits = []
    if shape is not None:
        x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N"] + list(shape))
        y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N"] + list(shape))
        nodes = [helper.make_node("Neg" if negate else "Identity", ["input"], ["output"])]
    else:
        x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 1, classes])
        y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])
        nodes = [helper.make_node("Flatten", ["input"], ["flat"], axis=1)]
        if matrix is None:
            nodes.append(helper.make_node("Identity", ["flat"], ["logits"]))
        else:
            inits.append(numpy_helper.from_array(np.asarray(matrix, dtype=np.float32), "W"))
            nodes.append(helper.make_node("MatMul", ["flat", "W"], ["logits"]))
    graph = helper.make_graph(nodes, "g", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def linear_image_onnx(matrix, shape=(1, 8, 8)):
    """ONNX bytes of a linear 'classifier' of images: (N, C, H, W) -> flatten -> times ``matrix``
    (C*H*W x K) -> logits (N, K)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    matrix = np.asarray(matrix, dtype=np.float32)
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N"] + list(shape))
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", matrix.shape[1]])
    nodes = [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "W"], ["logits"])]
    graph = helper.make_graph(nodes, "g", [x], [y], [numpy_helper.from_array(matrix, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def logits_engine(classes, matrix=None, identity=None, max_batch=None, **kwargs):
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    return OnnxRuntimeEngine(logits_onnx(classes, matrix, **kwargs), identity=identity,
                             max_batch=max_batch, threads=1)


class Recorder(Engine):
    """Wraps an engine and records every batch it is given (copies)."""

    def __init__(self, engine):
        self.engine = engine
        self.inputs = engine.inputs
        self.outputs = engine.outputs
        self.max_batch = engine.max_batch
        self.min_batch = engine.min_batch
        self.batches = []

    def _run(self, feeds):
        self.batches.append(feeds[self.inputs[0].name].copy())
        return self.engine.infer(feeds)

    @property
    def samples(self):
        return sum(len(b) for b in self.batches)

    def identity(self):
        return self.engine.identity()


@pytest.fixture(scope="session")
def tiny_cnn_onnx(digits_splits, tmp_path_factory):
    """A tiny_cnn trained briefly on digits, exported to ONNX: the cheap, weaker pool member."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from export import models, training
    from tests.conftest import _export_plain
    torch.manual_seed(1)  # the initial weights: the same model whatever ran before
    model = training.train_classifier(models.tiny_cnn(), digits_splits[0],
                                      training.TrainConfig(epochs=3, seed=1))
    path = tmp_path_factory.mktemp("models") / "tiny_cnn.onnx"
    return _export_plain(model, path, (1, 1, 8, 8))


@pytest.fixture
def ort_engine():
    """Open an ONNX file on ONNX Runtime (CPU, one thread) with its file name as identity."""
    from engines.onnxruntime_backend import OnnxRuntimeEngine

    def open_engine(path, max_batch=None):
        return OnnxRuntimeEngine(str(path), identity="file:" + str(path), max_batch=max_batch,
                                 threads=1)
    return open_engine
