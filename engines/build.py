"""Build an engine file from an ONNX model: TensorRT where it is installed, ONNX Runtime otherwise.

``build_engine(onnx_path, output_path, BuildConfig(...))`` checks the ONNX, builds with the chosen
backend and writes ``output_path`` and its sidecar ``output_path.json`` atomically. The ONNX Runtime
"engine" is the ONNX model bytes (FP16: weights converted to float16, inputs/outputs kept float32;
INT8: the model must already hold Q/DQ nodes, and the engine holds the form this CPU runs without
saturation, see :mod:`engines.cpu_int8`) with the same sidecar, so every later step treats both
backends alike. An INT8 build on ONNX Runtime passes the accuracy gate (:mod:`engines.int8_gate`)
first, or writes nothing.
"""
import os
import time

import numpy as np

from basics import __version__
from basics.errors import InputError
from basics.fileio import sha256_file
from basics.lazy import lazy_import
from engines.backends import resolve_backend
from engines.build_config import BuildConfig
from engines.engine_file import EngineSidecar, version_text, write_engine
from engines.onnx_checks import check_onnx_file, convert_to_fp16, int8_op_types


def build_engine(onnx_path, output_path, config=None, gate=None, progress=None):
    """Build ``onnx_path`` into the engine file ``output_path`` (+ sidecar); returns the sidecar.

    ``gate``: an :class:`engines.int8_gate.Int8Gate` (calibration samples, optional eval data and
    bounds); an INT8 build on ONNX Runtime needs one. ``progress``: a callable taking one line of
    text about a long TensorRT build (None: silent)."""
    config = config or BuildConfig()
    onnx_path = os.fspath(onnx_path)
    output_path = os.fspath(output_path)
    if not os.path.isfile(onnx_path):
        raise InputError("no such ONNX file: {}".format(onnx_path))
    if output_path.lower().endswith(".onnx"):
        raise InputError("an engine file must not end in .onnx (its sidecar would clash with the "
                         "model's metadata): use e.g. {}".format(
                             os.path.splitext(output_path)[0] + ".engine"))
    if config.calibration_cache is not None:
        if config.precision != "int8":
            raise InputError("a calibration cache only applies to INT8 builds")
    backend = resolve_backend(config.backend)
    model = check_onnx_file(onnx_path, require_onnx=(
        backend.precision_needs_onnx and config.precision != "fp32"))
    metadata = _model_metadata(onnx_path)  # before a build of minutes: a stale sidecar fails now
    onnx_sha256 = sha256_file(onnx_path)
    started = time.time()
    engine_bytes, facts = backend.build(onnx_path, model, config, gate, progress=progress)
    notes = facts["notes"]
    sidecar = EngineSidecar(
        backend=backend.name, precision=config.precision, min_batch=config.min_batch,
        opt_batch=config.opt_batch, max_batch=config.max_batch, engine_sha256="",
        engine_size_bytes=0, inputs=facts["inputs"], outputs=facts["outputs"],
        workspace_mb=config.workspace_mb if backend.uses_workspace else None,
        tensorrt_version=facts.get("tensorrt_version"), gpu_name=facts.get("gpu_name"),
        compute_capability=version_text(facts.get("compute_capability")),
        onnxruntime_version=facts.get("onnxruntime_version"),
        source_onnx=os.path.basename(onnx_path), source_onnx_sha256=onnx_sha256,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        build_seconds=round(time.time() - started, 3), toolkit_version=__version__,
        metadata=metadata, notes=notes, cpu_int8_form=facts.get("cpu_int8_form"))
    return write_engine(output_path, engine_bytes, sidecar)


def build_tensorrt_engine(onnx_path, model, config, gate=None, progress=None):
    """``(engine bytes, facts)`` for the TensorRT backend; an INT8 build with ``gate`` runs the
    accuracy gate (and its fallback). ``facts["notes"]`` includes the gate's notes."""
    from engines.tensorrt_build import build_tensorrt
    if config.precision == "int8" and gate is not None:
        engine_bytes, facts, gate_notes = _tensorrt_int8(onnx_path, model, config, gate)
    else:
        engine_bytes, facts = build_tensorrt(onnx_path, config, progress=progress)
        gate_notes = ["int8 gate: not run (no calibration samples: give --data to compare "
                      "with fp32)"] if config.precision == "int8" else []
    facts = dict(facts)
    facts["notes"] = list(facts.get("notes", [])) + gate_notes
    return engine_bytes, facts


def build_onnxruntime(onnx_path, model, config, gate=None, progress=None):
    """``(model bytes, facts)`` for the ONNX Runtime backend, after a test run at min and max batch."""
    ort = lazy_import("onnxruntime", "building ONNX Runtime engines")
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    if config.calibration_cache is not None:
        raise InputError("--calibration-cache is for TensorRT's INT8 calibration; on ONNX Runtime "
                         "INT8 comes from a Q/DQ model (`toolkit calibrate MODEL.onnx --data DATA "
                         "--format qdq`)")
    notes = []
    form = None
    if config.precision == "fp16":
        model = convert_to_fp16(model)
        data = model.SerializeToString()
        notes.append("fp16: weights and compute converted to float16 "
                     "(onnxruntime.transformers.float16), inputs/outputs kept float32")
    else:
        with open(onnx_path, "rb") as handle:
            data = handle.read()
        if config.precision == "int8":
            ops = int8_op_types(model)
            if not ops:
                raise InputError(
                    "--precision int8 on ONNX Runtime needs a model that already holds Q/DQ nodes "
                    "(QuantizeLinear/DequantizeLinear); {} has none: quantize it first with "
                    "`toolkit calibrate {} --data DATA --format qdq`, or build fp32".format(
                        onnx_path, onnx_path))
            data, gate_notes, form = _cpu_int8(model, gate, onnx_path, config.float_layers)
            notes.append("int8: the model's own quantization ({})".format(", ".join(ops)))
            notes.extend(gate_notes)
    engine = OnnxRuntimeEngine(data, max_batch=config.max_batch, min_batch=config.min_batch)
    try:
        _check_batch_profile(engine, config, onnx_path)
    finally:
        engine.close()
    facts = {"inputs": [spec.to_dict() for spec in engine.inputs],
             "outputs": [spec.to_dict() for spec in engine.outputs],
             "onnxruntime_version": ort.__version__, "notes": notes,
             "cpu_int8_form": form}
    return data, facts


def _cpu_int8(model, gate, onnx_path, float_layers=()):
    """``(model bytes, notes, form)``: the CPU form of Q/DQ ``model`` for this CPU (``float_layers``
    without Q/DQ), after the gate."""
    from engines.cpu_int8 import cpu_form, float_reference, quantized_layers, this_cpu_int8_path
    from engines.int8_gate import run_gate
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    if gate is None:
        raise InputError("an INT8 build compares the INT8 model with fp32 on calibration samples "
                         "before writing it: give --data DATA (the data {} was calibrated "
                         "on)".format(onnx_path))
    path = this_cpu_int8_path()
    asked = list(float_layers)

    def with_asked(layers):
        return asked + [name for name in layers if name not in asked]
    report, float_layers = run_gate(
        lambda: OnnxRuntimeEngine(float_reference(model).SerializeToString()),
        lambda layers: OnnxRuntimeEngine(cpu_form(model, path, with_asked(layers))
                                         .SerializeToString()),
        [name for name in quantized_layers(model) if name not in asked], gate)
    notes = ["int8: ONNX Runtime CPU form {} ({}, {}: {}), built from the model's Q/DQ scales; "
             "never the signed S8S8 form".format(path.form, path.arch, path.instructions,
                                                  path.reason)]
    notes.extend("int8 gate: " + line for line in report.lines())
    return cpu_form(model, path, with_asked(float_layers)).SerializeToString(), notes, path.form


def _tensorrt_int8(onnx_path, model, config, gate):
    """``(engine bytes, facts, notes)`` of a TensorRT INT8 build that passed ``gate``: compared with
    the fp32 model on ONNX Runtime; the auto-fallback rebuilds with layers kept in floating point
    (a Q/DQ model: no Q/DQ in front of them; a calibrated one: ``layer.precision``)."""
    from engines.cpu_int8 import float_reference, quantized_layers
    from engines.int8_gate import run_gate
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    from engines.tensorrt_backend import TensorRTEngine
    lazy_import("onnxruntime", "the INT8 accuracy gate (the fp32 reference runs on ONNX Runtime)")
    if model is None:
        model = lazy_import("onnx", "the INT8 accuracy gate").load(onnx_path)
    qdq = bool(int8_op_types(model))
    if qdq:
        layers = quantized_layers(model)
    else:
        layers = [node.name for node in model.graph.node if node.name and node.op_type in (
            "Conv", "ConvTranspose", "Gemm", "MatMul")]
    built = {}  # float layers -> (engine bytes, facts): the sweep's timing reuses them

    def build(float_layers):
        key = tuple(float_layers)
        if key not in built:
            built[key] = _build_tensorrt_kept(onnx_path, model, config, qdq, key)
        return TensorRTEngine(built[key][0])

    reference = float_reference(model).SerializeToString() if qdq else onnx_path
    report, float_layers = run_gate(lambda: OnnxRuntimeEngine(reference), build, layers, gate)
    key = tuple(float_layers)
    if key not in built:
        build(key).close()
    engine_bytes, facts = built[key]
    return engine_bytes, facts, ["int8 gate: " + line for line in report.lines()]


def _build_tensorrt_kept(onnx_path, model, config, qdq, float_layers):
    """``build_tensorrt`` with ``float_layers`` in floating point: a Q/DQ model rebuilt without
    Q/DQ in front of them (a temp ONNX), a calibrated one with ``layer.precision``."""
    import tempfile

    from engines.cpu_int8 import keep_float
    from engines.tensorrt_build import build_tensorrt
    if qdq and float_layers:
        handle, path = tempfile.mkstemp(suffix=".onnx")
        os.close(handle)
        try:
            with open(path, "wb") as out:
                out.write(keep_float(model, float_layers).SerializeToString())
            return build_tensorrt(path, config)
        finally:
            os.remove(path)
    settings = config.to_dict()
    if not qdq:
        settings["float_layers"] = list(config.float_layers) + [
            name for name in float_layers if name not in config.float_layers]
    return build_tensorrt(onnx_path, BuildConfig(**settings))


def _check_batch_profile(engine, config, onnx_path):
    """Run zeros at the profile's min and max batch, like a TensorRT build validates its profile."""
    for spec in engine.inputs:
        if not spec.shape:
            continue
        config.check_batch_axis(spec, onnx_path)
        if -1 in spec.shape[1:]:
            return  # other dynamic axes: the sizes to try are unknown
    for batch in sorted(set([config.min_batch, config.max_batch])):
        feeds = {spec.name: np.zeros((batch,) + spec.shape[1:], dtype=spec.dtype)
                 for spec in engine.inputs}
        try:
            engine.infer(feeds)
        except InputError as exc:
            raise InputError("{} does not run at batch {}: {}".format(onnx_path, batch, exc)) from None


def _model_metadata(onnx_path):
    """The ONNX's ``<onnx>.json`` metadata as a dict, or None when it has none."""
    from engines.model_metadata import ModelMetadata
    metadata = ModelMetadata.for_model(onnx_path)
    return None if metadata is None else metadata.to_dict()

