"""Activation sparsity measured on data: the share of zeros in the input of every conv/fc layer.

Yang et al.'s estimation tool takes the number of zero entries in each feature map: after ReLU,
often half of them or more. :func:`measure_activation_sparsity` runs the model with ONNX Runtime
on calibration images, with the input of every Conv, ConvTranspose, Gemm and MatMul node and its
stored output (the tensor after the unary element-wise ops fused onto it, e.g. its ReLU: what is
written to DRAM) added as graph outputs, and counts the exact zeros of each (over every sample
and element). ``estimate_onnx(model, config, activations=...)`` then skips the MACs of zero
inputs and compresses zeros in DRAM (see :mod:`energy_model`, assumption 5).
"""
import numpy as np

from basics.errors import InputError
from basics.lazy import lazy_import
from basics.progress import progress_bar

MEASURED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
# single-input element-wise ops that run fused on a layer's output before it is stored
FUSED_UNARY_OPS = ("Relu", "Clip", "LeakyRelu", "PRelu", "Elu", "Selu", "Sigmoid", "HardSigmoid",
                   "HardSwish", "Tanh", "BatchNormalization", "Identity")
DEFAULT_MAX_SAMPLES = 256
DEFAULT_BATCH = 32


class ActivationSparsity(object):
    """``zero_fractions``: {tensor name: share of its entries that are exactly zero}, measured on
    ``samples`` images of the data ``data_name``."""

    def __init__(self, zero_fractions, samples, data_name="data"):
        self.zero_fractions = {str(k): float(v) for k, v in zero_fractions.items()}
        for name, value in self.zero_fractions.items():
            if not 0.0 <= value <= 1.0:
                raise InputError("the zero fraction of '{}' must be in [0, 1], got {}".format(
                    name, value))
        self.samples = int(samples)
        self.data_name = str(data_name)

    def zero_fraction(self, tensor):
        """The zero fraction of ``tensor`` (0 when it was not measured)."""
        return self.zero_fractions.get(tensor, 0.0)

    @property
    def mean(self):
        values = list(self.zero_fractions.values())
        return sum(values) / len(values) if values else 0.0

    def key(self):
        """A hashable key (for the estimate cache)."""
        return tuple(sorted((k, round(v, 12)) for k, v in self.zero_fractions.items()))

    def to_dict(self):
        return {"data": self.data_name, "samples": self.samples,
                "zero_fractions": dict(self.zero_fractions), "mean_zero_fraction": self.mean}

    def line(self):
        return ("zeros measured on {} ({} samples): {} feature maps, {:.1%} zero on average; "
                "MACs of zero inputs skipped, zeros compressed in DRAM".format(
                    self.data_name, self.samples, len(self.zero_fractions), self.mean))


def consumers_of(nodes):
    """{tensor name: [nodes reading it]}."""
    consumers = {}
    for node in nodes:
        for name in node.input:
            if name:
                consumers.setdefault(name, []).append(node)
    return consumers


def stored_output(node, consumers):
    """The tensor a compute ``node`` writes to DRAM: its output, or the output of the chain of
    unary element-wise ops (:data:`FUSED_UNARY_OPS`) that alone consume it, fused onto it."""
    tensor = node.output[0]
    while True:
        users = consumers.get(tensor, [])
        if len(users) != 1 or users[0].op_type not in FUSED_UNARY_OPS or not users[0].output:
            return tensor
        tensor = users[0].output[0]


def measured_tensors(proto):
    """The names of the first input and of the stored output of every Conv/ConvTranspose/Gemm/
    MatMul node (in order)."""
    consumers = consumers_of(proto.graph.node)
    names = []
    for node in proto.graph.node:
        if node.op_type not in MEASURED_OPS or not node.input or not node.output:
            continue
        for name in (node.input[0], stored_output(node, consumers)):
            if name not in names:
                names.append(name)
    return names


def measure_activation_sparsity(onnx_path, images, data_name="data", batch_size=DEFAULT_BATCH,
                                max_samples=DEFAULT_MAX_SAMPLES, progress=False):
    """Run the ONNX model at ``onnx_path`` on ``images`` (float32 NCHW, preprocessed for it; at
    most ``max_samples``) with ONNX Runtime and count the zeros of each conv/fc layer's input.
    A model with a fixed batch is fed batches of exactly that size (a last partial batch is
    left out). Returns an :class:`ActivationSparsity`."""
    onnx = lazy_import("onnx", "measuring activation sparsity")
    ort = lazy_import("onnxruntime", "measuring activation sparsity")
    from energy_model.onnx_graph import model_batch
    try:
        proto = onnx.load(onnx_path)
    except Exception as exc:  # noqa: BLE001 - protobuf DecodeError and friends
        raise InputError("{} is not a readable ONNX model: {}".format(onnx_path, exc)) from None
    images = np.ascontiguousarray(images, dtype=np.float32)
    if max_samples is not None:
        images = images[:int(max_samples)]
    fixed = model_batch(proto)
    batch = fixed or max(1, int(batch_size))
    count = (len(images) // batch) * batch if fixed else len(images)
    if count == 0:
        raise InputError("measuring activation sparsity needs at least {} image(s) (the model's "
                         "batch); the data has {}".format(batch, len(images)))
    inputs = [value.name for value in proto.graph.input
              if value.name not in {init.name for init in proto.graph.initializer}]
    if len(inputs) != 1:
        raise InputError("measuring activation sparsity feeds models with one input; {} has {}"
                         .format(onnx_path, len(inputs)))
    tensors = measured_tensors(proto)
    outputs = {value.name for value in proto.graph.output}
    constants = {init.name for init in proto.graph.initializer}
    tensors = [t for t in tensors if t not in constants]
    for name in tensors:
        if name not in outputs and name not in inputs:
            proto.graph.output.append(onnx.ValueInfoProto(name=name))
    fetch = [t for t in tensors if t not in inputs]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(proto.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own kinds
        raise InputError("ONNX Runtime cannot run {} to measure its activations: {}".format(
            onnx_path, str(exc).strip().splitlines()[0] if str(exc).strip() else
            type(exc).__name__)) from None
    zeros = dict.fromkeys(tensors, 0)
    totals = dict.fromkeys(tensors, 0)
    starts = range(0, count, batch)
    bar = progress_bar(len(starts), "activations", "batch", progress)
    try:
        for start in starts:
            feed = images[start:start + batch]
            values = dict(zip(fetch, session.run(fetch, {inputs[0]: feed}))) if fetch else {}
            values[inputs[0]] = feed
            for name in tensors:
                array = np.asarray(values[name])
                zeros[name] += int(array.size - np.count_nonzero(array))
                totals[name] += int(array.size)
            bar.update(1)
    finally:
        bar.close()
    return ActivationSparsity({t: zeros[t] / float(totals[t]) for t in tensors if totals[t]},
                              count, data_name)
