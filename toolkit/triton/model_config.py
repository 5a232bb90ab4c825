"""Triton ``config.pbtxt`` files, written as protobuf text format (``model_config.proto``).

Typed objects in, text out; the tests parse every file written against Triton's own
``model_config.proto`` (``tritonclient.grpc.model_config_pb2``). Nothing here needs Triton.
"""
import json

import numpy as np

from basics.errors import InputError

# numpy dtype name -> Triton data type
DATA_TYPES = {"bool": "TYPE_BOOL", "uint8": "TYPE_UINT8", "uint16": "TYPE_UINT16",
              "uint32": "TYPE_UINT32", "uint64": "TYPE_UINT64", "int8": "TYPE_INT8",
              "int16": "TYPE_INT16", "int32": "TYPE_INT32", "int64": "TYPE_INT64",
              "float16": "TYPE_FP16", "float32": "TYPE_FP32", "float64": "TYPE_FP64"}


def data_type(dtype):
    """The Triton data type of a numpy dtype (InputError for one Triton cannot carry)."""
    name = np.dtype(dtype).name
    if name not in DATA_TYPES:
        raise InputError("Triton has no data type for numpy {}".format(name))
    return DATA_TYPES[name]


class TensorConfig(object):
    """One input or output: name, numpy dtype, dims without the batch axis (-1: dynamic) and,
    for an output, an optional labels file. A scalar per sample (dims ``[]``) is Triton's idiom
    ``dims: [1]`` with ``reshape: { shape: [] }``."""

    def __init__(self, name, dtype, dims, label_filename=None):
        self.name = str(name)
        self.dtype = np.dtype(dtype)
        self.dims = [int(d) for d in dims]
        self.label_filename = label_filename
        self.reshape = None
        if not self.dims:
            self.dims, self.reshape = [1], []


class BatchingConfig(object):
    """Dynamic batching: preferred batch sizes and the longest a request waits for others
    (``max_queue_delay_us``). ``None`` as a whole: no dynamic batching."""

    def __init__(self, preferred_sizes=(), max_queue_delay_us=500):
        self.preferred_sizes = sorted(set(int(s) for s in preferred_sizes))
        self.max_queue_delay_us = int(max_queue_delay_us)
        if self.max_queue_delay_us < 0:
            raise InputError("the queue delay must be at least 0 us, got {}".format(
                max_queue_delay_us))


class ModelConfig(object):
    """One model's configuration. ``platform`` (e.g. ``tensorrt_plan``, ``onnxruntime_onnx``)
    or ``backend`` (e.g. ``python``); ``max_batch_size`` 0 means the model does not batch (dims
    then include the batch axis); ``instance_kind`` ``KIND_GPU`` / ``KIND_CPU``."""

    def __init__(self, name, inputs, outputs, max_batch_size, platform=None, backend=None,
                 batching=None, instance_kind="KIND_CPU", instance_count=1,
                 default_model_filename=None, parameters=None, comments=()):
        if (platform is None) == (backend is None):
            raise ValueError("give a platform or a backend")
        if instance_kind not in ("KIND_CPU", "KIND_GPU", "KIND_AUTO"):
            raise InputError("instance kind must be KIND_CPU, KIND_GPU or KIND_AUTO")
        if int(instance_count) < 1:
            raise InputError("--instances must be at least 1, got {}".format(instance_count))
        if int(max_batch_size) < 0:
            raise InputError("max batch size must be at least 0, got {}".format(max_batch_size))
        self.name = name
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.max_batch_size = int(max_batch_size)
        self.platform = platform
        self.backend = backend
        self.batching = batching if self.max_batch_size > 0 else None
        self.instance_kind = instance_kind
        self.instance_count = int(instance_count)
        self.default_model_filename = default_model_filename
        self.parameters = dict(parameters or {})
        self.comments = list(comments)

    def to_pbtxt(self):
        """The ``config.pbtxt`` text."""
        lines = ["# {}".format(c) for c in self.comments]
        lines.append("name: {}".format(_quote(self.name)))
        if self.platform is not None:
            lines.append("platform: {}".format(_quote(self.platform)))
        else:
            lines.append("backend: {}".format(_quote(self.backend)))
        if self.default_model_filename:
            lines.append("default_model_filename: {}".format(_quote(self.default_model_filename)))
        lines.append("max_batch_size: {}".format(self.max_batch_size))
        for key, tensors in (("input", self.inputs), ("output", self.outputs)):
            lines.append("{} [".format(key))
            lines.append(",\n".join(_tensor(t) for t in tensors))
            lines.append("]")
        lines.append("instance_group [\n  {{\n    kind: {}\n    count: {}\n  }}\n]".format(
            self.instance_kind, self.instance_count))
        if self.batching is not None:
            lines.append("dynamic_batching {")
            for size in self.batching.preferred_sizes:
                lines.append("  preferred_batch_size: {}".format(size))
            lines.append("  max_queue_delay_microseconds: {}".format(
                self.batching.max_queue_delay_us))
            lines.append("}")
        for key in sorted(self.parameters):
            value = self.parameters[key]
            if not isinstance(value, str):
                value = json.dumps(value, sort_keys=True)
            lines.append("parameters {{\n  key: {}\n  value: {{ string_value: {} }}\n}}".format(
                _quote(key), _quote(value)))
        return "\n".join(lines) + "\n"


def _tensor(tensor):
    fields = ["    name: {}".format(_quote(tensor.name)),
              "    data_type: {}".format(data_type(tensor.dtype)),
              "    dims: [ {} ]".format(", ".join(str(d) for d in tensor.dims))]
    if tensor.reshape is not None:
        fields.append("    reshape: {{ shape: [ {} ] }}".format(
            ", ".join(str(d) for d in tensor.reshape)))
    if tensor.label_filename:
        fields.append("    label_filename: {}".format(_quote(tensor.label_filename)))
    return "  {\n" + "\n".join(fields) + "\n  }"


def _quote(text):
    """A protobuf text-format string literal (JSON escaping is a subset it reads)."""
    return json.dumps(str(text), ensure_ascii=False)
