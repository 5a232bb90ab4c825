"""ONNX Runtime backend: CPU provider by default, CUDA/TensorRT providers when installed."""
import os

import numpy as np

from engines.base import Engine, TensorSpec
from toolkit.errors import InputError
from toolkit.lazy import lazy_import

# ONNX tensor type strings -> numpy dtypes
_ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int32)": np.int32,
    "tensor(int64)": np.int64, "tensor(bool)": np.bool_,
}

PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


def available_providers():
    """Execution providers the installed onnxruntime offers (empty when it is missing)."""
    try:
        ort = lazy_import("onnxruntime")
    except Exception:  # noqa: BLE001
        return []
    return list(ort.get_available_providers())


class OnnxRuntimeEngine(Engine):
    """An ``Engine`` over an ``onnxruntime.InferenceSession``.

    ``model`` is a path to an ONNX file or the serialized bytes; ``providers`` are names or the
    aliases ``cpu``/``cuda``/``tensorrt`` (default: CPU); ``threads`` sets intra-op threads
    (0: ONNX Runtime's default); ``max_batch`` bounds the batch like a TensorRT profile would.
    """

    def __init__(self, model, providers=None, threads=0, max_batch=None, identity=None):
        ort = lazy_import("onnxruntime", "running ONNX models on the CPU")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        wanted = [PROVIDER_ALIASES.get(p, p) for p in (providers or ["cpu"])]
        have = ort.get_available_providers()
        missing = [p for p in wanted if p not in have]
        if missing:
            raise InputError("onnxruntime here lacks {}; it has {}".format(missing, have))
        if isinstance(model, (bytes, bytearray)):
            source = bytes(model)
        else:
            if not os.path.isfile(str(model)):
                raise InputError("no such ONNX file: {}".format(model))
            source = str(model)
        try:
            self.session = ort.InferenceSession(source, sess_options=options, providers=wanted)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise InputError("onnxruntime cannot load {}: {}".format(
                "the model" if isinstance(source, bytes) else source,
                str(exc).strip().splitlines()[0])) from None
        self.inputs = tuple(_spec(arg) for arg in self.session.get_inputs())
        self.outputs = tuple(_spec(arg) for arg in self.session.get_outputs())
        self._output_names = [spec.name for spec in self.outputs]
        self.max_batch = max_batch
        self.providers = self.session.get_providers()
        self._identity = identity

    def _run(self, feeds):
        values = self.session.run(self._output_names, feeds)
        return dict(zip(self._output_names, values))

    def run_unchecked(self, feeds):
        """Run without input checks (the caller has checked): the hot path of strategies."""
        return self._run(feeds)

    def identity(self):
        if self._identity is None:
            raise InputError("this engine was loaded without an identity (load it from a file)")
        return self._identity

    def close(self):
        self.session = None


def _spec(arg):
    shape = [d if isinstance(d, int) and d > 0 else -1 for d in arg.shape]
    dtype = _ORT_TYPES.get(arg.type)
    if dtype is None:
        raise InputError("unsupported tensor type {} for '{}'".format(arg.type, arg.name))
    return TensorSpec(arg.name, shape, dtype)
