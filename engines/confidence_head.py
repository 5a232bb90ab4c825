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
The graph is edited at the protobuf level (:mod:`engines.onnx_wire`), so no ``onnx`` package is
needed: a stock Jetson has none.

Where the head is added: ONNX Runtime engines get it when a deployment loads them
(:class:`engines.onnxruntime_backend.OnnxRuntimeEngine`); TensorRT engines get it when they are
built (:func:`head_for_build`, used by :mod:`engines.tensorrt_build`), so that TensorRT computes it
on the GPU. TensorRT 8.x has no INT64: its ONNX parser makes ``label`` INT32, which the TensorRT
backend widens to int64 when it reads it; 10.x casts it to INT64 itself.
"""
from basics.errors import InputError
from engines import onnx_wire

PROBS, CONFIDENCE, LABEL = HEAD_OUTPUTS = ("probs", "confidence", "label")
#: the head's node names start with this (TensorRT names the layers after them)
NODE_PREFIX = "confidence_head/"


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
    (N, C), C >= 2). None: build the file as it is (the head is already there, or the model is not
    a classifier: then ``note`` says why)."""
    with open(str(onnx_path), "rb") as handle:
        data = handle.read()
    try:
        facts = onnx_wire.read_model(data)
    except InputError:
        return None, None  # not ONNX: the backend's parser says so in its words
    if names_have_head(output.name for output in facts.outputs):
        return None, None
    reason = _not_a_classifier(facts.outputs) or _names_taken(facts)
    if reason:
        return None, "confidence head: not added, {}".format(reason)
    return _append_head(data, facts, facts.outputs[0]), None


def head_for_load(source):
    """What ONNX Runtime loads for ``source`` (serialized bytes, or a path) with the head: the
    model bytes with the head appended, or ``source`` itself when the model keeps weights in
    files beside it (ONNX Runtime finds them only through the model's path; the host then
    computes softmax and top-1, with the same answers)."""
    if isinstance(source, (bytes, bytearray)):
        return add_confidence_head(source)
    with open(str(source), "rb") as handle:
        data = handle.read()
    if onnx_wire.read_model(data).external_data:
        return source
    return add_confidence_head(data)


def _not_a_classifier(outputs):
    """Why graph outputs ``outputs`` are not a classifier's (one float32 output of shape (N, C),
    C >= 2), or None."""
    if len(outputs) != 1:
        return "the model has {} outputs (a classifier has one)".format(len(outputs))
    output = outputs[0]
    if output.dims is None or len(output.dims) != 2:
        return "output '{}' has {} (a classifier's is (N, classes))".format(
            output.name, "no declared shape" if output.dims is None else
            "rank {}".format(len(output.dims)))
    if isinstance(output.dims[1], int) and output.dims[1] < 2:
        return "output '{}' has {} class(es)".format(output.name, output.dims[1])
    if output.elem_type != onnx_wire.FLOAT:
        return "output '{}' is not float32".format(output.name)
    return None


def add_confidence_head(model, output=None):
    """The serialized ONNX model ``model`` (bytes, or a path) with the head appended after the
    output ``output`` (default: the first). A model that already has the head is returned as is;
    InputError when an output name is taken by something else, or ``model`` is not ONNX."""
    if isinstance(model, (bytes, bytearray)):
        data = bytes(model)
    else:
        with open(str(model), "rb") as handle:
            data = handle.read()
    facts = onnx_wire.read_model(data)
    names = [value.name for value in facts.outputs]
    if names_have_head(names):
        return data
    logits = names[0] if output is None and names else output
    if logits not in names:
        raise InputError("the model has no output '{}'; it has {}".format(logits, names))
    taken = _names_taken(facts)
    if taken:
        raise InputError("{}: cannot add the confidence head".format(taken))
    return _append_head(data, facts, facts.outputs[names.index(logits)])


def _names_taken(facts):
    """Why the head's output names cannot be used in the model of ``facts``, or None."""
    taken = [name for name in HEAD_OUTPUTS if name in facts.names]
    if not taken:
        return None
    return "the model already has tensors named {}".format(", ".join(taken))


def _append_head(data, facts, logits):
    """``data`` with the head's nodes and outputs appended after graph output ``logits``."""
    node = onnx_wire.node
    nodes, initializers = [], []
    scores = logits.name
    dims = logits.dims or []
    if len(dims) != 2:  # (N, C) needs no Flatten: one layer fewer in an engine
        scores = NODE_PREFIX + "flat"
        nodes.append(node("Flatten", [logits.name], [scores], NODE_PREFIX + "flatten", axis=1))
    nodes += [
        node("Softmax", [scores], [PROBS], NODE_PREFIX + "softmax", axis=1),
        node("ArgMax", [PROBS], [LABEL], NODE_PREFIX + "argmax", axis=1, keepdims=0),
    ]
    if (facts.opset or 13) >= 18:  # ReduceMax's axes became an input in opset 18
        axes = NODE_PREFIX + "axes"
        initializers.append(onnx_wire.int64_tensor(axes, [1]))
        nodes.append(node("ReduceMax", [PROBS, axes], [CONFIDENCE], NODE_PREFIX + "reducemax",
                          keepdims=0))
    else:
        nodes.append(node("ReduceMax", [PROBS], [CONFIDENCE], NODE_PREFIX + "reducemax",
                          axes=[1], keepdims=0))
    batch = dims[0] if dims and dims[0] is not None else "batch"
    classes = dims[1] if len(dims) == 2 and isinstance(dims[1], int) and dims[1] > 0 else None
    value_info = onnx_wire.value_info
    outputs = [value_info(PROBS, onnx_wire.FLOAT, [batch, classes]),
               value_info(CONFIDENCE, onnx_wire.FLOAT, [batch]),
               value_info(LABEL, onnx_wire.INT64, [batch])]
    return onnx_wire.append_to_graph(data, nodes, initializers, outputs)
