"""Checks and conversions of ONNX files before an engine is built (``onnx`` imported lazily).

Malformed files fail here with one line (not parseable, ``onnx.checker`` fails, empty, missing)
instead of a backend's multi-line trace. Without the ``onnx`` package (common on a Jetson) only the
cheap checks run and the backend's own parser reports the rest.
"""
import importlib
import os

from basics.errors import InputError, MissingDependencyError
from basics.lazy import is_available, lazy_import

# ops that make an ONNX model an INT8 model ONNX Runtime runs as such (Q/DQ or QOperator format)
INT8_OPS = frozenset(["QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul",
                      "ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"])


def check_onnx_file(path, require_onnx=False):
    """Check the ONNX file at ``path``; returns its ``onnx.ModelProto``, or None without ``onnx``.

    InputError (one line) for a missing or empty file, bytes that do not parse as ONNX, or a model
    ``onnx.checker`` rejects. ``require_onnx=True`` raises MissingDependencyError without ``onnx``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError("no such ONNX file: {}".format(path))
    if os.path.getsize(path) == 0:
        raise InputError("{} is empty: not an ONNX model".format(path))
    if not require_onnx and not is_available("onnx"):
        return None
    onnx = lazy_import("onnx", "checking ONNX files")
    try:
        model = onnx.load(path)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise InputError("{} is not a valid ONNX model (cannot parse it: {})".format(
            path, _first_line(exc))) from None
    if not model.graph.node and not model.graph.output:
        # protobuf parses many random byte strings as an empty message
        raise InputError("{} is not a valid ONNX model (no graph in it)".format(path))
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - onnx.checker.ValidationError and friends
        raise InputError("{} fails the ONNX checker: {}".format(path, _first_line(exc))) from None
    return model


def int8_op_types(model):
    """Sorted op types in ``model`` (an ``onnx.ModelProto``) that carry INT8 quantization."""
    return sorted(set(node.op_type for node in _all_nodes(model.graph)) & INT8_OPS)


def convert_to_fp16(model):
    """``model`` with float16 weights and compute, float32 inputs/outputs kept (for ONNX Runtime).

    Uses ``onnxruntime.transformers.float16`` (shipped with onnxruntime); MissingDependencyError
    when this onnxruntime lacks it.
    """
    lazy_import("onnxruntime", "FP16 engines on ONNX Runtime")
    lazy_import("onnx", "FP16 engines on ONNX Runtime")
    try:
        float16 = importlib.import_module("onnxruntime.transformers.float16")
    except ImportError:
        raise MissingDependencyError(
            "FP16 on the ONNX Runtime backend needs onnxruntime.transformers.float16, which this "
            "onnxruntime lacks: pip install -U onnxruntime, or build fp32") from None
    try:
        return float16.convert_float_to_float16(model, keep_io_types=True)
    except Exception as exc:  # noqa: BLE001
        raise InputError("cannot convert the model to FP16: {}".format(_first_line(exc))) from None


def _all_nodes(graph):
    for node in graph.node:
        yield node
        for attr in node.attribute:  # sub-graphs of If / Loop / Scan
            if attr.g is not None and len(attr.g.node):
                for inner in _all_nodes(attr.g):
                    yield inner
            for sub in attr.graphs:
                for inner in _all_nodes(sub):
                    yield inner


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
