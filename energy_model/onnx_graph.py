"""Walk an ONNX graph: shapes from ``onnx.shape_inference``, weights from the initializers, one
:func:`energy_model.formulas.layer_energy` row per costed node; cached per file sha256."""
import collections
import os

import numpy as np

from basics.errors import InputError
from basics.fileio import sha256_bytes, sha256_file
from basics.lazy import lazy_import
from energy_model.formulas import EnergyModelConfig, LayerShape, layer_energy
from energy_model.report import ModelEnergy

ELEMENTWISE_OPS = frozenset((
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Relu", "LeakyRelu", "PRelu",
    "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Clip", "Elu", "Selu", "Celu", "Softplus",
    "Softsign", "Exp", "Log", "Sqrt", "Reciprocal", "Neg", "Abs", "Erf", "Gelu", "Mish",
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "Softmax", "LogSoftmax",
    "Where", "Equal", "Greater", "Less", "Not", "And", "Or", "Round", "Floor", "Ceil", "Sign"))
POOL_OPS = frozenset(("MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool",
                      "GlobalLpPool"))
REDUCE_OPS = frozenset(("ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceL2",
                        "ReduceProd"))
# layout and bookkeeping: assumed folded into addressing, they cost nothing
FREE_OPS = frozenset((
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Dropout", "Shape",
    "Size", "Gather", "Constant", "ConstantOfShape", "Cast", "Concat", "Split", "Slice", "Pad",
    "Expand", "Tile", "Range", "QuantizeLinear", "DequantizeLinear", "DepthToSpace",
    "SpaceToDepth"))

_CACHE_ENTRIES = 64
_cache = collections.OrderedDict()  # (sha256, config key) -> ModelEnergy
_sha_memo = {}  # (path, mtime_ns, size) -> sha256


def estimate_onnx(model, config=None, activations=None):
    """Per-layer energy of an ONNX model: a path, serialized bytes or an ``onnx.ModelProto``.

    ``config``: :class:`EnergyModelConfig` (default: 16-bit, batch 1, the paper's costs; the batch
    applies to a dynamic batch axis: a model with a fixed batch is computed at that batch, see
    :attr:`ModelEnergy.batch`). ``activations``: measured zero fractions of the layers' inputs
    (:class:`energy_model.activations.ActivationSparsity`), or None (every activation
    counted non-zero). Results are cached per (model sha256, config, activations): asking again
    for the same file is a dictionary lookup. Returns a :class:`ModelEnergy` (treat it as
    read-only: it may be shared through the cache).
    """
    config = EnergyModelConfig() if config is None else config
    if not isinstance(config, EnergyModelConfig):
        raise InputError("config must be an EnergyModelConfig, got {}".format(type(config).__name__))
    source, sha, loader = _source(model)
    key = (sha, config.key(), None if activations is None else activations.key())
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    result = _estimate(loader(), config, source, sha, activations)
    _cache[key] = result
    while len(_cache) > _CACHE_ENTRIES:
        _cache.popitem(last=False)
    return result


def clear_cache():
    """Forget every cached estimate."""
    _cache.clear()
    _sha_memo.clear()


def _source(model):
    """(label, sha256, loader returning a ModelProto) of ``model``."""
    onnx = lazy_import("onnx", "reading ONNX models for the energy model")
    if isinstance(model, (bytes, bytearray)):
        data = bytes(model)
        return "<bytes>", sha256_bytes(data), lambda: _parse(onnx, data, "the model bytes")
    if isinstance(model, onnx.ModelProto):
        data = model.SerializeToString()
        return "<ModelProto>", sha256_bytes(data), lambda: model
    if not isinstance(model, (str, os.PathLike)):
        raise InputError("the energy model takes an ONNX path, bytes or ModelProto, got {}".format(
            type(model).__name__))
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise InputError("no such ONNX file: {}".format(path))
    stat = os.stat(path)
    memo_key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
    if memo_key not in _sha_memo:
        _sha_memo[memo_key] = sha256_file(path)

    def load():
        try:
            return onnx.load(path)
        except Exception as exc:  # noqa: BLE001 - protobuf DecodeError and friends
            raise InputError("{} is not a readable ONNX model: {}".format(
                path, _first_line(exc))) from None
    return path, _sha_memo[memo_key], load


def _parse(onnx, data, what):
    try:
        return onnx.load_from_string(data)
    except Exception as exc:  # noqa: BLE001
        raise InputError("{} are not a readable ONNX model: {}".format(what, _first_line(exc))) from None


def _estimate(proto, config, source, sha, activations=None):
    onnx = lazy_import("onnx", "reading ONNX models for the energy model")
    fixed_batch = model_batch(proto)
    graph = _Graph(onnx, _fix_batch(onnx, proto, config.batch, source))
    graph.activations = activations
    rows, free_ops = [], collections.Counter()
    for node in graph.nodes:
        name = node.name or (node.output[0] if node.output else node.op_type)
        row = _node_row(graph, node, name, config)
        if row is None:
            free_ops[node.op_type] += 1
        else:
            rows.append(row)
    if not rows:
        raise InputError("{}: no layer the energy model can cost (ops: {})".format(
            source, ", ".join(sorted(free_ops)) or "none"))
    return ModelEnergy(rows, config, source=source, sha256=sha, free_ops=dict(free_ops),
                       batch=config.batch if fixed_batch is None else fixed_batch,
                       batch_fixed=fixed_batch is not None, activations=activations)


def model_batch(proto):
    """The fixed batch (axis 0) of the model's first image input, or None when it is dynamic
    (or the model has no input with a batch axis)."""
    initializers = {init.name for init in proto.graph.initializer}
    for value in proto.graph.input:
        if value.name in initializers or not value.type.HasField("tensor_type"):
            continue
        dims = value.type.tensor_type.shape.dim
        if not len(dims):
            continue
        first = dims[0]
        return int(first.dim_value) if first.HasField("dim_value") and first.dim_value > 0 \
            else None
    return None


def _fix_batch(onnx, proto, batch, source):
    """A copy of ``proto`` whose dynamic batch axes are ``batch``, with shapes inferred."""
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    input_names = {value.name for value in graph.input}
    for value in list(graph.input) + list(graph.output):
        if value.name in initializers or not value.type.HasField("tensor_type"):
            continue
        dims = value.type.tensor_type.shape.dim
        for axis, dim in enumerate(dims):
            dynamic = not dim.HasField("dim_value") or dim.dim_value <= 0
            if not dynamic:
                continue
            if axis == 0:
                dim.Clear()
                dim.dim_value = batch
            elif value.name in input_names:
                raise InputError("{}: input '{}' has a dynamic axis {} besides the batch; the energy "
                                 "model needs fixed image sizes (export with a fixed input shape)"
                                 .format(source, value.name, axis))
            else:
                dim.Clear()  # an output's symbolic axis: let inference fill it in
    del graph.value_info[:]
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # noqa: BLE001 - InferenceError and friends
        raise InputError("{}: ONNX shape inference fails: {}".format(source, _first_line(exc))) from None


class _Graph(object):
    """Shapes and constant tensors of an inferred graph, looked up by name."""

    def __init__(self, onnx, model):
        self.onnx = onnx
        self.nodes = list(model.graph.node)
        self.shapes = {}
        for value in list(model.graph.input) + list(model.graph.value_info) + list(
                model.graph.output):
            shape = _value_shape(value)
            if shape is not None:
                self.shapes[value.name] = shape
        self._initializers = {init.name: init for init in model.graph.initializer}
        for name, init in self._initializers.items():
            self.shapes[name] = tuple(int(d) for d in init.dims)
        self._producers = {}
        for node in self.nodes:
            for out in node.output:
                self._producers[out] = node
        self._arrays = {}
        self.activations = None
        self._consumers = None

    def input_zeros(self, node):
        """The measured zero fraction of ``node``'s first input (0 when not measured)."""
        if self.activations is None:
            return 0.0
        return self.activations.zero_fraction(node.input[0])

    def output_zeros(self, node):
        """The measured zero fraction of what ``node`` stores (its output after the unary ops
        fused onto it; 0 when not measured)."""
        if self.activations is None:
            return 0.0
        from energy_model.activations import consumers_of, stored_output
        if self._consumers is None:
            self._consumers = consumers_of(self.nodes)
        return self.activations.zero_fraction(stored_output(node, self._consumers))

    def zeros(self, node):
        """``{"input_zero_fraction": ..., "output_zero_fraction": ...}`` of a compute node."""
        return {"input_zero_fraction": self.input_zeros(node),
                "output_zero_fraction": self.output_zeros(node)}

    def shape(self, name, node):
        shape = self.shapes.get(name)
        if shape is None:
            raise InputError("cannot infer the shape of '{}' (input of {} node '{}'); the energy "
                             "model needs a graph ONNX shape inference can follow".format(
                                 name, node.op_type, node.name))
        return shape

    def constant(self, name):
        """The numpy value of a constant tensor (initializer, Constant node, or the integer input
        of a DequantizeLinear with its zero point removed), or None for an activation."""
        if name in self._arrays:
            return self._arrays[name]
        value = None
        numpy_helper = self.onnx.numpy_helper
        if name in self._initializers:
            value = numpy_helper.to_array(self._initializers[name])
        elif name in self._producers:
            producer = self._producers[name]
            if producer.op_type == "Constant":
                for attr in producer.attribute:
                    if attr.name == "value":
                        value = numpy_helper.to_array(attr.t)
            elif producer.op_type == "DequantizeLinear":
                raw = self.constant(producer.input[0])
                if raw is not None:
                    zero = self.constant(producer.input[2]) if len(producer.input) > 2 and \
                        producer.input[2] else None
                    value = raw.astype(np.int64)
                    if zero is not None:
                        zero = np.asarray(zero).astype(np.int64)
                        axis = _attr(producer, "axis", 1)
                        if zero.ndim == 1 and value.ndim > 1:
                            zero = zero.reshape([-1 if a == axis % value.ndim else 1
                                                 for a in range(value.ndim)])
                        value = value - zero
            elif producer.op_type in ("Identity", "Cast"):
                value = self.constant(producer.input[0])
        self._arrays[name] = value
        return value

    def is_constant(self, name):
        return self.constant(name) is not None


def _node_row(graph, node, name, config):
    op = node.op_type
    if op in FREE_OPS or not node.output:
        return None
    if op in ("Conv", "ConvTranspose"):
        return _conv_row(graph, node, name, config)
    if op == "Gemm":
        return _gemm_row(graph, node, name, config)
    if op == "MatMul":
        return _matmul_row(graph, node, name, config)
    if op in POOL_OPS or op in REDUCE_OPS:
        return _pool_row(graph, node, name, config)
    note = None if op in ELEMENTWISE_OPS else "not modelled: costed as element-wise"
    return _eltwise_row(graph, node, name, config, note)


def _conv_row(graph, node, name, config):
    x_shape = graph.shape(node.input[0], node)
    y_shape = graph.shape(node.output[0], node)
    w_shape = graph.shape(node.input[1], node)
    if len(x_shape) == 3:  # Conv1d: a 1 x L image
        x_shape, y_shape = x_shape[:2] + (1,) + x_shape[2:], y_shape[:2] + (1,) + y_shape[2:]
        w_shape = w_shape[:2] + (1,) + w_shape[2:]
    if len(x_shape) != 4:
        return _eltwise_row(graph, node, name, config, "{}-D convolution: costed as element-wise"
                            .format(len(x_shape) - 2))
    groups = _attr(node, "group", 1)
    # ConvTranspose: weights (C_in, C_out / group, kH, kW), each input pixel scattered over them
    kind = "conv_transpose" if node.op_type == "ConvTranspose" else "conv"
    shape = LayerShape(kind, batch=x_shape[0], in_channels=x_shape[1], in_hw=x_shape[2:],
                       out_channels=y_shape[1], out_hw=y_shape[2:], kernel_hw=w_shape[2:],
                       groups=groups, bias=len(node.input) > 2 and bool(node.input[2]))
    return layer_energy(shape, config, graph.constant(node.input[1]), name, node.op_type,
                        **graph.zeros(node))


def _gemm_row(graph, node, name, config):
    a_shape = graph.shape(node.input[0], node)
    b_shape = graph.shape(node.input[1], node)
    rows = a_shape[1] if _attr(node, "transA", 0) else a_shape[0]
    k = a_shape[0] if _attr(node, "transA", 0) else a_shape[1]
    trans_b = _attr(node, "transB", 0)
    m = b_shape[0] if trans_b else b_shape[1]
    weights = graph.constant(node.input[1])
    bias = len(node.input) > 2 and bool(node.input[2])
    if weights is None:  # two activations
        shape = LayerShape("matmul", batch=1, in_channels=k, in_hw=(rows, 1), out_channels=m,
                           out_hw=(rows, 1), bias=bias)
        return layer_energy(shape, config, None, name, node.op_type).renamed(
            name, note="second operand is an activation: counted as dense weights")
    weights = weights if trans_b else weights.T  # -> (M, K)
    shape = LayerShape("fc", batch=rows, in_channels=k, out_channels=m, bias=bias)
    zeros = graph.zeros(node)
    if _attr(node, "transA", 0):
        zeros["input_zero_fraction"] = 0.0
    return layer_energy(shape, config, weights, name, node.op_type, **zeros)


def _matmul_row(graph, node, name, config):
    a_shape = graph.shape(node.input[0], node)
    b_shape = graph.shape(node.input[1], node)
    weights = graph.constant(node.input[1])
    k = a_shape[-1]
    m = b_shape[-1]
    if weights is not None and len(b_shape) == 2:
        if len(a_shape) <= 2:
            shape = LayerShape("fc", batch=a_shape[0] if len(a_shape) == 2 else 1, in_channels=k,
                               out_channels=m)
        else:  # (..., T, K) x (K, M): T positions share the weights like a 1x1 convolution
            shape = LayerShape("fc", batch=int(np.prod(a_shape[:-2])), in_channels=k,
                               in_hw=(a_shape[-2], 1), out_channels=m, out_hw=(a_shape[-2], 1))
        return layer_energy(shape, config, weights.T, name, node.op_type, **graph.zeros(node))
    out_shape = graph.shape(node.output[0], node)
    rows = out_shape[-2] if len(out_shape) >= 2 else 1
    copies = int(np.prod(out_shape[:-2])) if len(out_shape) > 2 else 1
    shape = LayerShape("matmul", batch=1, in_channels=k, in_hw=(rows, 1), out_channels=m,
                       out_hw=(rows, 1), repeat=copies)
    return layer_energy(shape, config, None, name, node.op_type).renamed(
        name, note="second operand is an activation: counted as dense weights")


def _pool_row(graph, node, name, config):
    x_shape = graph.shape(node.input[0], node)
    y_shape = graph.shape(node.output[0], node)
    in_count = int(np.prod(x_shape))
    out_count = max(1, int(np.prod(y_shape)))
    kernel = _attr(node, "kernel_shape", None)
    window = int(np.prod(kernel)) if kernel else max(1, in_count // out_count)
    batch, channels, in_hw = _image_view(x_shape)
    _, out_channels, out_hw = _image_view(y_shape)
    if out_channels != channels:  # a reduction over channels: keep the element counts right
        channels, in_hw = 1, (in_count // max(1, batch), 1)
        out_channels, out_hw = 1, (out_count // max(1, batch), 1)
    shape = LayerShape("pool", batch=batch, in_channels=channels, in_hw=in_hw,
                       out_channels=out_channels, out_hw=out_hw, kernel_hw=(window, 1),
                       ops_per_output=window)
    return layer_energy(shape, config, None, name, node.op_type)


def _eltwise_row(graph, node, name, config, note=None):
    y_shape = graph.shape(node.output[0], node)
    live = [i for i in node.input if i and not graph.is_constant(i)]
    operands = max(1, len(live))
    batch, channels, hw = _image_view(y_shape)
    shape = LayerShape("eltwise", batch=batch, in_channels=channels, in_hw=hw,
                       out_channels=channels, out_hw=hw, operands=operands,
                       ops_per_output=max(1, operands - 1))
    row = layer_energy(shape, config, None, name, node.op_type)
    return row.renamed(name, note=note) if note else row


def _image_view(shape):
    """(batch, channels, (h, w)) of a tensor shape; other ranks fold into channels."""
    shape = tuple(int(d) for d in shape)
    if len(shape) == 4:
        return shape[0], shape[1], shape[2:]
    if not shape:
        return 1, 1, (1, 1)
    return shape[0], int(np.prod(shape[1:])) if len(shape) > 1 else 1, (1, 1)


def _value_shape(value):
    if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
        return None
    dims = []
    for dim in value.type.tensor_type.shape.dim:
        if not dim.HasField("dim_value") or dim.dim_value < 0:
            return None
        dims.append(int(dim.dim_value))
    return tuple(dims)


def _attr(node, name, default):
    for attr in node.attribute:
        if attr.name == name:
            if attr.type == attr.INT:
                return int(attr.i)
            if attr.type == attr.INTS:
                return [int(v) for v in attr.ints]
            if attr.type == attr.FLOAT:
                return float(attr.f)
    return default


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
