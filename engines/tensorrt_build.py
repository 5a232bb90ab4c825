"""Build a serialized TensorRT engine from an ONNX file, on the device that will run it.

``build_tensorrt(onnx_path, BuildConfig(...))`` -> ``(engine_bytes, facts)``: parses the ONNX
(explicit batch), adds one optimization profile from the config's min/opt/max batch, sets the
workspace, FP16/INT8 (checked against what the GPU supports) and, for INT8, a calibrator passed in
(as Polygraphy's ``CreateConfig(calibrator=...)``; see :mod:`engines.tensorrt_calibrator`) or one
reading ``config.calibration_cache``, then ``build_serialized_network`` with progress
(:mod:`engines.tensorrt_progress`). Features are chosen with ``hasattr`` so one code path serves
TensorRT 8.0/8.2 (Jetson Nano), 8.5/8.6 and 10.x; TensorRT 11 (no FP16/INT8 builder flags) builds
fp32 networks whose precision lives in the ONNX.

With ``config.confidence_head`` a classifier gets softmax and top-1 appended to its graph before
parsing (:mod:`engines.confidence_head`): the engine outputs ``probs``, ``confidence`` and
``label`` beside the logits, computed on the GPU. In FP16 and INT8 builds those layers are kept in
FP32 (``layer.precision``), so the head computes what the host would from the engine's logits.
"""
import contextlib
import os
import warnings

from basics.errors import InputError, MissingDependencyError
from basics.lazy import lazy_import
from engines import cuda_memory
from engines.base import TensorSpec
from engines.confidence_head import (HEAD_OUTPUTS, LABEL, NODE_PREFIX, head_for_build,
                                     names_have_head)
from engines.tensorrt_backend import get_logger, numpy_dtype
from engines.tensorrt_calibrator import make_calibrator, read_cache
from engines.tensorrt_progress import build_progress


def build_tensorrt(onnx_path, config, trt=None, calibrator=None, progress=None):
    """``(engine_bytes, facts)`` for ``onnx_path`` built with ``config`` (a BuildConfig).

    ``calibrator``: an INT8 calibrator (:func:`engines.tensorrt_calibrator.make_calibrator`) to use
    instead of one reading ``config.calibration_cache``; ``progress``: a callable taking one line
    of text, told how the build goes (None: silent). ``facts``: tensorrt_version, gpu_name,
    compute_capability ("5.3"), platform_has_fast_fp16/int8, inputs/outputs (TensorSpec dicts),
    notes (list of strings).
    """
    trt = trt or lazy_import("tensorrt", "building TensorRT engines")
    onnx_path = os.fspath(onnx_path)
    if not os.path.isfile(onnx_path):
        raise InputError("no such ONNX file: {}".format(onnx_path))
    logger = get_logger(trt)
    mark = len(logger.errors)
    device = cuda_memory.device_facts()
    if device["device_count"] < 1:
        raise MissingDependencyError("TensorRT is installed but no CUDA GPU is visible (is the "
                                     "NVIDIA driver loaded?); use --backend onnxruntime")
    notes = []
    model = None
    if config.confidence_head:
        model, note = head_for_build(onnx_path)
        notes.extend([note] if note else [])
    builder = trt.Builder(logger)
    # the parser owns the parsed weights: keep it alive until the engine is built
    network, parser = _parse(trt, builder, logger, onnx_path, model)
    del model
    builder_config = builder.create_builder_config()
    inputs = _tensors(trt, network, network.num_inputs, network.get_input)
    outputs = _tensors(trt, network, network.num_outputs, network.get_output)
    head = names_have_head(spec.name for spec in outputs)
    if head:
        notes.append(_head_note(outputs))
    elif not config.confidence_head:
        notes.append("confidence head: left out, as asked; the host computes softmax and top-1")
    profile_batches = _add_profile(builder, builder_config, inputs, config, onnx_path)
    _set_workspace(trt, builder_config, config.workspace_bytes)
    fast = {"fp16": getattr(builder, "platform_has_fast_fp16", None),
            "int8": getattr(builder, "platform_has_fast_int8", None)}
    own_calibrator = None
    if config.precision != "fp32":
        _check_precision(trt, config.precision, fast, device)
        if config.precision == "fp16" or fast["fp16"]:
            builder_config.set_flag(trt.BuilderFlag.FP16)
        if config.precision == "int8":
            builder_config.set_flag(trt.BuilderFlag.INT8)
            if fast["fp16"]:
                notes.append("int8: FP16 also enabled for layers without an INT8 kernel")
            if calibrator is None:
                calibrator = own_calibrator = _cache_calibrator(trt, network, config, onnx_path,
                                                                notes)
            if calibrator is not None:
                _set_calibrator(trt, builder, builder_config, calibrator, inputs, notes)
            if config.float_layers:
                _keep_float(trt, network, builder_config, config.float_layers, notes)
        if head:
            _head_in_fp32(trt, network, builder_config, notes)
    try:
        with _calibration_context(calibrator if config.precision == "int8" else None):
            with build_progress(trt, builder_config, logger, progress):
                serialized = builder.build_serialized_network(network, builder_config)
    finally:
        if own_calibrator is not None:
            own_calibrator.close()
    notes.extend(getattr(calibrator, "notes", None) or [])
    if serialized is None or getattr(calibrator, "error", None):
        # a calibrator's error stops the calibration early: never ship what came out of it
        raise InputError(_build_failure(trt, logger.errors_since(mark), calibrator, onnx_path))
    engine_bytes = bytes(serialized)
    del serialized, builder_config, parser, network, builder
    facts = {
        "tensorrt_version": str(trt.__version__),
        "gpu_name": device["gpu_name"],
        "compute_capability": device["compute_capability"],
        "platform_has_fast_fp16": None if fast["fp16"] is None else bool(fast["fp16"]),
        "platform_has_fast_int8": None if fast["int8"] is None else bool(fast["int8"]),
        "inputs": [spec.to_dict() for spec in inputs],
        "outputs": [spec.to_dict() for spec in outputs],
        "profile": profile_batches,
        "notes": notes,
    }
    return engine_bytes, facts


def platform_precisions(trt=None):
    """``{"fp16": bool or None, "int8": bool or None}``: what this GPU runs fast, as TensorRT's
    builder says (None: this TensorRT has no such query, e.g. 11)."""
    trt = trt or lazy_import("tensorrt", "building TensorRT engines")
    builder = trt.Builder(get_logger(trt))
    return {"fp16": getattr(builder, "platform_has_fast_fp16", None),
            "int8": getattr(builder, "platform_has_fast_int8", None)}


def _parse(trt, builder, logger, onnx_path, model=None):
    """``(network, parser)``: an explicit-batch network parsed from ``onnx_path`` (or from the
    serialized ``model``, that file edited); InputError listing the parser's errors."""
    flags = 0
    explicit = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
    if explicit is not None:  # required by 8.x, ignored by 10.x, gone in 11
        flags = 1 << int(explicit)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if model is not None:
        parsed = parser.parse(model, onnx_path)  # the path: where external weights would be
    else:
        parsed = parser.parse_from_file(onnx_path)
    if not parsed:
        errors = []
        for index in range(parser.num_errors):
            error = parser.get_error(index)
            errors.append("node {}: {}".format(error.node(), _one_line(error.desc())))
        raise InputError("TensorRT {} cannot parse {}: {}".format(
            trt.__version__, onnx_path, "; ".join(errors) or "no parser message"))
    return network, parser


def _tensors(trt, network, count, get):
    specs = []
    for index in range(count):
        tensor = get(index)
        name = tensor.name
        specs.append(TensorSpec(name, tuple(tensor.shape),
                                numpy_dtype(tensor.dtype, "tensor '{}'".format(name))))
    return specs


def _add_profile(builder, builder_config, inputs, config, onnx_path):
    """One optimization profile over the batch axis; other axes from the network."""
    dynamic = [spec for spec in inputs if -1 in spec.shape]
    for spec in inputs:
        if not spec.shape:
            continue
        if -1 in spec.shape[1:]:
            raise InputError(
                "input '{}' of {} has dynamic axes besides the batch ({}): export it with fixed "
                "height/width/channels".format(spec.name, onnx_path, _shape_text(spec.shape)))
        config.check_batch_axis(spec, onnx_path)
    if not dynamic:
        return None
    profile = builder.create_optimization_profile()
    for spec in dynamic:
        tail = tuple(spec.shape[1:])
        profile.set_shape(spec.name, (config.min_batch,) + tail, (config.opt_batch,) + tail,
                          (config.max_batch,) + tail)
    if builder_config.add_optimization_profile(profile) < 0:  # -1: TensorRT refused it
        raise InputError("TensorRT refused the optimization profile batch {}..{}..{} for {} "
                         "(see the TensorRT log)".format(config.min_batch, config.opt_batch,
                                                         config.max_batch, onnx_path))
    return {"min_batch": config.min_batch, "opt_batch": config.opt_batch,
            "max_batch": config.max_batch}


def _set_workspace(trt, builder_config, workspace_bytes):
    if hasattr(builder_config, "set_memory_pool_limit"):  # 8.4+
        builder_config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    else:  # 8.0 - 8.3
        builder_config.max_workspace_size = int(workspace_bytes)


def _check_precision(trt, precision, fast, device):
    """InputError unless this TensorRT has the flag and this GPU runs ``precision`` fast."""
    flag = precision.upper()
    if not hasattr(trt.BuilderFlag, flag) or fast[precision] is None:
        raise InputError(
            "TensorRT {} has no {} builder flag (strongly typed networks only): precision must live "
            "in the ONNX model (FP16 weights, or Q/DQ nodes for INT8); build such a model with "
            "--precision fp32".format(trt.__version__, flag))
    if not fast[precision]:
        supported = ["fp32"] + [p for p in ("fp16", "int8") if fast[p]]
        raise InputError(
            "this GPU ({}, compute capability {}) has no fast {}; it supports {}: build with "
            "--precision {}".format(device["gpu_name"], device["compute_capability"], flag,
                                    ", ".join(supported), supported[-1]))


def has_qdq_layers(trt, network):
    """True when the parsed network already holds Quantize/Dequantize layers (explicit INT8)."""
    kinds = (trt.LayerType.QUANTIZE, trt.LayerType.DEQUANTIZE)
    return any(network.get_layer(i).type in kinds for i in range(network.num_layers))


def _head_note(outputs):
    """What the build notes say of an engine with the confidence head."""
    label = [spec for spec in outputs if spec.name == LABEL][0]
    note = "confidence head: in the engine (outputs {}, computed by TensorRT)".format(
        ", ".join(HEAD_OUTPUTS))
    if label.dtype.itemsize < 8:
        note += "; label is {} in this TensorRT (no INT64): read back as int64".format(
            label.dtype.name)
    return note


def _head_in_fp32(trt, network, builder_config, notes):
    """Keep the confidence head's softmax, max and top-1 layers in FP32 (an FP16 or INT8 build
    would otherwise pick lower precision for them): ``layer.precision`` plus the flag that makes
    TensorRT obey it."""
    kinds = (trt.LayerType.SOFTMAX, trt.LayerType.REDUCE, trt.LayerType.TOPK)
    kept = 0
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if str(layer.name).startswith(NODE_PREFIX) and layer.type in kinds:
            layer.precision = trt.DataType.FLOAT
            kept += 1
    if not kept:
        return
    flag = _obey_precision(trt, builder_config)
    notes.append("confidence head: {} layer(s) kept in FP32 (layer.precision{})".format(
        kept, ", " + flag if flag else ""))


def _obey_precision(trt, builder_config):
    """Set the flag that makes TensorRT obey ``layer.precision``: OBEY_PRECISION_CONSTRAINTS
    (8.2+), else STRICT_TYPES (8.0); its name, or None when this TensorRT has neither."""
    flags = [name for name in ("OBEY_PRECISION_CONSTRAINTS", "STRICT_TYPES")
             if hasattr(trt.BuilderFlag, name)]
    if not flags:
        return None
    builder_config.set_flag(getattr(trt.BuilderFlag, flags[0]))
    return flags[0]


def _keep_float(trt, network, builder_config, names, notes):
    """Run the layers named ``names`` in FP32 (``layer.precision``), with the flag that makes
    TensorRT obey it: OBEY_PRECISION_CONSTRAINTS (8.2+), else STRICT_TYPES (8.0)."""
    wanted = set(names)
    kept = []
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if layer.name in wanted:
            layer.precision = trt.DataType.FLOAT
            kept.append(layer.name)
    missing = sorted(wanted - set(kept))
    if missing:
        raise InputError("no layer named {} in the network".format(", ".join(missing)))
    flag = _obey_precision(trt, builder_config)
    notes.append("int8: {} layer(s) kept in FP32: {} (layer.precision{})".format(
        len(kept), ", ".join(kept), ", " + flag if flag else ""))


def _cache_calibrator(trt, network, config, onnx_path, notes):
    """A calibrator that hands TensorRT ``config.calibration_cache``; None for a Q/DQ network."""
    if config.calibration_cache is None:
        if has_qdq_layers(trt, network):
            notes.append("int8: explicit quantization from the model's Q/DQ nodes")
            return None
        raise InputError(
            "--precision int8 needs a calibration cache (--calibration-cache FILE, written on this "
            "device by `toolkit calibrate MODEL.onnx --data DATA -o FILE`) or an ONNX with Q/DQ "
            "nodes (`toolkit calibrate MODEL.onnx --data DATA --format qdq`); {} has neither"
            .format(onnx_path))
    cache = read_cache(config.calibration_cache)
    calibrator = make_calibrator(cache_path=config.calibration_cache,
                                 algorithm=cache.algorithm or "entropy2",
                                 batch_size=config.opt_batch, trt=trt)
    notes.append("int8: calibration cache {} ({})".format(
        os.path.basename(str(config.calibration_cache)), cache.header))
    return calibrator


def _set_calibrator(trt, builder, builder_config, calibrator, inputs, notes):
    """Attach ``calibrator``; with dynamic shapes also a calibration profile at its batch size.

    TensorRT >= 10.1 warns (DeprecationWarning) on both calls; the build notes say it instead.
    """
    dynamic = [spec for spec in inputs if -1 in spec.shape]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        builder_config.int8_calibrator = calibrator
        if dynamic:
            profile = builder.create_optimization_profile()
            batch = int(calibrator.get_batch_size())
            for spec in dynamic:
                shape = (batch,) + tuple(spec.shape[1:])
                profile.set_shape(spec.name, shape, shape, shape)
            if builder_config.set_calibration_profile(profile) is False:
                raise InputError("TensorRT refused the calibration profile (batch {}) for inputs "
                                 "{}".format(batch, [spec.name for spec in dynamic]))
    if _version_at_least(trt, "10.1"):
        notes.append("int8: implicit (calibrated) INT8 is deprecated from TensorRT 10.1; a Q/DQ "
                     "ONNX is the future-proof path")


@contextlib.contextmanager
def _calibration_context(calibrator):
    """The calibrator's CUDA context, current during the build (a no-op without one)."""
    activate = getattr(calibrator, "activate", None)
    if activate is None:
        yield
        return
    with activate():
        yield


def _build_failure(trt, errors, calibrator, onnx_path):
    if calibrator is not None and getattr(calibrator, "error", None):
        return "INT8 calibration failed: {}".format(calibrator.error)
    if calibrator is not None and getattr(calibrator, "cache_rejected", False):
        return ("TensorRT {} rejected the calibration cache {} (written by another TensorRT "
                "version, or for another model): calibrate again on this device".format(
                    trt.__version__, calibrator.cache_path))
    detail = "; ".join(_one_line(e) for e in errors) or "see the TensorRT log"
    return "TensorRT {} could not build an engine from {}: {}".format(
        trt.__version__, onnx_path, detail)


def _version_at_least(trt, version):
    packaging_version = lazy_import("packaging.version", "comparing TensorRT versions")
    try:
        return packaging_version.parse(str(trt.__version__)) >= packaging_version.parse(version)
    except Exception:  # noqa: BLE001 - an unparsable version string: make no claim
        return False


def _shape_text(shape):
    return "x".join("N" if d == -1 else str(d) for d in shape)


def _one_line(text):
    return " ".join(str(text).split())
