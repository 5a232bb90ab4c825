"""The confidence head: softmax and top-1 appended to a classifier's ONNX graph.

A strategy needs, per sample, the probabilities, the largest of them and its class. Computed on
the host they cost about a dozen small numpy calls per batch (most of a cascade's own time at
batch 1); computed in the graph they cost the engine a few small kernels (on TensorRT, on the GPU)
and the host reads them as they come. :func:`add_confidence_head` appends to the graph, after
the logits output (default: the first output):

- ``probs`` = ``Softmax(logits, axis=1)``, float32 (N, C) (logits of a higher rank are flattened
  first);
- ``confidence`` = ``ReduceMax(probs, axis=1)``, float32 (N,);
- ``label`` = ``ArgMax(probs, axis=1)`` (the first of equal maxima, like numpy), int64 (N,).

The logits stay an output (a user who asks for them still gets them). The names are
:data:`HEAD_OUTPUTS`; :class:`toolkit.strategies.single.Single` uses them when an engine has them.
Needs the ``onnx`` package (host side, or a device that has it): :func:`head_available` says.

Where the head is added: ONNX Runtime engines get it when a deployment loads them
(:class:`engines.onnxruntime_backend.OnnxRuntimeEngine`); TensorRT engines get it when they are
built (:func:`head_for_build`, used by :mod:`engines.tensorrt_build`), so that TensorRT computes it
on the GPU. TensorRT 8.x has no INT64: its ONNX parser makes ``label`` INT32, which the TensorRT
backend widens to int64 when it reads it; 10.x casts it to INT64 itself.
"""
from basics.errors import InputError
from basics.lazy import is_available, lazy_import

PROBS, CONFIDENCE, LABEL = HEAD_OUTPUTS = ("probs", "confidence", "label")
#: the head's node names start with this (TensorRT names the layers after them)
NODE_PREFIX = "confidence_head/"


def head_available():
    """True when the ``onnx`` package is importable (needed to edit the graph)."""
    return is_available("onnx")


def has_confidence_head(engine):
    """True when ``engine``'s outputs include the three head outputs."""
    return names_have_head(spec.name for spec in engine.outputs)


def names_have_head(names):
    """True when the output names ``names`` include the three head outputs."""
    names = set(names)
    return all(name in names for name in HEAD_OUTPUTS)


def scores_output(engine):
    """The spec of ``engine``'s scores (logits): its first output that is not one of the head's
    (with the head, whatever order a backend lists its outputs in), else its first output."""
    if has_confidence_head(engine):
        for spec in engine.outputs:
            if spec.name not in HEAD_OUTPUTS:
                return spec
    return engine.outputs[0]


def head_for_build(onnx_path):
    """``(model bytes or None, note or None)`` for building ``onnx_path`` into an engine with the
    head.

    Bytes: the model with the head appended, when it is a classifier (one output of shape
    (N, C), C >= 2) and the ``onnx`` package is here to edit it. None: build the file as it is
    (the head is already there, or it cannot be added: then ``note`` says why)."""
    if not head_available():
        return None, ("confidence head: not added, the onnx package is not installed here "
                      "(pip install onnx); the host computes softmax and top-1")
    onnx = lazy_import("onnx", "adding the confidence head to an ONNX graph")
    try:
        proto = onnx.load(str(onnx_path))
    except Exception:  # noqa: BLE001 - not ONNX: the backend's parser says so in its words
        return None, None
    if names_have_head(value.name for value in proto.graph.output):
        return None, None
    reason = _not_a_classifier(proto.graph)
    if reason:
        return None, "confidence head: not added, {}".format(reason)
    return add_confidence_head(proto), None


def _not_a_classifier(graph):
    """Why ``graph`` is not a classifier's (one output of shape (N, C), C >= 2), or None."""
    if len(graph.output) != 1:
        return "the model has {} outputs (a classifier has one)".format(len(graph.output))
    value = graph.output[0]
    dims = value.type.tensor_type.shape.dim
    if len(dims) != 2:
        return "output '{}' has rank {} (a classifier's is (N, classes))".format(
            value.name, len(dims))
    if dims[1].HasField("dim_value") and dims[1].dim_value < 2:
        return "output '{}' has {} class(es)".format(value.name, dims[1].dim_value)
    if value.type.tensor_type.elem_type != 1:  # FLOAT
        return "output '{}' is not float32".format(value.name)
    return None


def add_confidence_head(model, output=None):
    """The serialized ONNX model ``model`` (bytes, a path or an ``onnx.ModelProto``, which is
    edited in place) with the head appended after the output ``output`` (default: the first). A
    model that already has the head is returned as is; InputError when an output name is taken by
    something else."""
    onnx = lazy_import("onnx", "adding the confidence head to an ONNX graph")
    helper = onnx.helper
    if isinstance(model, (bytes, bytearray)):
        proto = onnx.load_from_string(bytes(model))
    elif isinstance(model, onnx.ModelProto):
        proto = model
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
    nodes = []
    scores = logits
    if _rank(graph, logits) != 2:  # (N, C) needs no Flatten: one layer fewer in an engine
        scores = NODE_PREFIX + "flat"
        nodes.append(helper.make_node("Flatten", [logits], [scores], axis=1,
                                      name=NODE_PREFIX + "flatten"))
    nodes += [
        helper.make_node("Softmax", [scores], [PROBS], axis=1, name=NODE_PREFIX + "softmax"),
        helper.make_node("ArgMax", [PROBS], [LABEL], axis=1, keepdims=0,
                         name=NODE_PREFIX + "argmax"),
    ]
    if opset >= 18:  # ReduceMax's axes became an input in opset 18
        axes = NODE_PREFIX + "axes"
        graph.initializer.append(helper.make_tensor(axes, onnx.TensorProto.INT64, [1], [1]))
        nodes.append(helper.make_node("ReduceMax", [PROBS, axes], [CONFIDENCE], keepdims=0,
                                      name=NODE_PREFIX + "reducemax"))
    else:
        nodes.append(helper.make_node("ReduceMax", [PROBS], [CONFIDENCE], axes=[1], keepdims=0,
                                      name=NODE_PREFIX + "reducemax"))
    graph.node.extend(nodes)
    batch = _batch_dim(graph, logits)
    classes = _classes_dim(graph, logits)
    float32, int64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64
    graph.output.extend([
        helper.make_tensor_value_info(PROBS, float32, [batch, classes]),
        helper.make_tensor_value_info(CONFIDENCE, float32, [batch]),
        helper.make_tensor_value_info(LABEL, int64, [batch]),
    ])
    return proto.SerializeToString()


def _is_tensor_name(graph, name):
    if any(name in node.output for node in graph.node):
        return True
    return any(value.name == name for value in graph.input) or any(
        tensor.name == name for tensor in graph.initializer)


def _rank(graph, output):
    """The declared rank of graph output ``output`` (None when its shape is not declared)."""
    for value in graph.output:
        if value.name == output and value.type.tensor_type.HasField("shape"):
            return len(value.type.tensor_type.shape.dim)
    return None


def _classes_dim(graph, output):
    """The class count of (N, C) graph output ``output`` when declared as a number, else None."""
    for value in graph.output:
        if value.name == output:
            dims = value.type.tensor_type.shape.dim
            if len(dims) == 2 and dims[1].HasField("dim_value") and dims[1].dim_value > 0:
                return dims[1].dim_value
    return None


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
