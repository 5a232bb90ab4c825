"""ONNX Runtime backend: CPU provider by default, CUDA/TensorRT providers when installed."""
import os

import numpy as np

from basics.errors import InputError
from basics.lazy import lazy_import
from engines.base import Engine, TensorSpec

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


def resolve_providers(providers, have):
    """Provider names from names or aliases (``cpu``, ``cuda``, ``tensorrt``); default CPU.

    ``"auto"`` picks every accelerated provider onnxruntime has (TensorRT, CUDA), then the CPU.
    """
    if providers is None:
        return ["CPUExecutionProvider"]
    if isinstance(providers, str):
        providers = [p.strip() for p in providers.split(",") if p.strip()]
    if list(providers) == ["auto"]:
        order = ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
        return [p for p in order if p in have] + ["CPUExecutionProvider"]
    wanted = [PROVIDER_ALIASES.get(str(p).lower(), p) for p in providers]
    missing = [p for p in wanted if p not in have]
    if missing:
        raise InputError("onnxruntime here lacks {}; it has {}".format(
            ", ".join(missing), ", ".join(have)))
    return wanted or ["CPUExecutionProvider"]


class OnnxRuntimeEngine(Engine):
    """An ``Engine`` over an ``onnxruntime.InferenceSession``.

    ``model`` is a path to an ONNX file or the serialized bytes; ``providers`` are names or the
    aliases ``cpu``/``cuda``/``tensorrt``, or ``"auto"`` (default: CPU); ``threads`` sets intra-op
    threads (0: ONNX Runtime's default); ``max_batch``/``min_batch`` bound the batch like a TensorRT
    profile would. ``confidence_head=True`` appends softmax and top-1 to the graph
    (:mod:`engines.confidence_head`: outputs ``probs``, ``confidence``, ``label`` after the
    model's own) when the ``onnx`` package is here to edit it and the model keeps no weights in
    external data files; otherwise the model runs as is and the host computes softmax.
    """

    def __init__(self, model, providers=None, threads=0, max_batch=None, identity=None,
                 min_batch=1, metadata=None, confidence_head=False):
        ort = lazy_import("onnxruntime", "running ONNX models on the CPU")
        options = ort.SessionOptions()
        # 4 = fatal only: ONNX Runtime's errors reach the user as our one-line InputError (at 3,
        # "error", it still prints each one in red on stderr)
        options.log_severity_level = 4
        if threads:
            if int(threads) < 0:
                raise InputError("threads must be 0 (default) or positive, got {}".format(threads))
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        wanted = resolve_providers(providers, list(ort.get_available_providers()))
        if isinstance(model, (bytes, bytearray)):
            source = bytes(model)
        else:
            if not os.path.isfile(str(model)):
                raise InputError("no such ONNX file: {}".format(model))
            source = str(model)
        if confidence_head:
            from engines.confidence_head import head_for_load
            source = head_for_load(source)
        try:
            self.session = ort.InferenceSession(source, sess_options=options, providers=wanted)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise InputError("onnxruntime cannot load {}: {}".format(
                "the model" if isinstance(source, bytes) else source, _first_line(exc))) from None
        self.inputs = tuple(_spec(arg) for arg in self.session.get_inputs())
        self.outputs = tuple(_spec(arg) for arg in self.session.get_outputs())
        self._output_names = [spec.name for spec in self.outputs]
        self._single_output = self._output_names[0] if len(self._output_names) == 1 else None
        self.providers = self.session.get_providers()
        self._session_run = _fast_run(self.session, self.providers)
        self.max_batch = max_batch
        self.min_batch = min_batch
        self.threads = int(threads or 0)
        self.metadata = metadata
        self._identity = identity

    def _run(self, feeds):
        try:
            values = self._session_run(self._output_names, feeds, None)
        except TypeError:
            if self.session is None or self._session_run == self.session.run:
                raise
            self._session_run = self.session.run  # the private run's arguments changed
            return self._run(feeds)
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own error types
            if "onnxruntime" not in type(exc).__module__:
                raise
            raise InputError("onnxruntime failed to run the model: {}".format(
                _first_line(exc))) from None
        if self._single_output is not None:
            return {self._single_output: values[0]}
        return dict(zip(self._output_names, values))

    #: run without input checks (the caller has checked): the hot path of strategies, the very
    #: function ``_run`` (no extra Python call); ONNX Runtime still checks shapes and types
    run_unchecked = _run

    def identity(self):
        if self._identity is None:
            raise InputError("this engine was loaded without an identity (load it from a file)")
        return self._identity

    def close(self):
        self.session = None
        self._session_run = _closed


def _closed(*args):
    raise InputError("the engine is closed")


def _fast_run(session, providers):
    """The session's run function for the hot path: ``run(output_names, feeds, run_options)``.

    The public ``InferenceSession.run`` re-checks in Python what :meth:`Engine.check_feeds` has
    just checked (every input present, numpy values) before calling the C++ session: about 2-4 us
    per call, measured by ``benchmarks/engine_overhead.py``. On a CPU-only session, whose only
    other duty (falling back from a failing GPU provider) does not apply, the C++ session's own
    ``run`` (onnxruntime's private ``InferenceSession._sess``, same arguments) is called directly.
    It is feature-detected: when an onnxruntime lacks it, the public ``session.run`` is used, and
    when it rejects those arguments (a ``TypeError``: its signature changed), the engine switches
    to the public run for good (:meth:`OnnxRuntimeEngine._run`). The C++ run still checks shapes and types itself. (The
    public alternatives, ``run_with_ort_values`` and IOBinding, measured slower at batch 1.)
    """
    if list(providers) == ["CPUExecutionProvider"]:
        run = getattr(getattr(session, "_sess", None), "run", None)
        if callable(run):
            return run
    return session.run


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _spec(arg):
    shape = [d if isinstance(d, int) and d > 0 else -1 for d in arg.shape]
    dtype = _ORT_TYPES.get(arg.type)
    if dtype is None:
        raise InputError("unsupported tensor type {} for '{}'".format(arg.type, arg.name))
    return TensorSpec(arg.name, shape, dtype)
