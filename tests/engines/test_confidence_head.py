"""engines.confidence_head: softmax and top-1 appended to a classifier's graph."""
import sys

import numpy as np
import pytest

from basics.errors import InputError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from engines.confidence_head import HEAD_OUTPUTS, add_confidence_head, has_confidence_head  # noqa: E402,E501
from engines.onnxruntime_backend import OnnxRuntimeEngine  # noqa: E402


def _classifier(opset=13, classes=6, output="logits"):
    rng = np.random.RandomState(opset)
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 2, 2])
    y = helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", classes])
    weights = numpy_helper.from_array(rng.randn(4, classes).astype(np.float32) * 3, "W")
    nodes = [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "W"], [output])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [weights]),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model.SerializeToString()


@pytest.mark.parametrize("opset", [13, 18])
def test_head_outputs_match_the_host_softmax(opset):
    if opset > onnx.defs.onnx_opset_version():  # onnx 1.11, the last for Python 3.6, stops at 16
        pytest.skip("onnx {} does not know opset {}".format(onnx.__version__, opset))
    from toolkit.strategies.scores import softmax_and_max
    model = add_confidence_head(_classifier(opset))
    onnx.checker.check_model(onnx.load_from_string(model))
    engine = OnnxRuntimeEngine(model)
    assert [spec.name for spec in engine.outputs] == ["logits"] + list(HEAD_OUTPUTS)
    assert has_confidence_head(engine)
    x = np.random.RandomState(1).randn(50, 1, 2, 2).astype(np.float32)
    out = engine.infer({"input": x})
    probs, top = softmax_and_max(out["logits"])
    np.testing.assert_allclose(out["probs"], probs, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out["confidence"], top, rtol=1e-5)
    np.testing.assert_array_equal(out["confidence"], out["probs"].max(axis=1))
    np.testing.assert_array_equal(out["label"], out["probs"].argmax(axis=1))
    assert out["label"].dtype == np.int64 and out["confidence"].shape == (50,)


def test_head_is_added_once_and_refuses_taken_names():
    model = add_confidence_head(_classifier())
    assert add_confidence_head(model) == model
    with pytest.raises(InputError, match="already has tensors named probs"):
        add_confidence_head(_classifier(output="probs"))
    with pytest.raises(InputError, match="no output 'nope'"):
        add_confidence_head(_classifier(), output="nope")


def test_engine_option_and_its_fallback_without_onnx(monkeypatch):
    assert has_confidence_head(OnnxRuntimeEngine(_classifier(), confidence_head=True))
    assert not has_confidence_head(OnnxRuntimeEngine(_classifier()))
    model = _classifier()
    monkeypatch.setitem(sys.modules, "onnx", None)  # a device without the onnx package
    engine = OnnxRuntimeEngine(model, confidence_head=True)
    assert [spec.name for spec in engine.outputs] == ["logits"]  # the host computes the rest


def test_the_head_is_appended_after_the_graph_as_the_onnx_package_reads_it():
    model = onnx.load_from_string(add_confidence_head(_classifier()))
    onnx.checker.check_model(model, full_check=True)
    assert [node.op_type for node in model.graph.node] == ["Flatten", "MatMul", "Softmax",
                                                            "ArgMax", "ReduceMax"]
    assert [node.name for node in model.graph.node[2:]] == [
        "confidence_head/softmax", "confidence_head/argmax", "confidence_head/reducemax"]
    shapes = {value.name: ([d.dim_param or d.dim_value for d in
                            value.type.tensor_type.shape.dim], value.type.tensor_type.elem_type)
              for value in model.graph.output}
    assert shapes == {"logits": (["N", 6], TensorProto.FLOAT),
                      "probs": (["N", 6], TensorProto.FLOAT),
                      "confidence": (["N"], TensorProto.FLOAT),
                      "label": (["N"], TensorProto.INT64)}


def test_logits_of_another_rank_are_flattened_first():
    rng = np.random.RandomState(3)
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 2, 3])
    y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 2, 3])
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["scores"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    engine = OnnxRuntimeEngine(add_confidence_head(model.SerializeToString()))
    images = rng.randn(4, 2, 3).astype(np.float32)
    out = engine.infer({"input": images})
    flat = np.maximum(images, 0).reshape(4, 6)
    np.testing.assert_array_equal(out["label"], flat.argmax(axis=1))
    assert out["probs"].shape == (4, 6)


def test_bytes_that_are_not_onnx_are_a_one_line_error():
    with pytest.raises(InputError, match="not an ONNX model"):
        add_confidence_head(b"\x0a\xff\xff\xff")


def test_a_model_with_external_data_loads_without_the_head(tmp_path):
    """ONNX Runtime finds external weights only through the model's path: such a model runs as
    it is (the host computes softmax and top-1) instead of failing to load."""
    from engines.confidence_head import _uses_external_data
    from toolkit.strategies.single import Single
    path = str(tmp_path / "ext.onnx")
    model = onnx.load_from_string(_classifier())
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.data", size_threshold=0)
    assert _uses_external_data(onnx.load(path, load_external_data=False))
    assert not _uses_external_data(onnx.load_from_string(_classifier()))
    engine = OnnxRuntimeEngine(path, confidence_head=True)
    assert [spec.name for spec in engine.outputs] == ["logits"]
    x = np.random.RandomState(2).randn(9, 1, 2, 2).astype(np.float32)
    with_head = Single(OnnxRuntimeEngine(_classifier(), confidence_head=True)).classify(x)
    np.testing.assert_array_equal(Single(engine).classify(x).labels, with_head.labels)
