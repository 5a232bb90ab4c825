"""PyTorch -> ONNX export with checks: ONNX checker, shape inference, parity against PyTorch.

The model is exported in memory (TorchScript exporter, ``dynamo=False``; opset 13 by default,
what TensorRT 8.0/8.2 on JetPack 4.6 parse), checked, run on ONNX Runtime next to PyTorch, and
only then written (atomically) together with its metadata sidecar ``<path>.json``.
"""
import io
import warnings

import numpy as np

from basics.errors import InputError
from basics.fileio import sha256_bytes, write_bytes_atomic
from basics.lazy import lazy_import
from engines.base import parse_shape
from engines.model_metadata import ModelMetadata, sidecar_path
from engines.onnxruntime_backend import OnnxRuntimeEngine
from export import parity as parity_mod

MIN_OPSET = 9
JETPACK4_MAX_OPSET = 13  # TensorRT 8.0/8.2's ONNX parser
_STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")


class ExportResult(object):
    """Where the export wrote, and how it checked out.

    ``parity`` is :meth:`export.parity.ParityReport.to_dict` (max_abs_error, max_rel_error, passed,
    atol, rtol, checks); ``shape_inference`` is ``"strict"`` or ``"lenient"`` (custom-domain ops).
    """

    def __init__(self, onnx_path, metadata_path, report, metadata, shape_inference, onnx_size_bytes):
        self.onnx_path = onnx_path
        self.metadata_path = metadata_path
        self.parity_report = report
        self.parity = report.to_dict()
        self.metadata = metadata
        self.shape_inference = shape_inference
        self.onnx_size_bytes = onnx_size_bytes

    def lines(self):
        """What the CLI prints: parity rows, checks, tensors, files written."""
        rows = self.parity_report.lines()
        rows.append("onnx checker: ok; shape inference: ok ({})".format(self.shape_inference))
        for label, specs in (("input", self.metadata.inputs), ("output", self.metadata.outputs)):
            for spec in specs:
                rows.append("{:<6} {:<10} {} {}".format(label, spec.name, "x".join(
                    "N" if d == -1 else str(d) for d in spec.shape), spec.dtype.name))
        rows.append("wrote {} ({:.1f} KiB, opset {}, sha256 {}...)".format(
            self.onnx_path, self.onnx_size_bytes / 1024.0, self.metadata.opset,
            self.metadata.onnx_sha256[:12]))
        rows.append("wrote {}".format(self.metadata_path))
        return rows


MAX_INPUT_VALUES = 1 << 27  # 512 MiB of float32 per example batch: far above any Jetson CNN input


def check_shape_size(shape):
    """InputError when an input of ``shape`` is too large to export and parity-check here (the
    example and parity batches are held in memory several times)."""
    count = 1
    for dim in shape:
        count *= max(int(dim), 1)
    if count > MAX_INPUT_VALUES:
        raise InputError("an input of shape {} holds {:,} values ({:.1f} GiB as float32); the "
                         "export handles at most {:,} per batch: give a smaller shape".format(
                             "x".join(str(d) for d in shape), count, count * 4.0 / (1 << 30),
                             MAX_INPUT_VALUES))


def export_to_onnx(model, path, input_shape, opset=13, input_names=("input",),
                   output_names=("logits",), dynamic_batch=True, metadata=None, parity_inputs=None,
                   tolerance=None, parity_batches=None, seed=0):
    """Export ``model`` (an ``nn.Module`` or TorchScript module) to ``path`` and ``<path>.json``.

    ``input_shape``: the full input shape (a tuple or ``"1x3x32x32"``); with ``dynamic_batch`` the
    first axis is named ``batch`` in the ONNX and parity runs at ``parity_batches`` (default 1 and 3).
    ``metadata``: a :class:`ModelMetadata` with class names / preprocessing / source to store; its
    inputs, outputs, hash, opset and parity are filled in here. ``parity_inputs``: an array or an
    ``.npz``/``.npy`` path of extra inputs (float: model-ready NCHW; uint8: raw images, passed through
    the metadata's preprocessing). ``tolerance``: a number (absolute bound) or a
    :class:`export.parity.Tolerance`. Raises InputError when a check fails; then nothing is written.
    """
    torch = lazy_import("torch", "exporting models to ONNX")
    onnx = lazy_import("onnx", "checking exported ONNX models")
    if not isinstance(model, torch.nn.Module):
        raise InputError("export needs a torch.nn.Module, got {}".format(type(model).__name__))
    shape = parse_shape(input_shape if isinstance(input_shape, str)
                        else "x".join(str(d) for d in input_shape))
    check_shape_size(shape)
    input_names = _names(input_names, "input")
    output_names = _names(output_names, "output")
    if len(input_names) != 1:
        raise InputError("export takes one input (one input shape), got names {}".format(input_names))
    if set(input_names) & set(output_names):
        raise InputError("input and output names must differ, both have {}".format(
            sorted(set(input_names) & set(output_names))))
    opset = _check_opset(opset)
    tolerance = parity_mod.Tolerance.coerce(tolerance)
    if metadata is None:
        metadata = ModelMetadata()
    elif not isinstance(metadata, ModelMetadata):
        raise InputError("metadata must be a ModelMetadata, got {}".format(type(metadata).__name__))
    metadata = ModelMetadata.from_dict(metadata.to_dict())  # a copy: the caller's stays as it was
    if len(shape) == 4:
        metadata.preprocessing.check_input_shape(shape)

    was_training = model.training
    model.eval()
    try:
        rng = np.random.RandomState(seed)
        example = rng.standard_normal(shape).astype(np.float32)
        try:
            outputs = parity_mod.torch_outputs(model, example)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - the model's forward may raise anything
            raise InputError("the model fails on an input of shape {}: {}: {}".format(
                "x".join(str(d) for d in shape), type(exc).__name__, _first_line(exc))) from None
        if len(outputs) != len(output_names):
            raise InputError("the model has {} output(s) but {} output name(s) were given: {}".format(
                len(outputs), len(output_names), output_names))
        _check_labels(metadata, outputs[0], output_names[0])

        onnx_bytes = _torch_export(torch, model, example, opset, input_names, output_names,
                                   dynamic_batch, [o.ndim for o in outputs])
        proto, mode = _check_and_infer(onnx, onnx_bytes)
        onnx_bytes = proto.SerializeToString()

        # other values than the traced example: a branch frozen by tracing must show up
        batches = parity_mod.random_batches(shape, dynamic_batch, parity_batches, seed + 1)
        if parity_inputs is not None:
            batches += _user_batches(parity_inputs, shape, dynamic_batch, metadata)
        engine = OnnxRuntimeEngine(onnx_bytes)
        try:
            report = parity_mod.check_parity(model, engine, batches, output_names, tolerance)
            inputs, outputs_specs = list(engine.inputs), list(engine.outputs)
        finally:
            engine.close()
    finally:
        model.train(was_training)
    if not report.passed:
        raise InputError(report.failure_text())

    metadata.inputs = inputs
    metadata.outputs = outputs_specs
    metadata.onnx_sha256 = sha256_bytes(onnx_bytes)
    metadata.opset = opset
    metadata.parity = report.to_dict()
    path = str(path)
    meta_path = sidecar_path(path)
    try:
        write_bytes_atomic(path, onnx_bytes)
        metadata.save(meta_path)
    except OSError as exc:
        raise InputError("cannot write {}: {}".format(path, exc.strerror or exc)) from None
    return ExportResult(path, meta_path, report, metadata, mode, len(onnx_bytes))


def _torch_export(torch, model, example, opset, input_names, output_names, dynamic_batch, out_ndims):
    dynamic_axes = None
    if dynamic_batch:
        dynamic_axes = {name: {0: "batch"} for name in input_names}
        dynamic_axes.update({name: {0: "batch"} for name, nd in zip(output_names, out_ndims) if nd})
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings and the dynamo=False deprecation notice
            torch.onnx.export(model, (torch.from_numpy(example),), buffer, dynamo=False,
                              opset_version=opset, input_names=list(input_names),
                              output_names=list(output_names), dynamic_axes=dynamic_axes,
                              do_constant_folding=True)
    except Exception as exc:  # noqa: BLE001 - unsupported operators and the like
        raise InputError("torch.onnx.export failed at opset {}: {}: {}".format(
            opset, type(exc).__name__, _first_line(exc))) from None
    return buffer.getvalue()


def _check_and_infer(onnx, onnx_bytes):
    """onnx.checker, then shape inference: strict unless the graph has custom-domain operators."""
    proto = onnx.load_from_string(onnx_bytes)
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:  # noqa: BLE001 - onnx.checker.ValidationError
        raise InputError("onnx.checker rejects the exported model: {}".format(_first_line(exc))) from None
    custom = sorted({node.domain for node in proto.graph.node if node.domain not in _STANDARD_DOMAINS})
    mode = "lenient: custom domains {}".format(", ".join(custom)) if custom else "strict"
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=not custom,
                                                     data_prop=True)
    except Exception as exc:  # noqa: BLE001 - onnx.shape_inference.InferenceError
        raise InputError("ONNX shape inference fails on the exported model: {}".format(
            _first_line(exc))) from None
    return inferred, mode


def _user_batches(parity_inputs, shape, dynamic_batch, metadata):
    source = "user inputs"
    if isinstance(parity_inputs, np.ndarray):
        images = parity_inputs
    else:
        source = str(parity_inputs)
        images = parity_mod.load_parity_inputs(parity_inputs)
    if images.dtype == np.uint8:  # raw images: preprocess as the device will
        images = metadata.preprocessing.apply(images)
    label = source if len(source) <= 22 else "..." + source[-19:]
    return parity_mod.user_batches(images, shape, dynamic_batch, label)


def _check_labels(metadata, first_output, name):
    if metadata.class_names is None:
        return
    if first_output.ndim < 1 or first_output.shape[-1] != len(metadata.class_names):
        raise InputError("{} class labels given but output '{}' has shape {} ({} per sample)".format(
            len(metadata.class_names), name, list(first_output.shape),
            first_output.shape[-1] if first_output.ndim else "a scalar"))
    if len(set(metadata.class_names)) != len(metadata.class_names):
        raise InputError("class labels must be unique")


def _names(names, what):
    if isinstance(names, str):
        names = [part.strip() for part in names.split(",")]
    names = [str(n) for n in names]
    if not names or any(not n for n in names):
        raise InputError("{} names must be non-empty, got {}".format(what, names))
    if len(set(names)) != len(names):
        raise InputError("{} names must be unique, got {}".format(what, names))
    return names


def _check_opset(opset):
    try:
        from torch.onnx._constants import ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET as top
    except ImportError:  # private module: older/newer torch
        top = 20
    value = None
    if isinstance(opset, int) and not isinstance(opset, bool):
        value = opset
    elif isinstance(opset, str) and opset.strip().isdigit():
        value = int(opset)
    if value is None or not MIN_OPSET <= value <= top:
        raise InputError("opset must be an integer from {} to {} (TensorRT 8.0/8.2 parse up to {}), "
                         "got {!r}".format(MIN_OPSET, top, JETPACK4_MAX_OPSET, opset))
    return value


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
