"""Activation sparsity measured on data: the share of zeros in the input of every conv/fc layer.

Yang et al.'s estimation tool takes the number of zero entries in each feature map: after ReLU,
often half of them or more. :func:`measure_activation_sparsity` runs the model with ONNX Runtime
on calibration images, with the input of every Conv, ConvTranspose, Gemm and MatMul node added
as a graph output, and counts the exact zeros of each (over every sample and element).
``estimate_onnx(model, config, activations=...)`` then skips the MACs of zero inputs and
compresses them in DRAM (see :mod:`toolkit.energy_model`, assumption 5).
"""
import numpy as np

from basics.errors import InputError
from basics.lazy import lazy_import
from basics.progress import progress_bar

MEASURED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
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
        return ("zeros measured on {} ({} samples): {} layer inputs, {:.1%} zero on average; "
                "MACs of zero inputs skipped, zeros compressed in DRAM".format(
                    self.data_name, self.samples, len(self.zero_fractions), self.mean))


def measured_tensors(proto):
    """The names of the first inputs of every Conv/ConvTranspose/Gemm/MatMul node (in order)."""
    names = []
    for node in proto.graph.node:
        if node.op_type in MEASURED_OPS and node.input and node.input[0] not in names:
            names.append(node.input[0])
    return names


def measure_activation_sparsity(onnx_path, images, data_name="data", batch_size=DEFAULT_BATCH,
                                max_samples=DEFAULT_MAX_SAMPLES, progress=False):
    """Run the ONNX model at ``onnx_path`` on ``images`` (float32 NCHW, preprocessed for it; at
    most ``max_samples``) with ONNX Runtime and count the zeros of each conv/fc layer's input.
    A model with a fixed batch is fed batches of exactly that size (a last partial batch is
    left out). Returns an :class:`ActivationSparsity`."""
    onnx = lazy_import("onnx", "measuring activation sparsity")
    ort = lazy_import("onnxruntime", "measuring activation sparsity")
    from toolkit.energy_model.onnx_graph import model_batch
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
