"""Just enough of ONNX's protobuf wire format to read a model's graph outputs and append nodes to
its graph, without the ``onnx`` package (a stock Jetson has none; see docs/jetson.md).

Protobuf merges a message field that occurs twice and concatenates repeated fields, so a
serialized ``ModelProto`` followed by one more ``graph`` field holding nodes, initializers and
outputs parses as the same model with those appended to its graph, in every protobuf reader (the
onnx package, ONNX Runtime, TensorRT's ONNX parser). :func:`append_to_graph` does that;
:func:`read_model` reads what an editor needs first (outputs, opset, names in use). Field numbers
are onnx.proto's; only what the confidence head needs is written (``engines.confidence_head``).
"""
import struct

from basics.errors import InputError

# onnx.proto field numbers
_MODEL_GRAPH, _MODEL_OPSET = 7, 8
_OPSET_DOMAIN, _OPSET_VERSION = 1, 2
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT = 1, 5, 11, 12
_NODE_INPUT, _NODE_OUTPUT, _NODE_NAME, _NODE_OP_TYPE, _NODE_ATTRIBUTE = 1, 2, 3, 4, 5
_ATTR_NAME, _ATTR_I, _ATTR_INTS, _ATTR_TYPE = 1, 3, 8, 20
_ATTR_INT, _ATTR_INTS_TYPE = 2, 7  # AttributeProto.AttributeType
_VALUE_NAME, _VALUE_TYPE = 1, 2
_TYPE_TENSOR = 1
_TENSOR_TYPE_ELEM, _TENSOR_TYPE_SHAPE = 1, 2
_SHAPE_DIM = 1
_DIM_VALUE, _DIM_PARAM = 1, 2
_TENSOR_DIMS, _TENSOR_DATA_TYPE, _TENSOR_INT64_DATA, _TENSOR_NAME = 1, 2, 7, 8
_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION, _EXTERNAL = 13, 14, 1

FLOAT, INT64 = 1, 7  # TensorProto.DataType

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


class GraphOutput(object):
    """One graph output: ``name``, ``elem_type`` (a TensorProto.DataType number, None when not
    declared) and ``dims`` (None: no shape declared; else a list of ints, strings (a named
    dimension) or None (unknown))."""

    __slots__ = ("name", "elem_type", "dims")

    def __init__(self, name, elem_type=None, dims=None):
        self.name = name
        self.elem_type = elem_type
        self.dims = dims


class ModelFacts(object):
    """What :func:`read_model` found: ``outputs`` (GraphOutput list, in order), ``opset`` (the
    default domain's version, None when absent), ``names`` (every tensor name of the top-level
    graph: inputs, initializers, node outputs, outputs) and ``external_data`` (whether an
    initializer keeps its values in a file beside the model)."""

    __slots__ = ("outputs", "opset", "names", "external_data")

    def __init__(self, outputs, opset, names, external_data=False):
        self.outputs = outputs
        self.opset = opset
        self.names = names
        self.external_data = external_data


def read_model(data):
    """The :class:`ModelFacts` of serialized ONNX model ``data`` (bytes); InputError when the bytes
    are not a protobuf message."""
    view = memoryview(data)
    outputs, names, opset, external = [], set(), None, []
    for number, value in _fields(view):
        if number == _MODEL_GRAPH:
            _read_graph(value, outputs, names, external)
        elif number == _MODEL_OPSET:
            domain, version = "", None
            for field, item in _fields(value):
                if field == _OPSET_DOMAIN:
                    domain = _text(item)
                elif field == _OPSET_VERSION:
                    version = item
            if domain in ("", "ai.onnx") and version is not None:
                opset = version if opset is None else max(opset, version)
    return ModelFacts(outputs, opset, names, bool(external))


def append_to_graph(data, nodes=(), initializers=(), outputs=()):
    """``data`` (a serialized model) with the serialized ``nodes``, ``initializers`` and graph
    ``outputs`` (from :func:`node`, :func:`int64_tensor`, :func:`value_info`) appended to its
    graph, after what it holds."""
    graph = b"".join([_bytes_field(_GRAPH_NODE, item) for item in nodes]
                     + [_bytes_field(_GRAPH_INITIALIZER, item) for item in initializers]
                     + [_bytes_field(_GRAPH_OUTPUT, item) for item in outputs])
    return bytes(data) + _bytes_field(_MODEL_GRAPH, graph)


def node(op_type, inputs, outputs, name, **attributes):
    """A serialized NodeProto; ``attributes``: ints or lists of ints."""
    parts = [_bytes_field(_NODE_INPUT, _utf8(item)) for item in inputs]
    parts += [_bytes_field(_NODE_OUTPUT, _utf8(item)) for item in outputs]
    parts += [_bytes_field(_NODE_NAME, _utf8(name)), _bytes_field(_NODE_OP_TYPE, _utf8(op_type))]
    for key in sorted(attributes):
        value = attributes[key]
        attr = [_bytes_field(_ATTR_NAME, _utf8(key))]
        if isinstance(value, (list, tuple)):
            attr += [_varint_field(_ATTR_INTS, int(item)) for item in value]
            attr.append(_varint_field(_ATTR_TYPE, _ATTR_INTS_TYPE))
        else:
            attr += [_varint_field(_ATTR_I, int(value)), _varint_field(_ATTR_TYPE, _ATTR_INT)]
        parts.append(_bytes_field(_NODE_ATTRIBUTE, b"".join(attr)))
    return b"".join(parts)


def value_info(name, elem_type, dims):
    """A serialized ValueInfoProto of a tensor; ``dims``: ints, strings (named) or None."""
    shape = []
    for dim in dims:
        if dim is None:
            shape.append(_bytes_field(_SHAPE_DIM, b""))
        elif isinstance(dim, str):
            shape.append(_bytes_field(_SHAPE_DIM, _bytes_field(_DIM_PARAM, _utf8(dim))))
        else:
            shape.append(_bytes_field(_SHAPE_DIM, _varint_field(_DIM_VALUE, int(dim))))
    tensor = _varint_field(_TENSOR_TYPE_ELEM, elem_type) + _bytes_field(
        _TENSOR_TYPE_SHAPE, b"".join(shape))
    return _bytes_field(_VALUE_NAME, _utf8(name)) + _bytes_field(
        _VALUE_TYPE, _bytes_field(_TYPE_TENSOR, tensor))


def int64_tensor(name, values):
    """A serialized 1-D INT64 TensorProto (an initializer)."""
    packed = b"".join(_varint(int(v)) for v in values)
    return (_varint_field(_TENSOR_DIMS, len(values)) + _varint_field(_TENSOR_DATA_TYPE, INT64)
            + _bytes_field(_TENSOR_INT64_DATA, packed) + _bytes_field(_TENSOR_NAME, _utf8(name)))


# -- reading -------------------------------------------------------------------------------------
def _read_graph(graph, outputs, names, external):
    for number, value in _fields(graph):
        if number == _GRAPH_NODE:
            names.update(_text(item) for field, item in _fields(value) if field == _NODE_OUTPUT)
        elif number in (_GRAPH_INPUT, _GRAPH_OUTPUT):
            info = _read_value_info(value)
            names.add(info.name)
            if number == _GRAPH_OUTPUT:
                outputs.append(info)
        elif number == _GRAPH_INITIALIZER:
            for field, item in _fields(value):
                if field == _TENSOR_NAME:
                    names.add(_text(item))
                elif field == _TENSOR_EXTERNAL_DATA or (
                        field == _TENSOR_DATA_LOCATION and item == _EXTERNAL):
                    external.append(True)


def _read_value_info(value):
    info = GraphOutput("")
    for number, item in _fields(value):
        if number == _VALUE_NAME:
            info.name = _text(item)
        elif number == _VALUE_TYPE:
            for field, tensor in _fields(item):
                if field == _TYPE_TENSOR:
                    _read_tensor_type(tensor, info)
    return info


def _read_tensor_type(tensor, info):
    for number, item in _fields(tensor):
        if number == _TENSOR_TYPE_ELEM:
            info.elem_type = item
        elif number == _TENSOR_TYPE_SHAPE:
            info.dims = info.dims or []
            for field, dim in _fields(item):
                if field == _SHAPE_DIM:
                    info.dims.append(_read_dim(dim))


def _read_dim(dim):
    found = None
    for number, item in _fields(dim):
        if number == _DIM_VALUE:
            found = _signed(item)
        elif number == _DIM_PARAM:
            found = _text(item)
    return found


def _fields(view):
    """``(field number, value)`` of each field of the message in ``view`` (a memoryview): ints for
    varints and fixed-size fields, memoryviews for length-delimited ones."""
    position, end = 0, len(view)
    while position < end:
        key, position = _read_varint(view, position)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, position = _read_varint(view, position)
        elif wire == _BYTES:
            size, position = _read_varint(view, position)
            if position + size > end:
                raise InputError("not an ONNX model: a field runs past the end of the data")
            value, position = view[position:position + size], position + size
        elif wire == _FIXED64:
            value, position = struct.unpack("<Q", view[position:position + 8])[0], position + 8
        elif wire == _FIXED32:
            value, position = struct.unpack("<I", view[position:position + 4])[0], position + 4
        else:
            raise InputError("not an ONNX model: protobuf wire type {}".format(wire))
        if position > end:
            raise InputError("not an ONNX model: the data ends inside a field")
        yield number, value


def _read_varint(view, position):
    result, shift = 0, 0
    while True:
        if position >= len(view) or shift > 63:
            raise InputError("not an ONNX model: a malformed varint")
        byte = view[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _signed(value):
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(view):
    return bytes(view).decode("utf-8", "replace")


# -- writing -------------------------------------------------------------------------------------
def _varint(value):
    if value < 0:
        value += 1 << 64  # int64: two's complement, ten bytes
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _varint_field(number, value):
    return _varint(number << 3 | _VARINT) + _varint(value)


def _bytes_field(number, payload):
    return _varint(number << 3 | _BYTES) + _varint(len(payload)) + bytes(payload)


def _utf8(text):
    return str(text).encode("utf-8")
