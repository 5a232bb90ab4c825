"""A TEST DOUBLE of the ``tensorrt`` Python module, in three generations. NOT TensorRT.

- mode ``"8.2"`` (Jetson Nano: TensorRT 8.0.1 / 8.2.1): binding indices (``num_bindings``,
  ``set_binding_shape``, ``execute_async_v2``), ``max_workspace_size``, ``EXPLICIT_BATCH``
  required by the ONNX parser, no ``MemoryPoolType``/``TensorIOMode``/``num_io_tensors``;
- mode ``"8.5"`` (JetPack 5.1: TensorRT 8.5.2): both the binding and the tensor-name API, but no
  ``get_tensor_profile_shape`` (``get_profile_shape(profile, name)`` instead), no INT64, no
  progress monitor;
- mode ``"10"``: tensor names (``num_io_tensors``, ``set_input_shape``, ``set_tensor_address``,
  ``execute_async_v3``), ``set_memory_pool_limit``, no bindings; ``int8_calibrator`` and
  ``set_calibration_profile`` warn (DeprecationWarning) as in 10.16; ``IProgressMonitor``.

As real TensorRT does: ``trt.nptype`` fails in 8.x when numpy has no ``np.bool`` (1.24 - 1.26);
an ``IHostMemory`` has ``nbytes`` and the buffer protocol but no ``len()``; a Python exception
escaping a callback TensorRT makes (calibrator, logger, progress monitor), or a wrongly typed
return value (a float batch size), aborts the process in 8.x (C++ ``noexcept``): the double
raises :class:`TensorRTAbort` (a BaseException, so no ``except Exception`` hides it); device
pointers from a non-primary CUDA context are illegal addresses.

"Building" keeps the ONNX bytes: a serialized engine is a header (magic, TensorRT version, GPU,
precision flags, profile, calibration scales) + the ONNX model. "Executing" reads the inputs from
the fake device memory, runs ONNX Runtime (fp32: the double does not emulate reduced precision)
and writes the outputs back, on the stream. It enforces what real TensorRT requires or would
silently get wrong: a profile for dynamic inputs, shapes inside the profile, every input shape set
before execution, device pointers that point into live allocations large enough for the tensor,
the calibration protocol (read cache -> get_batch... -> write cache), and an engine deserialized
only by the same TensorRT version on the same GPU.
"""
import hashlib
import json
import struct
import warnings

import numpy as np

from tests.engines.trt_double.api_tables import TRT
from tests.engines.trt_double.gpu import FakeCudaError
from tests.engines.trt_double.strict import StrictModule, make_enum, strict_class

MAGIC = b"TRTDOUBLE\0"


class TensorRTAbort(BaseException):
    """What the real process does instead: ``terminate called ...`` and SIGABRT."""


def callback(obj, name, *args, **kwargs):
    """Call Python override ``name`` of ``obj`` as TensorRT does: nothing may escape it."""
    try:
        return getattr(obj, name)(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the C++ caller is noexcept
        raise TensorRTAbort("a Python exception escaped {}.{}() called by TensorRT (noexcept): "
                            "the process aborts ({}: {})".format(type(obj).__name__, name,
                                                                 type(exc).__name__, exc))

_SESSIONS = {}  # sha256 of ONNX bytes -> onnxruntime session (shared across doubles)

# ONNX element types -> DataType member names (8.x narrows INT64 to INT32 like the real parser)
_ONNX_TYPES = {1: "FLOAT", 10: "HALF", 3: "INT8", 6: "INT32", 7: "INT64", 9: "BOOL", 2: "UINT8"}
_NP = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32,
       "INT64": np.int64, "BOOL": np.bool_, "UINT8": np.uint8}
_LAYERS = {"Conv": "CONVOLUTION", "Relu": "ACTIVATION", "Sigmoid": "ACTIVATION",
           "Tanh": "ACTIVATION", "MaxPool": "POOLING", "AveragePool": "POOLING",
           "GlobalAveragePool": "POOLING", "Reshape": "SHUFFLE", "Flatten": "SHUFFLE",
           "Transpose": "SHUFFLE", "Gemm": "MATRIX_MULTIPLY", "MatMul": "MATRIX_MULTIPLY",
           "Add": "ELEMENTWISE", "Mul": "ELEMENTWISE", "Sub": "ELEMENTWISE", "Div": "ELEMENTWISE",
           "Softmax": "SOFTMAX", "ReduceMean": "REDUCE", "ReduceMax": "REDUCE",
           "ArgMax": "TOPK", "Identity": "IDENTITY",
           "Constant": "CONSTANT", "QuantizeLinear": "QUANTIZE",
           "DequantizeLinear": "DEQUANTIZE"}


def _session(onnx_bytes):
    """An ONNX Runtime session running ``onnx_bytes`` for the double. A Q/DQ graph runs unfused:
    its Quantize/Dequantize nodes as ops, every other layer in float on the dequantized values.
    That is TensorRT's INT8 arithmetic (exact 32-bit integer sums, then the scales) to float
    rounding, on every CPU; ONNX Runtime's fused integer kernels would instead depend on the CPU
    running the tests (VPMADDUBSW saturates 16-bit pair sums on x86 without VNNI)."""
    import onnxruntime as ort
    key = hashlib.sha256(onnx_bytes).hexdigest()
    session = _SESSIONS.get(key)
    if session is None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        if b"QuantizeLinear" in onnx_bytes:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = _SESSIONS[key] = ort.InferenceSession(onnx_bytes, sess_options=options,
                                                        providers=["CPUExecutionProvider"])
    return session


def _version_number(version):
    parts = [int(p) for p in version.split(".")[:3]]
    major, minor, patch = (parts + [0, 0, 0])[:3]
    return major * (1000 if major < 10 else 10000) + minor * 100 + patch


def build_tensorrt(mode, gpu, version, fast_fp16=True, fast_int8=True, numpy_has_bool=None):
    """A fresh fake ``tensorrt`` module for ``mode`` ("8.2", "8.5" or "10") over FakeGpu ``gpu``.

    ``numpy_has_bool``: whether ``np.bool`` exists (None: ask this numpy; False: numpy 1.24-1.26).
    """
    if mode not in TRT:
        raise ValueError("mode must be one of {}".format(sorted(TRT)))
    family = "trt-" + mode
    table = TRT[mode]
    binding_api = mode in ("8.2", "8.5")  # the 8.x generation (8.5 has both APIs)
    if numpy_has_bool is None:
        numpy_has_bool = "bool" in np.__dict__

    def cls(name, impl, api=None):
        api = api or name
        return strict_class(name, (impl,), {}, family, api, table.get(api, ()))

    def enum(api, members):
        return make_enum(family, api, members, table.get(api, ()))

    # -- enums -----------------------------------------------------------------------------
    Severity = enum("Logger.Severity", ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"])
    DataType = enum("DataType", [("FLOAT", 0), ("HALF", 1), ("INT8", 2), ("INT32", 3),
                                 ("BOOL", 4), ("UINT8", 5), ("INT64", 8)])
    BuilderFlag = enum("BuilderFlag", ["FP16", "INT8", "DEBUG", "GPU_FALLBACK", "STRICT_TYPES",
                                       "REFIT", "DISABLE_TIMING_CACHE", "TF32",
                                       "OBEY_PRECISION_CONSTRAINTS"])
    NetworkFlag = enum("NetworkDefinitionCreationFlag", ["EXPLICIT_BATCH", "EXPLICIT_PRECISION"])
    LayerType = enum("LayerType", sorted(set(_LAYERS.values())) + ["UNARY"])
    ErrorCode = enum("ErrorCode", ["SUCCESS", "INTERNAL_ERROR", "MEM_ALLOC_FAILED",
                                   "MODEL_DESERIALIZE_FAILED", "INVALID_VALUE", "INVALID_GRAPH",
                                   "INVALID_NODE", "UNSUPPORTED_GRAPH", "UNSUPPORTED_NODE"])
    AlgoType = enum("CalibrationAlgoType", ["LEGACY_CALIBRATION", "ENTROPY_CALIBRATION",
                                            "ENTROPY_CALIBRATION_2", "MINMAX_CALIBRATION"])
    MemoryPoolType = enum("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM"])
    TensorIOMode = enum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])

    def dtype_of(name):
        if binding_api and name == "INT64":
            name = "INT32"
        return getattr(DataType, name)

    def nptype(trt_type):
        if binding_api and not numpy_has_bool:  # 8.0 - 8.5 build their table with np.bool
            raise AttributeError("module 'numpy' has no attribute 'bool'.\n`np.bool` was a "
                                 "deprecated alias for the builtin `bool`.")
        if not isinstance(trt_type, DataType):
            raise TypeError("nptype expects a tensorrt.DataType, got {!r}".format(trt_type))
        return _NP[trt_type._name]

    def volume(iterable):
        result = 1
        for dim in iterable:
            result *= int(dim)
        return result

    # -- logging ---------------------------------------------------------------------------
    class _ILogger(object):
        def __init__(self):
            self._initialised = True

        def log(self, severity, msg):
            pass

    ILogger = cls("ILogger", _ILogger)

    class _Logger(object):
        def __init__(self, min_severity=None):
            self._initialised = True
            self._min = Severity.WARNING if min_severity is None else min_severity
            self._messages = []

        @property
        def min_severity(self):
            return self._min

        def log(self, severity, msg):
            self._messages.append((severity, msg))

    Logger = strict_class("Logger", (_Logger, ILogger), {}, family, "Logger", table["Logger"])
    for member in ("INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"):
        type.__setattr__(Logger, member, getattr(Severity, member))
    type.__setattr__(Logger, "Severity", Severity)

    def check_logger(logger, what):
        if not isinstance(logger, ILogger):
            raise TypeError("{}(): incompatible argument: a tensorrt.ILogger is required".format(
                what))
        if not logger.__dict__.get("_initialised"):
            raise TypeError("{}.__init__() must be called when overriding __init__".format(
                type(logger).__name__))

    def emit(logger, severity, message):
        callback(logger, "log", severity, message)

    # -- network, parser -------------------------------------------------------------------
    class _ITensor(object):
        def __init__(self, name, shape, dtype, is_input):
            self._name, self._shape, self._dtype, self._is_input = name, shape, dtype, is_input

        name = property(lambda self: self._name)
        shape = property(lambda self: tuple(self._shape))
        dtype = property(lambda self: self._dtype)
        is_network_input = property(lambda self: self._is_input)
        is_network_output = property(lambda self: not self._is_input)

    ITensor = cls("ITensor", _ITensor)

    class _ILayer(object):
        def __init__(self, name, layer_type):
            self._name, self._type = name, layer_type
            self._precision = None

        name = property(lambda self: self._name)
        type = property(lambda self: self._type)

        def _set_precision(self, value):
            if not isinstance(value, DataType):
                raise TypeError("precision: a tensorrt.DataType is required")
            self._precision = value

        precision = property(lambda self: self._precision or DataType.FLOAT, _set_precision)

    ILayer = cls("ILayer", _ILayer)

    class _INetworkDefinition(object):
        def __init__(self, flags):
            self._flags = int(flags)
            self._onnx = None
            self._inputs, self._outputs, self._layers = [], [], []

        num_inputs = property(lambda self: len(self._inputs))
        num_outputs = property(lambda self: len(self._outputs))
        num_layers = property(lambda self: len(self._layers))

        def get_input(self, index):
            return self._inputs[index]

        def get_output(self, index):
            return self._outputs[index]

        def get_layer(self, index):
            return self._layers[index]

    INetworkDefinition = cls("INetworkDefinition", _INetworkDefinition)

    class _ParserError(object):
        def __init__(self, code, desc, node):
            self._code, self._desc, self._node = code, desc, node

        def code(self):
            return self._code

        def desc(self):
            return self._desc

        def node(self):
            return self._node

        def __str__(self):
            return "In node {} ({}): {}".format(self._node, self._code._name, self._desc)

    ParserError = cls("ParserError", _ParserError)

    class _OnnxParser(object):
        def __init__(self, network, logger):
            check_logger(logger, "OnnxParser")
            if not isinstance(network, INetworkDefinition):
                raise TypeError("OnnxParser(): a tensorrt.INetworkDefinition is required")
            self._network, self._logger, self._errors = network, logger, []

        num_errors = property(lambda self: len(self._errors))

        def get_error(self, index):
            return self._errors[index]

        def clear_errors(self):
            self._errors = []

        def parse_from_file(self, model):
            try:
                with open(model, "rb") as handle:
                    data = handle.read()
            except OSError as exc:
                self._fail(ErrorCode.MODEL_DESERIALIZE_FAILED, -1, str(exc))
                return False
            return self._parse(data)

        def parse(self, model, path=None):
            return self._parse(bytes(model))

        def _fail(self, code, node, desc):
            self._errors.append(ParserError(code, desc, node))
            emit(self._logger, Severity.ERROR, "ModelImporter: " + desc)

        def _parse(self, data):
            import onnx
            try:
                model = onnx.load_from_string(data)
            except Exception:  # noqa: BLE001 - protobuf's DecodeError and friends
                self._fail(ErrorCode.MODEL_DESERIALIZE_FAILED, -1,
                           "Failed to parse ONNX model from file: not a valid ONNX protobuf")
                return False
            network = self._network
            if binding_api and not network._flags & (1 << int(NetworkFlag.EXPLICIT_BATCH)):
                self._fail(ErrorCode.INVALID_VALUE, -1,
                           "This version of the ONNX parser only supports TensorRT "
                           "INetworkDefinitions with an explicit batch dimension. Please ensure "
                           "the network was initialized with the kEXPLICIT_BATCH flag.")
                return False
            graph = model.graph
            if not graph.output:
                self._fail(ErrorCode.INVALID_GRAPH, -1, "the graph has no outputs")
                return False
            ok = True
            for index, node in enumerate(graph.node):
                if node.domain not in ("", "ai.onnx") or node.op_type not in _LAYERS:
                    self._fail(ErrorCode.UNSUPPORTED_NODE, index,
                               "No importer registered for op: {}{}".format(
                                   node.domain + "::" if node.domain else "", node.op_type))
                    ok = False
            if not ok:
                return False
            initialisers = set(i.name for i in graph.initializer)
            network._inputs = [self._tensor(v, True) for v in graph.input
                               if v.name not in initialisers]
            network._outputs = [self._tensor(v, False) for v in graph.output]
            network._layers = [ILayer(n.name or "node_{}".format(i),
                                      getattr(LayerType, _LAYERS[n.op_type]))
                               for i, n in enumerate(graph.node)]
            network._onnx = data
            return True

        def _tensor(self, value, is_input):
            tensor_type = value.type.tensor_type
            shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1
                          for d in tensor_type.shape.dim)
            return ITensor(value.name, shape, dtype_of(_ONNX_TYPES[tensor_type.elem_type]),
                           is_input)

    OnnxParser = cls("OnnxParser", _OnnxParser)

    # -- builder ---------------------------------------------------------------------------
    class _IOptimizationProfile(object):
        def __init__(self):
            self._shapes = {}
            self._valid = True

        def set_shape(self, input, min, opt, max):  # noqa: A002 - TensorRT's keyword names
            shapes = tuple(tuple(int(d) for d in s) for s in (min, opt, max))
            if len(set(len(s) for s in shapes)) != 1 or any(
                    not a <= b <= c for a, b, c in zip(*shapes)) or any(d < 0 for d in shapes[0]):
                self._valid = False
            self._shapes[input] = shapes

        def get_shape(self, input):  # noqa: A002
            return [tuple(s) for s in self._shapes.get(input, ((), (), ()))]

        def __bool__(self):
            return self._valid

    IOptimizationProfile = cls("IOptimizationProfile", _IOptimizationProfile)

    class _IBuilderConfig(object):
        def __init__(self):
            self._flags = set()
            self._profiles = []
            self._calibrator = None
            self._calibration_profile = None
            self._workspace = 0
            self._monitor = None

        def _get_monitor(self):
            return self._monitor

        def _set_monitor(self, monitor):
            if monitor is not None:
                if not isinstance(monitor, IProgressMonitor):
                    raise TypeError("progress_monitor must be a tensorrt.IProgressMonitor")
                if not monitor.__dict__.get("_initialised"):
                    raise TypeError("{}.__init__() must be called when overriding __init__".format(
                        type(monitor).__name__))
            self._monitor = monitor

        progress_monitor = property(_get_monitor, _set_monitor)  # 10.x (trimmed by the table)

        def set_flag(self, flag):
            if not isinstance(flag, BuilderFlag):
                raise TypeError("set_flag(): a tensorrt.BuilderFlag is required")
            self._flags.add(flag._name)

        def get_flag(self, flag):
            return flag._name in self._flags

        def clear_flag(self, flag):
            self._flags.discard(flag._name)

        def add_optimization_profile(self, profile):
            if not profile._valid:
                return -1
            self._profiles.append(profile)
            return len(self._profiles) - 1

        num_optimization_profiles = property(lambda self: len(self._profiles))

        def _get_calibrator(self):
            if mode == "10":
                warnings.warn("Deprecated in TensorRT 10.1. Superseded by explicit quantization.",
                              DeprecationWarning, stacklevel=2)
            return self._calibrator

        def _set_calibrator(self, calibrator):
            if mode == "10":
                warnings.warn("Deprecated in TensorRT 10.1. Superseded by explicit quantization.",
                              DeprecationWarning, stacklevel=2)
            if calibrator is not None:
                if not isinstance(calibrator, IInt8Calibrator):
                    raise TypeError("int8_calibrator must be a tensorrt.IInt8Calibrator")
                if not calibrator.__dict__.get("_initialised"):
                    raise TypeError("{}.__init__() must be called when overriding __init__".format(
                        type(calibrator).__name__))
            self._calibrator = calibrator

        int8_calibrator = property(_get_calibrator, _set_calibrator)

        def set_calibration_profile(self, profile):
            if mode == "10":
                warnings.warn("Deprecated in TensorRT 10.1. Superseded by explicit quantization.",
                              DeprecationWarning, stacklevel=2)
            if not profile._valid:
                return False
            self._calibration_profile = profile
            return True

        def get_calibration_profile(self):
            return self._calibration_profile

        # 8.x
        def _get_workspace(self):
            return self._workspace

        def _set_workspace(self, value):
            self._workspace = int(value)

        max_workspace_size = property(_get_workspace, _set_workspace)

        # 10.x
        def set_memory_pool_limit(self, pool, pool_size):
            if not isinstance(pool, MemoryPoolType):
                raise TypeError("set_memory_pool_limit(): a tensorrt.MemoryPoolType is required")
            if pool == MemoryPoolType.WORKSPACE:
                self._workspace = int(pool_size)

        def get_memory_pool_limit(self, pool):
            return self._workspace

    IBuilderConfig = cls("IBuilderConfig", _IBuilderConfig)

    class _IHostMemory(object):
        def __init__(self, data):
            self._data = bytes(data)

        nbytes = property(lambda self: len(self._data))
        dtype = property(lambda self: DataType.UINT8)

        def __bytes__(self):  # the real one has the buffer protocol, which bytes() uses
            return self._data

    IHostMemory = cls("IHostMemory", _IHostMemory)

    class _Builder(object):
        def __init__(self, logger):
            check_logger(logger, "Builder")
            self._logger = logger

        platform_has_fast_fp16 = property(lambda self: bool(fast_fp16))
        platform_has_fast_int8 = property(lambda self: bool(fast_int8))

        def create_network(self, flags=0):
            return INetworkDefinition(flags)

        def create_builder_config(self):
            return IBuilderConfig()

        def create_optimization_profile(self):
            return IOptimizationProfile()

        def build_serialized_network(self, network, config):
            emit(self._logger, Severity.INFO, "[MemUsageChange] Init CUDA: CPU +0, GPU +0, now: "
                 "CPU 0, GPU 0 (MiB)")
            monitor = config._monitor
            phases = ("Building engine", "Timing tactics")
            try:
                for phase in phases:
                    if monitor is not None:
                        callback(monitor, "phase_start", phase, None if phase == phases[0]
                                 else phases[0], 2)
                        for step in range(2):
                            if callback(monitor, "step_complete", phase, step) is False:
                                self._error("Build was cancelled by the progress monitor.")
                    emit(self._logger, Severity.INFO, "{}: done".format(phase))
                header = self._build(network, config)
                if monitor is not None:
                    for phase in reversed(phases):
                        callback(monitor, "phase_finish", phase)
            except _BuildError as exc:
                emit(self._logger, Severity.ERROR, str(exc))
                return None
            emit(self._logger, Severity.INFO, "Total Host Persistent Memory: 0")
            blob = json.dumps(header, sort_keys=True).encode()
            return IHostMemory(MAGIC + struct.pack("<I", len(blob)) + blob + network._onnx)

        def _error(self, message):
            raise _BuildError(message)

        def _build(self, network, config):
            if network._onnx is None:
                self._error("the network is empty (nothing was parsed into it)")
            dynamic = [t for t in network._inputs if -1 in t._shape]
            profiles = config._profiles
            if dynamic and not profiles:
                self._error("Network has dynamic or shape inputs, but no optimization profile "
                            "has been defined.")
            profile_shapes = {}
            for tensor in network._inputs:
                if profiles:
                    shapes = profiles[0]._shapes.get(tensor._name)
                    if shapes is None:
                        if tensor in dynamic:
                            self._error("optimization profile is missing values for input "
                                        "'{}'".format(tensor._name))
                        shapes = (tensor._shape,) * 3
                else:
                    shapes = (tensor._shape,) * 3
                for dims in shapes:
                    if len(dims) != len(tensor._shape) or any(
                            want not in (-1, got) for want, got in zip(tensor._shape, dims)):
                        self._error("profile shape {} does not fit input '{}' of shape {}".format(
                            dims, tensor._name, tensor._shape))
                profile_shapes[tensor._name] = [list(s) for s in shapes]
            if "FP16" in config._flags and not fast_fp16:
                emit(self._logger, Severity.WARNING, "Half2 support requested on hardware without "
                     "native FP16 support, performance will be negatively affected.")
            scales = None
            if "INT8" in config._flags:
                if not fast_int8:
                    emit(self._logger, Severity.WARNING, "Int8 support requested on hardware "
                         "without native Int8 support, performance will be negatively affected.")
                explicit = any(l._type in (LayerType.QUANTIZE, LayerType.DEQUANTIZE)
                               for l in network._layers)
                if not explicit:
                    scales = self._calibrate(network, config)
            return {
                "double": "trt_double engine: NOT a TensorRT plan",
                "tensorrt_version": version, "gpu": gpu.name, "cc": list(gpu.cc),
                "flags": sorted(config._flags), "workspace": config._workspace,
                "profile": profile_shapes,
                "inputs": [[t._name, list(t._shape), t._dtype._name] for t in network._inputs],
                "outputs": [[t._name, list(t._shape), t._dtype._name] for t in network._outputs],
                "int8_scales": scales,
                "layer_precision": dict((l._name, l._precision._name) for l in network._layers
                                        if l._precision is not None),
            }

        def _calibrate(self, network, config):
            calibrator = config._calibrator
            if calibrator is None:
                self._error("Calibration failure occurred with no scaling factors detected. This "
                            "could be due to no int8 calibrator or insufficient custom scales for "
                            "network layers.")
            algorithm = callback(calibrator, "get_algorithm")
            tag = {"ENTROPY_CALIBRATION_2": "EntropyCalibration2",
                   "MINMAX_CALIBRATION": "MinMaxCalibration"}.get(algorithm._name,
                                                                  algorithm._name)
            header = "TRT-{}-{}".format(_version_number(version), tag)
            cache = callback(calibrator, "read_calibration_cache")
            if cache is not None and not isinstance(cache, (bytes, bytearray, memoryview)):
                raise TensorRTAbort("read_calibration_cache() returned {}: Unable to cast Python "
                                    "instance to C++ type (a buffer or None)".format(
                                        type(cache).__name__))
            if cache:
                lines = bytes(cache).decode("ascii", "replace").splitlines()
                if lines and lines[0].strip() == header:
                    return dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                emit(self._logger, Severity.WARNING, "The calibration cache header '{}' does not "
                     "match '{}': recalibrating".format(lines[0] if lines else "", header))
            batch = callback(calibrator, "get_batch_size")  # pybind11's int caster
            if isinstance(batch, (bool, float)) or not hasattr(batch, "__index__"):
                raise TensorRTAbort("get_batch_size() returned {!r}: Unable to cast Python "
                                    "instance of type {} to C++ type 'int'".format(
                                        batch, type(batch).__name__))
            names = [t._name for t in network._inputs]
            shapes = {}
            for tensor in network._inputs:
                if -1 in tensor._shape:
                    profile = config._calibration_profile
                    if profile is None:
                        self._error("the network has dynamic shapes: set a calibration profile "
                                    "(IBuilderConfig.set_calibration_profile)")
                    low, opt, high = profile._shapes.get(tensor._name, ((), (), ()))
                    if not low or low != high:
                        self._error("the calibration profile must fix the shape of '{}'".format(
                            tensor._name))
                    shape = opt
                else:
                    shape = tensor._shape
                if shape[0] != batch:
                    self._error("calibration batch size {} does not match the calibration shape "
                                "{} of '{}'".format(batch, shape, tensor._name))
                shapes[tensor._name] = (tuple(shape), _NP[tensor._dtype._name])
            amax = {}
            batches = 0
            session = _session(network._onnx)
            while True:
                pointers = callback(calibrator, "get_batch", names)
                if pointers is None:
                    break
                if len(pointers) != len(names):
                    self._error("get_batch returned {} pointers for {} inputs".format(
                        len(pointers), len(names)))
                feeds = {}
                for name, pointer in zip(names, pointers):
                    shape, dtype = shapes[name]
                    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
                    try:
                        raw = gpu.trt_region(int(pointer), nbytes)
                    except (FakeCudaError, TypeError, ValueError) as exc:
                        self._error("calibration batch for '{}': {}".format(name, exc))
                    feeds[name] = raw.copy().view(dtype).reshape(shape)
                values = dict(feeds)
                values.update(zip([o.name for o in session.get_outputs()],
                                  session.run(None, feeds)))
                for name, value in values.items():
                    amax[name] = max(amax.get(name, 0.0), float(np.max(np.abs(value))))
                batches += 1
            if not batches:
                self._error("Calibration failure occurred with no scaling factors detected. This "
                            "could be due to no int8 calibrator or insufficient custom scales for "
                            "network layers.")
            scales = {name: struct.pack(">f", max(value, 1e-8) / 127.0).hex()
                      for name, value in sorted(amax.items())}
            text = "\n".join([header] + ["{}: {}".format(k, v) for k, v in scales.items()]) + "\n"
            callback(calibrator, "write_calibration_cache", memoryview(text.encode("ascii")))
            return scales

    Builder = cls("Builder", _Builder)

    # -- progress monitor (10.x) -------------------------------------------------------------
    class _IProgressMonitor(object):
        def __init__(self):
            self._initialised = True

        def phase_start(self, phase_name, parent_phase, num_steps):
            pass

        def step_complete(self, phase_name, step):
            return True

        def phase_finish(self, phase_name):
            pass

    IProgressMonitor = cls("IProgressMonitor", _IProgressMonitor)

    # -- calibrators -----------------------------------------------------------------------
    class _IInt8Calibrator(object):
        _algorithm = "ENTROPY_CALIBRATION_2"

        def __init__(self):
            self._initialised = True

        def get_algorithm(self):
            return getattr(AlgoType, type(self)._algorithm)

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            return None

        def read_calibration_cache(self):
            return None

        def write_calibration_cache(self, cache):
            return None

    IInt8Calibrator = cls("IInt8Calibrator", _IInt8Calibrator)
    IInt8EntropyCalibrator2 = strict_class(
        "IInt8EntropyCalibrator2", (IInt8Calibrator,), {"_algorithm": "ENTROPY_CALIBRATION_2"},
        family, "IInt8EntropyCalibrator2", table["IInt8EntropyCalibrator2"])
    IInt8MinMaxCalibrator = strict_class(
        "IInt8MinMaxCalibrator", (IInt8Calibrator,), {"_algorithm": "MINMAX_CALIBRATION"},
        family, "IInt8MinMaxCalibrator", table["IInt8MinMaxCalibrator"])

    # -- runtime ---------------------------------------------------------------------------
    class _Runtime(object):
        def __init__(self, logger):
            check_logger(logger, "Runtime")
            self._logger = logger

        def deserialize_cuda_engine(self, serialized_engine):
            data = bytes(serialized_engine)
            if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
                emit(self._logger, Severity.ERROR, "1: [stdArchiveReader.cpp::StdArchiveReader] "
                     "Error Code 1: Serialization (Serialization assertion magicTagRead == kMAGIC_"
                     "TAG failed.Magic tag does not match)")
                return None
            (size,) = struct.unpack("<I", data[len(MAGIC):len(MAGIC) + 4])
            start = len(MAGIC) + 4
            try:
                header = json.loads(data[start:start + size].decode())
            except ValueError:
                emit(self._logger, Severity.ERROR, "Serialization: the engine header is corrupt")
                return None
            if header["tensorrt_version"] != version:
                emit(self._logger, Severity.ERROR, "The engine plan file is not compatible with "
                     "this version of TensorRT, expecting library version {} got {}, please "
                     "rebuild.".format(version, header["tensorrt_version"]))
                return None
            if tuple(header["cc"]) != gpu.cc:
                emit(self._logger, Severity.ERROR, "The engine plan file is generated on an "
                     "incompatible device, expecting compute {}.{} got compute {}.{}, please "
                     "rebuild.".format(gpu.cc[0], gpu.cc[1], *header["cc"]))
                return None
            return ICudaEngine(header, data[start + size:], self._logger)

    Runtime = cls("Runtime", _Runtime)

    class _IOTensor(object):
        def __init__(self, name, shape, dtype, is_input, profile):
            self.name, self.shape, self.dtype = name, tuple(shape), getattr(DataType, dtype)
            self.is_input, self.profile = is_input, profile
            self.itemsize = np.dtype(_NP[dtype]).itemsize

    class _ICudaEngine(object):
        def __init__(self, header, onnx_bytes, logger):
            self._header, self._onnx, self._logger = header, onnx_bytes, logger
            self._io = [_IOTensor(n, s, d, True, [tuple(p) for p in header["profile"][n]])
                        for n, s, d in header["inputs"]]
            self._io += [_IOTensor(n, s, d, False, None) for n, s, d in header["outputs"]]
            self._by_name = {t.name: t for t in self._io}

        num_optimization_profiles = property(lambda self: 1)
        name = property(lambda self: "trt_double engine")

        def create_execution_context(self):
            return IExecutionContext(self)

        def serialize(self):
            blob = json.dumps(self._header, sort_keys=True).encode()
            return IHostMemory(MAGIC + struct.pack("<I", len(blob)) + blob + self._onnx)

        def _tensor(self, key):
            if isinstance(key, int):
                if not 0 <= key < len(self._io):
                    raise IndexError("binding index {} out of range".format(key))
                return self._io[key]
            if key not in self._by_name:
                raise KeyError("no tensor named '{}'".format(key))
            return self._by_name[key]

        def _profile(self, key, profile_index):
            tensor = self._tensor(key)
            if profile_index != 0 or not tensor.is_input:
                raise RuntimeError("get profile shape: profile {} / tensor '{}' is not an input of "
                                   "a profile".format(profile_index, tensor.name))
            return [tuple(s) for s in tensor.profile]

        # 8.x binding API
        num_bindings = property(lambda self: len(self._io))
        max_batch_size = property(lambda self: 1)

        def get_binding_name(self, index):
            return self._tensor(int(index)).name

        def get_binding_index(self, name):
            return self._io.index(self._tensor(name))

        def binding_is_input(self, index):
            return self._tensor(index).is_input

        def get_binding_shape(self, index):
            return self._tensor(index).shape

        def get_binding_dtype(self, index):
            return self._tensor(index).dtype

        def get_profile_shape(self, profile_index, binding):
            return self._profile(binding, profile_index)

        # 10.x tensor API
        num_io_tensors = property(lambda self: len(self._io))

        def get_tensor_name(self, index):
            return self._tensor(int(index)).name

        def get_tensor_mode(self, name):
            return TensorIOMode.INPUT if self._tensor(str(name)).is_input else TensorIOMode.OUTPUT

        def get_tensor_shape(self, name):
            return self._tensor(str(name)).shape

        def get_tensor_dtype(self, name):
            return self._tensor(str(name)).dtype

        def get_tensor_profile_shape(self, name, profile_index):
            return self._profile(str(name), profile_index)

    ICudaEngine = cls("ICudaEngine", _ICudaEngine)

    class _IExecutionContext(object):
        def __init__(self, engine):
            self._engine = engine
            self._shapes = {t.name: (t.shape if -1 not in t.shape else None)
                            for t in engine._io if t.is_input}
            self._addresses = {}
            self._output_shapes = {}

        engine = property(lambda self: self._engine)
        active_optimization_profile = property(lambda self: 0)

        def set_optimization_profile_async(self, profile_index, stream_handle):
            return profile_index == 0

        @property
        def all_binding_shapes_specified(self):
            return all(shape is not None for shape in self._shapes.values())

        def _set_shape(self, tensor, shape):
            shape = tuple(int(d) for d in shape)
            low, _, high = tensor.profile
            if not tensor.is_input or len(shape) != len(low) or any(
                    not a <= d <= b for a, d, b in zip(low, shape, high)):
                emit(self._engine._logger, Severity.ERROR,
                     "3: [executionContext.cpp::setInputShape] Error Code 3: API Usage Error "
                     "(Parameter check failed, condition: satisfyProfile. Set dimension {} for "
                     "tensor {} does not satisfy any optimization profile ({} .. {}))".format(
                         list(shape), tensor.name, list(low), list(high)))
                return False
            self._shapes[tensor.name] = shape
            return True

        def _shape(self, tensor):
            if tensor.is_input:
                shape = self._shapes[tensor.name]
                return tensor.shape if shape is None else shape
            if not self.all_binding_shapes_specified:
                return tensor.shape
            return self._outputs_for()[tensor.name]

        def _outputs_for(self):
            key = tuple(sorted(self._shapes.items()))
            shapes = self._output_shapes.get(key)
            if shapes is None:
                session = _session(self._engine._onnx)
                feeds = {t.name: np.zeros(self._shapes[t.name], dtype=_NP[t.dtype._name])
                         for t in self._engine._io if t.is_input}
                names = [o.name for o in session.get_outputs()]
                shapes = self._output_shapes[key] = dict(
                    zip(names, (tuple(v.shape) for v in session.run(None, feeds))))
            return shapes

        def _enqueue(self, pointers, stream_handle):
            logger = self._engine._logger
            if not self.all_binding_shapes_specified:
                missing = [n for n, s in self._shapes.items() if s is None]
                emit(logger, Severity.ERROR, "3: Parameter check failed: not all input shapes "
                     "are specified ({})".format(", ".join(missing)))
                return False
            try:
                stream = gpu.stream(int(stream_handle))
                regions = {}
                for tensor in self._engine._io:
                    shape = self._shape(tensor)
                    nbytes = int(np.prod(shape, dtype=np.int64)) * tensor.itemsize
                    regions[tensor.name] = (gpu.trt_region(int(pointers[tensor.name]), nbytes),
                                            shape)
            except (FakeCudaError, KeyError, TypeError) as exc:
                emit(logger, Severity.ERROR, "1: [enqueue] Cuda Runtime (invalid argument): "
                     "{}".format(exc))
                return False
            session = _session(self._engine._onnx)
            engine = self._engine
            gpu.counts["launch"] += 1

            def job():
                feeds = {}
                for tensor in engine._io:
                    if tensor.is_input:
                        raw, shape = regions[tensor.name]
                        feeds[tensor.name] = raw.copy().view(_NP[tensor.dtype._name]).reshape(shape)
                names = [o.name for o in session.get_outputs()]
                for name, value in zip(names, session.run(None, feeds)):
                    raw, shape = regions[name]
                    if tuple(value.shape) != tuple(shape):
                        raise FakeCudaError("output '{}' came out {} but {} was announced".format(
                            name, value.shape, shape))
                    # in the engine's type: 8.x narrows ONNX INT64 (ArgMax's indices) to INT32
                    dtype = _NP[engine._by_name[name].dtype._name]
                    value = np.ascontiguousarray(value, dtype=dtype)
                    raw[:] = value.view(np.uint8).reshape(-1)
            stream.queue.append(job)
            return True

        # 8.x binding API
        def set_binding_shape(self, binding, shape):
            return self._set_shape(self._engine._tensor(int(binding)), shape)

        def get_binding_shape(self, binding):
            return self._shape(self._engine._tensor(int(binding)))

        def execute_async_v2(self, bindings, stream_handle, input_consumed=None):
            bindings = list(bindings)
            if len(bindings) != len(self._engine._io):
                emit(self._engine._logger, Severity.ERROR, "execute_async_v2: {} bindings for {} "
                     "tensors".format(len(bindings), len(self._engine._io)))
                return False
            return self._enqueue({t.name: p for t, p in zip(self._engine._io, bindings)},
                                 stream_handle)

        def execute_v2(self, bindings):
            raise NotImplementedError("the double only runs asynchronously")

        # 10.x tensor API
        def set_input_shape(self, name, shape):
            return self._set_shape(self._engine._tensor(str(name)), shape)

        def get_tensor_shape(self, name):
            return self._shape(self._engine._tensor(str(name)))

        def set_tensor_address(self, name, memory):
            tensor = self._engine._tensor(str(name))
            try:
                gpu.trt_region(int(memory), 1)
            except FakeCudaError as exc:
                emit(self._engine._logger, Severity.ERROR, "setTensorAddress: {}".format(exc))
                return False
            self._addresses[tensor.name] = int(memory)
            return True

        def get_tensor_address(self, name):
            return self._addresses.get(str(name), 0)

        def execute_async_v3(self, stream_handle):
            missing = [t.name for t in self._engine._io if t.name not in self._addresses]
            if missing:
                emit(self._engine._logger, Severity.ERROR, "3: [executionContext.cpp::enqueueV3] "
                     "Error Code 3: API Usage Error (no address set for {})".format(missing))
                return False
            return self._enqueue(self._addresses, stream_handle)

    IExecutionContext = cls("IExecutionContext", _IExecutionContext)

    module = StrictModule("tensorrt", family, "", table[""],
                          "tensorrt TEST DOUBLE ({} API), not TensorRT".format(mode))
    members = {
        "__version__": version, "Logger": Logger, "ILogger": ILogger, "Builder": Builder,
        "Runtime": Runtime, "OnnxParser": OnnxParser, "ParserError": ParserError,
        "ErrorCode": ErrorCode, "NetworkDefinitionCreationFlag": NetworkFlag,
        "BuilderFlag": BuilderFlag, "LayerType": LayerType, "DataType": DataType,
        "CalibrationAlgoType": AlgoType, "IInt8Calibrator": IInt8Calibrator,
        "IInt8EntropyCalibrator2": IInt8EntropyCalibrator2,
        "IInt8MinMaxCalibrator": IInt8MinMaxCalibrator, "IBuilderConfig": IBuilderConfig,
        "INetworkDefinition": INetworkDefinition, "ITensor": ITensor, "ILayer": ILayer,
        "IOptimizationProfile": IOptimizationProfile, "IHostMemory": IHostMemory,
        "ICudaEngine": ICudaEngine, "IExecutionContext": IExecutionContext, "nptype": nptype,
        "volume": volume, "MemoryPoolType": MemoryPoolType, "TensorIOMode": TensorIOMode,
        "IProgressMonitor": IProgressMonitor,
    }
    for name, value in members.items():
        if name in table[""]:
            object.__setattr__(module, name, value)
    return module


class _BuildError(Exception):
    pass


def engine_header(engine_bytes):
    """The JSON header of an engine the double built (precision flags, profile, workspace ...)."""
    data = bytes(engine_bytes)
    if not data.startswith(MAGIC):
        raise ValueError("not an engine of the trt_double")
    (size,) = struct.unpack("<I", data[len(MAGIC):len(MAGIC) + 4])
    return json.loads(data[len(MAGIC) + 4:len(MAGIC) + 4 + size].decode())
