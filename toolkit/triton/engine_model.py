"""One engine of a deployment as a Triton model: ``tensorrt_plan`` for a TensorRT engine (the plan
and its profile's batch range), ``onnxruntime_onnx`` for an ONNX model or an ONNX Runtime engine."""
import os

from basics.errors import InputError
from toolkit.triton.model_config import BatchingConfig, ModelConfig, TensorConfig


class EngineModel(object):
    """What Triton needs of one engine file: ``platform``, the bytes to write as ``filename``,
    inputs/outputs (:class:`engines.base.TensorSpec`, batch axis first) and the batch range
    ``min_batch`` .. ``max_batch`` (``opt_batch``: the profile's optimum; None for ONNX)."""

    def __init__(self, path, platform, filename, inputs, outputs, min_batch=1, opt_batch=None,
                 max_batch=None):
        self.path = path
        self.platform = platform
        self.filename = filename
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.min_batch = int(min_batch)
        self.opt_batch = opt_batch
        self.max_batch = max_batch

    @classmethod
    def from_file(cls, path):
        """From an ``.engine`` file (its sidecar: no TensorRT needed) or an ``.onnx``."""
        if str(path).lower().endswith(".onnx"):
            from engines.load import load_engine
            # the file's own inputs/outputs: a deployment's engine may carry a confidence head
            # added at load time (engines.confidence_head), which the file Triton loads lacks
            with load_engine(path) as plain:
                return cls(path, "onnxruntime_onnx", "model.onnx", plain.inputs, plain.outputs)
        from engines.engine_file import read_sidecar
        sidecar = read_sidecar(path)
        if sidecar.backend == "onnxruntime":
            return cls(path, "onnxruntime_onnx", "model.onnx", sidecar.inputs, sidecar.outputs,
                       sidecar.min_batch, sidecar.opt_batch, sidecar.max_batch)
        if sidecar.backend == "tensorrt":
            return cls(path, "tensorrt_plan", "model.plan", sidecar.inputs, sidecar.outputs,
                       sidecar.min_batch, sidecar.opt_batch, sidecar.max_batch)
        raise InputError("{}: unknown engine backend {!r}".format(path, sidecar.backend))

    def read_bytes(self):
        """The model file's bytes: the plan (checked against its sidecar), or the ONNX."""
        if self.path.lower().endswith(".onnx"):
            with open(self.path, "rb") as handle:
                return handle.read()
        from engines.engine_file import read_engine
        return read_engine(self.path)[0]

    @property
    def batches(self):
        """Whether every input has a dynamic batch axis (then Triton batches the model)."""
        return all(spec.shape and spec.shape[0] == -1 for spec in self.inputs)

    def config(self, name, max_batch=64, queue_delay_us=500, instances=1):
        """The :class:`ModelConfig`: TensorRT engines on the GPU with their profile's maximum
        batch, preferring the profile's optimum; ONNX on the CPU up to ``max_batch``."""
        gpu = self.platform == "tensorrt_plan"
        comments = ["engine {} ({})".format(os.path.basename(self.path), self.platform)]
        if self.batches:
            top = self.max_batch if self.max_batch is not None else int(max_batch)
            preferred = [s for s in (self.opt_batch, top) if s]
            if self.min_batch > 1:
                comments.append("the profile's minimum batch is {}: smaller batches fail; send at "
                                "least that many samples per request".format(self.min_batch))
            comments.append("batch range {} .. {}".format(self.min_batch, top))
            batching, skip = BatchingConfig(preferred, queue_delay_us), 1
        else:
            comments.append("fixed batch: Triton does not batch this model")
            top, batching, skip = 0, None, 0
        return ModelConfig(
            name, [TensorConfig(s.name, s.dtype, s.shape[skip:]) for s in self.inputs],
            [TensorConfig(s.name, s.dtype, s.shape[skip:]) for s in self.outputs], top,
            platform=self.platform, batching=batching,
            instance_kind="KIND_GPU" if gpu else "KIND_CPU", instance_count=instances,
            default_model_filename=self.filename, comments=comments)

