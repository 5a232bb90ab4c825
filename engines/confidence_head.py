"""The confidence head: softmax and top-1 appended to a classifier's ONNX graph.

A strategy needs, per sample, the probabilities, the largest of them and its class. Computed on
the host they cost about a dozen small numpy calls per batch (most of a cascade's own time at
batch 1); computed in the graph they cost the engine a few small kernels (on TensorRT, on the GPU)
and the host reads them as they come. :func:`add_confidence_head` appends to the graph, after
the logits output (default: the first output):

- ``probs`` = ``Softmax(Flatten(logits), axis=1)``, float32 (N, C);
- ``confidence`` = ``ReduceMax(probs, axis=1)``, float32 (N,);
- ``label`` = ``ArgMax(probs, axis=1)`` (the first of equal maxima, like numpy), int64 (N,).

The logits stay an output (a user who asks for them still gets them). The names are
:data:`HEAD_OUTPUTS`; :class:`toolkit.strategies.single.Single` uses them when an engine has them.
Needs the ``onnx`` package (host side, or a device that has it): :func:`head_available` says.
"""
from basics.errors import InputError
from basics.lazy import is_available, lazy_import

PROBS, CONFIDENCE, LABEL = HEAD_OUTPUTS = ("probs", "confidence", "label")


def head_available():
    """True when the ``onnx`` package is importable (needed to edit the graph)."""
    return is_available("onnx")


def has_confidence_head(engine):
    """True when ``engine``'s outputs include the three head outputs."""
    names = set(spec.name for spec in engine.outputs)
    return all(name in names for name in HEAD_OUTPUTS)


def add_confidence_head(model, output=None):
    """The serialized ONNX model ``model`` (bytes, or a path) with the head appended after the
    output ``output`` (default: the first). A model that already has the head is returned as is;
    InputError when an output name is taken by something else."""
    onnx = lazy_import("onnx", "adding the confidence head to an ONNX graph")
    helper = onnx.helper
    if isinstance(model, (bytes, bytearray)):
        proto = onnx.load_from_string(bytes(model))
    else:
        proto = onnx.load(str(model))
    graph = proto.graph
    names = [value.name for value in graph.output]
    if all(name in names for name in HEAD_OUTPUTS):
        return proto.SerializeToString()
    logits = names[0] if output is None else output
    if logits not in names:
        raise InputError("the model has no output '{}'; it has {}".format(logits, names))
    taken = [name for name in HEAD_OUTPUTS if name in names or _is_tensor_name(graph, name)]
    if taken:
        raise InputError("the model already has tensors named {}: cannot add the confidence head"
                         .format(", ".join(taken)))
    opset = max([entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")]
                or [13])
    flat = "confidence_head/flat"
    nodes = [
        helper.make_node("Flatten", [logits], [flat], axis=1, name="confidence_head/flatten"),
        helper.make_node("Softmax", [flat], [PROBS], axis=1, name="confidence_head/softmax"),
        helper.make_node("ArgMax", [PROBS], [LABEL], axis=1, keepdims=0,
                         name="confidence_head/argmax"),
    ]
    if opset >= 18:  # ReduceMax's axes became an input in opset 18
        axes = "confidence_head/axes"
        graph.initializer.append(helper.make_tensor(axes, onnx.TensorProto.INT64, [1], [1]))
        nodes.append(helper.make_node("ReduceMax", [PROBS, axes], [CONFIDENCE], keepdims=0,
                                      name="confidence_head/reducemax"))
    else:
        nodes.append(helper.make_node("ReduceMax", [PROBS], [CONFIDENCE], axes=[1], keepdims=0,
                                      name="confidence_head/reducemax"))
    graph.node.extend(nodes)
    batch = _batch_dim(graph, logits)
    float32, int64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64
    graph.output.extend([
        helper.make_tensor_value_info(PROBS, float32, [batch, None]),
        helper.make_tensor_value_info(CONFIDENCE, float32, [batch]),
        helper.make_tensor_value_info(LABEL, int64, [batch]),
    ])
    return proto.SerializeToString()


def _is_tensor_name(graph, name):
    if any(name in node.output for node in graph.node):
        return True
    return any(value.name == name for value in graph.input) or any(
        tensor.name == name for tensor in graph.initializer)


def _batch_dim(graph, output):
    """The batch dimension of ``output`` as declared (a name or a size), else a fresh name."""
    for value in graph.output:
        if value.name == output:
            dims = value.type.tensor_type.shape.dim
            if dims:
                if dims[0].HasField("dim_value"):
                    return dims[0].dim_value
                if dims[0].dim_param:
                    return dims[0].dim_param
    return "batch"
