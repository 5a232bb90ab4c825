"""Load an engine file (or a plain ONNX model) as an :class:`engines.base.Engine`.

``load_engine("model.engine")`` reads the sidecar, checks the bytes (size, sha256) and what they were
built for, and dispatches on the backend: ONNX Runtime engines load anywhere ONNX Runtime is
installed; TensorRT engines only where the TensorRT version, GPU name and compute capability match
the build (each backend's ``load`` in :mod:`engines.backends`, which constructs the engine with its
metadata and batch bounds). ``load_engine("model.onnx")`` runs the ONNX on ONNX Runtime directly
(identity: the file's sha256, metadata: its ``model.onnx.json`` when present); a Q/DQ model runs in
the form this CPU takes (:mod:`engines.cpu_int8`), never as signed S8S8.
"""
import os

from basics.errors import EngineCompatibilityError, InputError
from basics.fileio import sha256_file
from basics.lazy import lazy_import
from engines.backends import get_backend
from engines.engine_file import read_engine, version_text


def load_engine(path, threads=0, providers=None, confidence_head=False):
    """The engine at ``path`` (``.engine`` + sidecar, or ``.onnx``), checked and ready to ``infer``.

    ``threads``: ONNX Runtime intra-op threads (0: its default); ``providers``: ONNX Runtime
    providers (names, aliases ``cpu``/``cuda``/``tensorrt`` or ``auto``; default CPU). Both are
    ignored by TensorRT engines. ``confidence_head``: ONNX Runtime runs the model with softmax
    and top-1 appended to its graph (:mod:`engines.confidence_head`; when ``onnx`` is installed).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError("no such engine or ONNX file: {}".format(path))
    if path.lower().endswith(".onnx"):
        return _load_onnx(path, threads, providers, confidence_head)
    engine_bytes, sidecar = read_engine(path)
    return get_backend(sidecar.backend).load(engine_bytes, sidecar, path, threads=threads,
                                             providers=providers,
                                             confidence_head=confidence_head)


def _load_onnx(path, threads, providers, confidence_head=False):
    from engines.model_metadata import ModelMetadata, sidecar_path
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    lazy_import("onnxruntime", "running ONNX models")
    onnx_sha256 = sha256_file(path)  # read once: the identity, and the sidecar's check
    metadata = ModelMetadata.for_model(path, verify=False)
    if metadata is not None and metadata.onnx_sha256 and metadata.onnx_sha256 != onnx_sha256:
        raise InputError("{} describes another model (sha256 {}..., the file has {}...): "
                         "re-export it or delete the stale sidecar".format(
                             sidecar_path(path), metadata.onnx_sha256[:12], onnx_sha256[:12]))
    return OnnxRuntimeEngine(_cpu_int8_model(path), providers=providers, threads=threads,
                             identity=onnx_sha256, metadata=metadata,
                             confidence_head=confidence_head)


def _cpu_int8_model(path):
    """``path``, or for a Q/DQ model with signed activations the bytes of the form this CPU runs
    without saturating (:mod:`engines.cpu_int8`; needs ``onnx``, else the file runs as it is)."""
    from basics.lazy import is_available
    with open(path, "rb") as handle:
        data = handle.read()
    if b"QuantizeLinear" not in data or not is_available("onnx"):
        return path
    onnx = lazy_import("onnx", "running Q/DQ models")
    from engines.cpu_int8 import cpu_form, this_cpu_int8_path
    try:
        model = onnx.load_from_string(data)
    except Exception:  # noqa: BLE001 - onnxruntime reports a bad file in one line
        return path
    return cpu_form(model, this_cpu_int8_path()).SerializeToString()


def check_cpu_int8_form(sidecar, path="the engine", cpu_path=None):
    """EngineCompatibilityError when an ONNX Runtime INT8 engine holds 8-bit weights (``u8s8``,
    built on a CPU with VNNI or ARM) and this CPU needs 7-bit ones (x86 without VNNI: its 16-bit
    sums would saturate)."""
    if sidecar.precision != "int8" or sidecar.cpu_int8_form != "u8s8":
        return
    from engines.cpu_int8 import this_cpu_int8_path
    cpu_path = cpu_path or this_cpu_int8_path()
    if cpu_path.reduce_range:
        raise EngineCompatibilityError(
            "{} holds INT8 weights for a CPU with VNNI or ARM (u8s8), but this CPU ({}) would "
            "saturate them: rebuild it here from {} with `toolkit build --precision int8`".format(
                path, cpu_path.instructions, sidecar.source_onnx or "its Q/DQ ONNX"))


def check_tensorrt_target(sidecar, facts, path="the engine"):
    """EngineCompatibilityError unless ``facts`` (``runtime_facts()``) match what ``sidecar`` was
    built for: the same TensorRT version, GPU name and compute capability."""
    checks = (("TensorRT version", "tensorrt_version"), ("GPU", "gpu_name"),
              ("compute capability", "compute_capability"))
    for label, key in checks:
        built = version_text(getattr(sidecar, key))
        here = version_text(facts.get(key))
        if built != here:
            raise EngineCompatibilityError(
                "{} was built for {} {} but this machine has {} {}: TensorRT engines only run on "
                "the GPU and TensorRT version they were built with; rebuild it here from {} with "
                "`toolkit build`".format(path, label, built, label, here,
                                         sidecar.source_onnx or "its ONNX"))

