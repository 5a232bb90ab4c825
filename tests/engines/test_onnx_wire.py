"""engines.onnx_wire: reading and appending to ONNX models at the protobuf level, checked against
the onnx package's own reading of the same bytes."""
import sys

import numpy as np
import pytest

from basics.errors import InputError
from engines import onnx_wire

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _model(opset=13):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    z = helper.make_tensor_value_info("z", TensorProto.INT64, [None])
    weights = numpy_helper.from_array(np.ones((4, 3), np.float32), "W")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm"),
             helper.make_node("Shape", ["y"], ["s"]),
             helper.make_node("Identity", ["s"], ["z"])]
    graph = helper.make_graph(nodes, "g", [x], [y, z], [weights])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                   helper.make_opsetid("com.acme", 99)])


def test_read_model_agrees_with_the_onnx_package():
    model = _model()
    facts = onnx_wire.read_model(model.SerializeToString())
    assert facts.opset == 13  # the default domain's, not com.acme's
    assert [(o.name, o.elem_type, o.dims) for o in facts.outputs] == [
        ("y", TensorProto.FLOAT, ["N", 3]), ("z", TensorProto.INT64, [None])]
    expected = {"x", "y", "z", "W", "s"}
    assert facts.names == expected


def test_read_model_of_the_test_models(cnn_onnx):
    with open(cnn_onnx, "rb") as handle:
        data = handle.read()
    model = onnx.load_from_string(data)
    facts = onnx_wire.read_model(data)
    assert [o.name for o in facts.outputs] == [o.name for o in model.graph.output]
    assert facts.opset == max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    names = set(i.name for i in model.graph.input) | set(i.name for i in model.graph.initializer)
    names |= set(o for n in model.graph.node for o in n.output)
    assert facts.names == names | set(o.name for o in model.graph.output)


def test_appended_nodes_outputs_and_initializers_are_read_back_by_onnx():
    # opset 18 (ReduceMax takes axes as an input) where this onnx knows it (1.11 stops at 16)
    opset = 18 if onnx.defs.onnx_opset_version() >= 18 else 13
    data = _model(opset=opset).SerializeToString()
    reduce_max = (onnx_wire.node("ReduceMax", ["y", "axes"], ["m"], "extra/max", keepdims=0)
                  if opset >= 18 else
                  onnx_wire.node("ReduceMax", ["y"], ["m"], "extra/max", axes=[1], keepdims=0))
    appended = onnx_wire.append_to_graph(
        data,
        nodes=[reduce_max,
               onnx_wire.node("ArgMax", ["y"], ["a"], "extra/argmax", axis=-1, keepdims=0)],
        initializers=[onnx_wire.int64_tensor("axes", [1])],
        outputs=[onnx_wire.value_info("m", onnx_wire.FLOAT, ["N"]),
                 onnx_wire.value_info("a", onnx_wire.INT64, [None])])
    model = onnx.load_from_string(appended)
    onnx.checker.check_model(model, full_check=True)
    assert [n.name for n in model.graph.node][-2:] == ["extra/max", "extra/argmax"]
    argmax = model.graph.node[-1]
    assert helper.get_attribute_value(argmax.attribute[0]) == -1  # negative ints survive
    assert numpy_helper.to_array(model.graph.initializer[-1]).tolist() == [1]
    assert [o.name for o in model.graph.output] == ["y", "z", "m", "a"]
    assert onnx_wire.read_model(appended).outputs[-1].dims == [None]
    # unchanged otherwise: the original's fields are all still there
    original = _model(opset=opset)
    assert model.graph.node[:3] == original.graph.node[:3]
    assert model.opset_import == original.opset_import


def test_works_without_the_onnx_package(monkeypatch):
    data = _model().SerializeToString()
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert [o.name for o in onnx_wire.read_model(data).outputs] == ["y", "z"]


@pytest.mark.parametrize("data", [b"\x0a\x05ab", b"\x0a", b"\x80\x80", b"\x0b\x00",
                                  b"\x3a\xff\xff\xff\xff\x0f"])
def test_truncated_or_malformed_bytes_are_input_errors(data):
    with pytest.raises(InputError, match="not an ONNX model"):
        onnx_wire.read_model(data)


def test_a_truncated_model_is_an_input_error():
    data = _model().SerializeToString()
    with pytest.raises(InputError, match="not an ONNX model"):
        onnx_wire.read_model(data[:len(data) // 2])
