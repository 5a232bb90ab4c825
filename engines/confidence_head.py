"""The confidence head: softmax and top-1 appended to a classifier's ONNX graph.

A strategy needs, per sample, the probabilities, the largest of them and its class. Computed on
the host they cost about a dozen small numpy calls per batch (most of a cascade's own time at
batch 1); computed in the graph they cost the engine a few small kernels (on TensorRT, on the GPU)
and the host reads them as they come. :func:`add_confidence_head` appends to the graph, after
the logits output (default: the first output):

- ``probs`` = ``Softmax(logits, axis=1)``, float32 (N, C) (logits of another rank are flattened
  first);
- ``confidence`` = ``ReduceMax(probs, axis=1)``, float32 (N,);
- ``label`` = ``ArgMax(probs, axis=1)`` (the first of equal maxima, like numpy), int64 (N,).

The logits stay an output (a user who asks for them still gets them). The names are
:data:`HEAD_OUTPUTS`; :class:`toolkit.strategies.single.Single` uses them when an engine has them.
Editing the graph needs the ``onnx`` package (:func:`head_available`; on a Jetson it comes with
the ``jetson`` extra, see docs/jetson.md). Without it nothing fails: engines are built and loaded
without the head, a build note says so, and the host computes softmax and top-1.

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

    Bytes: the model with the head appended, when it is a classifier (one float32 output of shape
    (N, C), C >= 2) and the ``onnx`` package is here to edit it. None: build the file as it is
    (the head is already there, or it cannot be added: then ``note`` says why)."""
    if not head_available():
        return None, ("confidence head: not added, the onnx package is not installed here "
                      "(pip install onnx); the host computes softmax and top-1")
    proto = _load(onnx_path)
    if proto is None:
        return None, None  # not ONNX: the backend's parser says so in its words
    if names_have_head(value.name for value in proto.graph.output):
        return None, None
    reason = _not_a_classifier(proto.graph) or _names_taken(proto.graph)
    if reason:
        return None, "confidence head: not added, {}".format(reason)
    return _append_head(proto, proto.graph.output[0].name), None


def head_for_load(source):
    """What ONNX Runtime loads for ``source`` (serialized bytes, or a path) with the head: the
    model bytes with the head appended, or ``source`` itself when the ``onnx`` package is missing
    or the model keeps weights in files beside it (ONNX Runtime finds them only through the
    model's path). Without the head the host computes softmax and top-1, with the same answers."""
    if not head_available():
        return source
    if isinstance(source, (bytes, bytearray)):
        return add_confidence_head(source)
    proto = _load(source)
    if proto is None:
        return source  # ONNX Runtime says what is wrong with it, in its words
    if _uses_external_data(proto):
        return source
    return add_confidence_head(proto)


def add_confidence_head(model, output=None):
    """The serialized ONNX model ``model`` (bytes, a path or an ``onnx.ModelProto``, edited in
    place) with the head appended after the output ``output`` (default: the first). A model that
    already has the head is returned as is; InputError when an output name is taken by something
    else, or ``model`` is not ONNX."""
    onnx = lazy_import("onnx", "adding the confidence head to an ONNX graph")
    if isinstance(model, onnx.ModelProto):
        proto = model
    else:
        proto = _load(model)
        if proto is None:
            raise InputError("not an ONNX model: cannot add the confidence head")
    graph = proto.graph
    names = [value.name for value in graph.output]
    if names_have_head(names):
        return proto.SerializeToString()
    logits = names[0] if output is None and names else output
    if logits not in names:
        raise InputError("the model has no output '{}'; it has {}".format(logits, names))
    taken = _names_taken(graph)
    if taken:
        raise InputError("{}: cannot add the confidence head".format(taken))
    return _append_head(proto, logits)


def _load(model):
    """``model`` (bytes or a path) as an ``onnx.ModelProto`` without external weights, or None
    when it is not ONNX."""
    onnx = lazy_import("onnx", "adding the confidence head to an ONNX graph")
    try:
        if isinstance(model, (bytes, bytearray)):
            return onnx.load_from_string(bytes(model))
        return onnx.load(str(model), load_external_data=False)
    except Exception:  # noqa: BLE001 - protobuf's DecodeError and friends
        return None


def _uses_external_data(proto):
    return any(tensor.data_location == 1 for tensor in proto.graph.initializer)  # EXTERNAL


def _not_a_classifier(graph):
    """Why ``graph`` is not a classifier's (one float32 output of shape (N, C), C >= 2), or
    None."""
    if len(graph.output) != 1:
        return "the model has {} outputs (a classifier has one)".format(len(graph.output))
    value = graph.output[0]
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape") or len(tensor_type.shape.dim) != 2:
        return "output '{}' has {} (a classifier's is (N, classes))".format(
            value.name, "no declared shape" if not tensor_type.HasField("shape") else
            "rank {}".format(len(tensor_type.shape.dim)))
    classes = tensor_type.shape.dim[1]
    if classes.HasField("dim_value") and classes.dim_value < 2:
        return "output '{}' has {} class(es)".format(value.name, classes.dim_value)
    if tensor_type.elem_type != 1:  # FLOAT
        return "output '{}' is not float32".format(value.name)
    return None


def _names_taken(graph):
    """Why the head's output names cannot be used in ``graph``, or None."""
    names = set(value.name for value in graph.input) | set(value.name for value in graph.output)
    names.update(tensor.name for tensor in graph.initializer)
    for node in graph.node:
        names.update(node.output)
        names.update(node.input)
    taken = [name for name in HEAD_OUTPUTS if name in names]
    if not taken:
        return None
    return "the model already has tensors named {}".format(", ".join(taken))


def _append_head(proto, logits):
    """The serialized ``proto`` with the head's nodes and outputs appended after graph output
    ``logits``."""
    onnx = lazy_import("onnx", "adding the confidence head to an ONNX graph")
    helper = onnx.helper
    graph = proto.graph
    value = [v for v in graph.output if v.name == logits][0]
    tensor_type = value.type.tensor_type
    dims = list(tensor_type.shape.dim) if tensor_type.HasField("shape") else []
    scores = logits
    if len(dims) != 2:  # (N, C) needs no Flatten: one layer fewer in an engine
        scores = NODE_PREFIX + "flat"
        graph.node.append(helper.make_node("Flatten", [logits], [scores],
                                           name=NODE_PREFIX + "flatten", axis=1))
    graph.node.extend([
        helper.make_node("Softmax", [scores], [PROBS], name=NODE_PREFIX + "softmax", axis=1),
        helper.make_node("ArgMax", [PROBS], [LABEL], name=NODE_PREFIX + "argmax", axis=1,
                         keepdims=0),
    ])
    opset = max([entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")]
                or [13])
    if opset >= 18:  # ReduceMax's axes became an input in opset 18
        axes = NODE_PREFIX + "axes"
        graph.initializer.append(helper.make_tensor(axes, onnx.TensorProto.INT64, [1], [1]))
        graph.node.append(helper.make_node("ReduceMax", [PROBS, axes], [CONFIDENCE],
                                           name=NODE_PREFIX + "reducemax", keepdims=0))
    else:
        graph.node.append(helper.make_node("ReduceMax", [PROBS], [CONFIDENCE],
                                           name=NODE_PREFIX + "reducemax", axes=[1], keepdims=0))
    batch = (_dim(dims[0]) if dims else None) or "batch"
    classes = _dim(dims[1]) if len(dims) == 2 and dims[1].HasField("dim_value") else None
    graph.output.extend([
        helper.make_tensor_value_info(PROBS, onnx.TensorProto.FLOAT, [batch, classes]),
        helper.make_tensor_value_info(CONFIDENCE, onnx.TensorProto.FLOAT, [batch]),
        helper.make_tensor_value_info(LABEL, onnx.TensorProto.INT64, [batch]),
    ])
    return proto.SerializeToString()


def _dim(dim):
    """An ``onnx`` dimension as ``make_tensor_value_info`` takes it: int, name or None."""
    if dim.HasField("dim_value") and dim.dim_value > 0:
        return dim.dim_value
    if dim.HasField("dim_param") and dim.dim_param:
        return dim.dim_param
    return None
