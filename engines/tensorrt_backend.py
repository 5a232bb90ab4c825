"""TensorRT runtime: a serialized engine as an :class:`engines.base.Engine`.

Written against two generations of TensorRT's Python API, chosen by feature (never by version
string):

- tensor names (8.5+, 10.x): ``num_io_tensors``, ``get_tensor_name/mode/shape/dtype``,
  ``get_tensor_profile_shape``, ``set_input_shape``, ``set_tensor_address``,
  ``execute_async_v3(stream)``;
- binding indices (8.0 / 8.2 on the Jetson Nano, up to 8.6): ``num_bindings``,
  ``binding_is_input``, ``get_binding_name/shape/dtype``, ``get_profile_shape``,
  ``set_binding_shape``, ``execute_async_v2(bindings, stream)``.

Memory goes through :mod:`engines.cuda_memory` (pycuda or cuda-python): page-locked host buffers
and device buffers sized for the profile's maximum batch are allocated once and reused; every call
sets the input shapes, copies host -> device, runs, copies device -> host on one stream,
synchronizes and returns fresh arrays sized to the batch.

An engine built with the confidence head (:mod:`engines.confidence_head`) outputs ``label`` as
INT32 on TensorRT 8.x (no INT64 there; the ONNX parser narrows ArgMax's INT64): this backend
declares and returns it as int64, like the ONNX model and the host path.
"""
import logging
import threading

import numpy as np

from basics.errors import EngineCompatibilityError, InputError
from basics.lazy import is_available, lazy_import
from engines import cuda_memory
from engines.base import Engine, TensorSpec
from engines.confidence_head import LABEL, names_have_head

_LOG = logging.getLogger("toolkit.tensorrt")
_LOGGERS = {}  # tensorrt module -> its one capturing logger


def tensorrt_available():
    """True when ``tensorrt`` and a CUDA binding import and a CUDA GPU is present."""
    try:
        if not is_available("tensorrt") or cuda_memory.available_binding() is None:
            return False
        return cuda_memory.device_facts()["device_count"] > 0
    except Exception:  # noqa: BLE001 - any broken driver/binding means "not usable here"
        return False


def runtime_facts(trt=None):
    """``{"tensorrt_version", "gpu_name", "compute_capability"}`` of this machine, for the
    load-time check that an engine was built for this TensorRT and this GPU."""
    trt = trt or lazy_import("tensorrt", "running TensorRT engines")
    facts = cuda_memory.device_facts()
    return {"tensorrt_version": str(trt.__version__), "gpu_name": facts["gpu_name"],
            "compute_capability": facts["compute_capability"]}


def get_logger(trt):
    """The process-wide TensorRT logger for module ``trt``: a ``trt.ILogger`` subclass that sends
    messages to Python logging (``toolkit.tensorrt``) and keeps errors for error messages.

    TensorRT wants one logger for every builder and runtime in a process, hence the cache.
    """
    logger = _LOGGERS.get(trt)
    if logger is None:
        logger = _LOGGERS[trt] = _logger_class(trt)()
    return logger


def _logger_class(trt):
    base = trt.ILogger
    # trt.Logger.<severity>: present in 8.0 (where ILogger has no Severity) through 10.x
    errors = (trt.Logger.INTERNAL_ERROR, trt.Logger.ERROR)
    warning = trt.Logger.WARNING
    info = trt.Logger.INFO

    class CapturingLogger(base):
        """Forwards TensorRT's messages to Python logging; remembers the errors. ``listener``
        (a callable taking one line, or None) also gets INFO and more severe messages, e.g. the
        builder's log as build progress (:mod:`engines.tensorrt_progress`)."""

        def __init__(self):
            base.__init__(self)
            self.errors = []
            self.listener = None

        def log(self, severity, msg):
            try:  # called by TensorRT from C++: an escaping exception aborts 8.x
                if severity in errors:
                    self.errors.append(str(msg))
                    del self.errors[:-20]
                    _LOG.error("TensorRT: %s", msg)
                elif severity == warning:
                    _LOG.warning("TensorRT: %s", msg)
                elif severity == info:
                    _LOG.info("TensorRT: %s", msg)
                else:
                    _LOG.debug("TensorRT: %s", msg)
                listener = self.listener
                if listener is not None and (severity in errors or severity in (warning, info)):
                    listener("TensorRT: {}".format(_one_line(msg)))
            except Exception:  # noqa: BLE001 - a log line is not worth an abort
                pass

        def errors_since(self, mark):
            """Errors logged after ``mark`` (a value of ``len(self.errors)`` taken earlier)."""
            return self.errors[mark:] if mark <= len(self.errors) else self.errors[-5:]

    return CapturingLogger


# TensorRT DataType member name -> numpy type. Not ``trt.nptype``: TensorRT <= 8.5 builds its
# table with ``np.bool``, which numpy 1.24 - 1.26 removed (NVIDIA/TensorRT issues 2557, 2701).
_NUMPY_TYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32,
                "INT64": np.int64, "BOOL": np.bool_, "UINT8": np.uint8}


def data_type_name(trt_dtype):
    """The member name of a ``trt.DataType`` ("FLOAT"), from ``.name`` or its ``str()``."""
    name = getattr(trt_dtype, "name", None)
    if not isinstance(name, str):
        name = str(trt_dtype)
    return name.rsplit(".", 1)[-1].upper()


def numpy_dtype(trt_dtype, what):
    """The numpy dtype of TensorRT type ``trt_dtype`` (of tensor ``what``); a one-line error for
    types numpy cannot hold (FP8, BF16, INT4 ...)."""
    name = data_type_name(trt_dtype)
    numpy_type = _NUMPY_TYPES.get(name)
    if numpy_type is None:
        raise EngineCompatibilityError("{} has TensorRT type {} which numpy cannot hold".format(
            what, name))
    return np.dtype(numpy_type)


class _Tensor(object):
    """One engine I/O tensor: spec, profile bounds, buffers; ``widen``: the numpy type an output
    is returned as when it differs from the engine's (None: as it is)."""

    __slots__ = ("name", "index", "is_input", "spec", "profile", "host", "device", "itemsize",
                 "widen")

    def __init__(self, name, index, is_input, shape, dtype, profile):
        self.name = name
        self.index = index
        self.is_input = is_input
        self.spec = TensorSpec(name, shape, dtype)
        self.profile = profile  # (min, opt, max) shape tuples for inputs, else None
        self.host = None
        self.device = None
        self.itemsize = self.spec.dtype.itemsize
        self.widen = None


class TensorRTEngine(Engine):
    """A deserialized TensorRT engine (profile 0) with buffers for its maximum batch.

    ``engine_bytes``: the serialized engine; ``identity``: its sha256 (for cache keys); ``trt``: the
    ``tensorrt`` module (default: imported); ``memory``: an :class:`engines.cuda_memory.CudaMemory`
    (default: a new one over pycuda or cuda-python, closed with the engine); ``metadata``: the
    model's :class:`engines.model_metadata.ModelMetadata` (or None); ``max_batch``: the maximum
    batch when the engine's profile does not fix one (the sidecar's).
    """

    def __init__(self, engine_bytes, identity=None, trt=None, memory=None, metadata=None,
                 max_batch=None):
        self.metadata = metadata
        trt = trt or lazy_import("tensorrt", "running TensorRT engines")
        self._trt = trt
        self._identity = identity
        self._lock = threading.Lock()
        self._closed = False
        self._context = self._engine = self._runtime = self._memory = None
        self._tensors = []
        self._bindings = []
        self._owns_memory = memory is None
        self._memory = memory or cuda_memory.open_cuda_memory()
        try:
            with self._memory.activate():
                self._open(trt, bytes(engine_bytes))
            if self.max_batch is None:
                self.max_batch = max_batch
        except BaseException:
            self.close()
            raise

    # -- set-up -------------------------------------------------------------------------------
    def _open(self, trt, engine_bytes):
        logger = get_logger(trt)
        mark = len(logger.errors)
        self._runtime = trt.Runtime(logger)
        engine = self._runtime.deserialize_cuda_engine(engine_bytes)
        if engine is None:
            detail = "; ".join(logger.errors_since(mark)) or "no message"
            raise EngineCompatibilityError(
                "TensorRT {} cannot deserialize this engine ({}): it was built by another TensorRT "
                "version or for another GPU, or the file is damaged; rebuild it here with "
                "`toolkit build`".format(trt.__version__, _one_line(detail)))
        self._engine = engine
        self._tensor_api = hasattr(engine, "num_io_tensors")
        if self._tensor_api:
            self._tensors = self._tensors_by_name(trt, engine)
        else:
            self._tensors = self._tensors_by_binding(trt, engine)
        self._context = engine.create_execution_context()
        if self._context is None:
            raise EngineCompatibilityError("TensorRT could not create an execution context (out "
                                           "of GPU memory?)")
        self._inputs = [t for t in self._tensors if t.is_input]
        self._outputs = [t for t in self._tensors if not t.is_input]
        _widen_head_label(self._outputs)
        self.inputs = tuple(t.spec for t in self._inputs)
        self.outputs = tuple(
            t.spec if t.widen is None else TensorSpec(t.name, t.spec.shape, t.widen)
            for t in self._outputs)
        self.min_batch, self.max_batch = self._batch_bounds()
        self._allocate()

    def _tensors_by_name(self, trt, engine):
        tensors = []
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            shape = tuple(engine.get_tensor_shape(name))
            dtype = numpy_dtype(engine.get_tensor_dtype(name), "tensor '{}'".format(name))
            profile = None
            if is_input and -1 not in shape:
                profile = (shape, shape, shape)
            elif is_input:
                if hasattr(engine, "get_tensor_profile_shape"):
                    bounds = engine.get_tensor_profile_shape(name, 0)
                else:  # 8.5/8.6 without the 10.x query
                    bounds = engine.get_profile_shape(0, name)
                profile = _profile(bounds, shape)
            tensors.append(_Tensor(name, index, is_input, shape, dtype, profile))
        return tensors

    def _tensors_by_binding(self, trt, engine):
        tensors = []
        # bindings repeat once per optimization profile; profile 0 owns the first block
        self._num_bindings = engine.num_bindings
        per_profile = self._num_bindings // max(1, engine.num_optimization_profiles)
        for index in range(per_profile):
            name = engine.get_binding_name(index)
            is_input = bool(engine.binding_is_input(index))
            shape = tuple(engine.get_binding_shape(index))
            dtype = numpy_dtype(engine.get_binding_dtype(index), "binding '{}'".format(name))
            profile = None
            if is_input and -1 not in shape:
                profile = (shape, shape, shape)
            elif is_input:
                profile = _profile(engine.get_profile_shape(0, index), shape)
            tensors.append(_Tensor(name, index, is_input, shape, dtype, profile))
        return tensors

    def _batch_bounds(self):
        low, high = 1, None
        for tensor in self._inputs:
            if not tensor.spec.shape:
                continue
            low = max(low, tensor.profile[0][0])
            top = tensor.profile[2][0]
            high = top if high is None else min(high, top)
        return low, high

    def _set_shape(self, tensor, shape):
        if self._tensor_api:
            return self._context.set_input_shape(tensor.name, shape)
        return self._context.set_binding_shape(tensor.index, shape)

    def _context_shape(self, tensor):
        if self._tensor_api:
            return tuple(self._context.get_tensor_shape(tensor.name))
        return tuple(self._context.get_binding_shape(tensor.index))

    def _allocate(self):
        """Buffers for the largest shapes of the profile, allocated once."""
        for tensor in self._inputs:
            if self._set_shape(tensor, tensor.profile[2]) is False:
                raise EngineCompatibilityError("TensorRT rejects the profile's own maximum shape {} "
                                               "for '{}'".format(tensor.profile[2], tensor.name))
        for tensor in self._tensors:
            shape = tensor.profile[2] if tensor.is_input else self._context_shape(tensor)
            if any(d < 0 for d in shape):
                raise EngineCompatibilityError(
                    "output '{}' has a data-dependent shape {}; this backend needs output shapes "
                    "that follow from the input shapes".format(tensor.name, shape))
            count = int(np.prod(shape, dtype=np.int64)) if shape else 1
            tensor.host = self._memory.host_buffer(count, tensor.spec.dtype)
            tensor.device = self._memory.device_buffer(count * tensor.itemsize)
        if self._tensor_api:
            for tensor in self._tensors:
                if self._context.set_tensor_address(tensor.name, tensor.device) is False:
                    raise EngineCompatibilityError("TensorRT rejects the buffer of '{}'".format(
                        tensor.name))
        else:  # one pointer per binding of every profile; only profile 0's are used
            self._bindings = [tensor.device for tensor in self._tensors]
            self._bindings += [0] * (self._num_bindings - len(self._bindings))

    # -- running ------------------------------------------------------------------------------
    def _run(self, feeds):
        with self._lock:
            if self._closed:
                raise InputError("the engine is closed")
            with self._memory.activate():
                return self._run_locked(feeds)

    def run_unchecked(self, feeds):
        """Run without the input checks of ``infer`` (the caller has checked)."""
        return self._run(feeds)

    def _run_locked(self, feeds):
        memory = self._memory
        for tensor in self._inputs:
            array = feeds[tensor.name]
            if self._set_shape(tensor, array.shape) is False:
                low, _, high = tensor.profile
                raise InputError("input '{}' has shape {}, outside the engine's profile {} .. {}"
                                 .format(tensor.name, array.shape, low, high))
            view = tensor.host[:array.size].reshape(array.shape)
            np.copyto(view, array, casting="same_kind")
            memory.htod_async(tensor.device, view)
        if self._tensor_api:
            ok = self._context.execute_async_v3(memory.stream_handle)
        else:
            ok = self._context.execute_async_v2(self._bindings, memory.stream_handle)
        if ok is False:
            raise RuntimeError("TensorRT failed to enqueue the inference (see the TensorRT log)")
        views = []
        for tensor in self._outputs:
            shape = self._context_shape(tensor)
            count = int(np.prod(shape, dtype=np.int64)) if shape else 1
            view = tensor.host[:count].reshape(shape)
            memory.dtoh_async(view, tensor.device)
            views.append((tensor.name, view, tensor.widen))
        memory.synchronize()
        return {name: view.copy() if widen is None else view.astype(widen)
                for name, view, widen in views}

    def identity(self):
        if self._identity is None:
            raise InputError("this engine was loaded without an identity (load it from a file)")
        return self._identity

    def close(self):
        if getattr(self, "_closed", True):
            return
        self._closed = True
        with self._lock:
            memory, self._memory = self._memory, None
            if memory is None:
                return
            # TensorRT objects go first, with the CUDA context current; then the buffers
            with memory.activate():
                self._context = None
                self._engine = None
                self._runtime = None
            for tensor in self._tensors:
                tensor.host = tensor.device = None
            self._bindings = []
            if self._owns_memory:
                memory.close()


def _widen_head_label(outputs):
    """Mark the confidence head's ``label`` for int64 when the engine holds it narrower (INT32:
    TensorRT 8.x has no INT64)."""
    if not names_have_head(tensor.name for tensor in outputs):
        return
    for tensor in outputs:
        if tensor.name == LABEL and tensor.spec.dtype.kind in "iu" and \
                tensor.spec.dtype.itemsize < 8:
            tensor.widen = np.dtype(np.int64)


def _profile(bounds, shape):
    """``(min, opt, max)`` as int tuples; checks they are as long as the tensor's rank."""
    low, opt, high = (tuple(int(d) for d in dims) for dims in bounds)
    if not (len(low) == len(opt) == len(high) == len(shape)):
        raise EngineCompatibilityError("the engine's optimization profile {} .. {} does not match "
                                       "the input shape {}".format(low, high, shape))
    return low, opt, high


def _one_line(text):
    return " ".join(str(text).split())
