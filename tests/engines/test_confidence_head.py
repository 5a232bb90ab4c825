"""engines.confidence_head: softmax and top-1 appended to a classifier's graph."""
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
    import engines.confidence_head as head
    monkeypatch.setattr(head, "head_available", lambda: False)
    engine = OnnxRuntimeEngine(_classifier(), confidence_head=True)
    assert [spec.name for spec in engine.outputs] == ["logits"]
