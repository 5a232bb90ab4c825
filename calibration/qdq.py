"""Explicit INT8 quantization: an fp32 ONNX -> a Q/DQ ONNX, calibrated through ONNX Runtime.

``quantize_qdq("model.onnx", images, "model.int8.onnx", QdqConfig(...))`` runs
``onnxruntime.quantization.quantize_static`` in QDQ format with settings TensorRT's ONNX parser
accepts: INT8 weights per output channel, INT8 activations, symmetric ranges (zero points 0),
weights kept float behind a QuantizeLinear -> DequantizeLinear pair and float biases (TensorRT
rejects DequantizeLinear on int8/int32 initializers). The result runs on ONNX Runtime anywhere and
builds as ``toolkit build --precision int8`` on TensorRT 8.x/10.x; it is the only INT8 path on
TensorRT 11 (no calibrators). The model is written atomically (quantized to a temp file in the same
folder, then ``os.replace``) together with its metadata sidecar ``<output>.json``.
"""
import contextlib
import io
import logging
import os
import tempfile

import numpy as np

from basics.errors import InputError, ToolkitError
from basics.fileio import set_final_mode, sha256_file
from basics.lazy import lazy_import

# algorithm -> onnxruntime.quantization.CalibrationMethod. "entropy2" and "minmax" are the names of
# TensorRT's calibrators; ONNX Runtime's entropy search runs on a 128-bin histogram (TensorRT's:
# 2048 bins), so on small models it often keeps the full range, like minmax. "percentile" clips
# each activation at its 99.999th percentile.
ALGORITHMS = {"entropy2": "Entropy", "minmax": "MinMax", "percentile": "Percentile"}
_ORT_NOISE = ("pre-processing before quantization",)  # its advice to run quant_pre_process


class QdqConfig(object):
    """How to quantize: ``algorithm`` (a key of :data:`ALGORITHMS`), ``batch_size`` (samples per
    calibration batch), ``max_batches`` (None: every full batch of the data), ``per_channel``
    (weight scales per output channel) and ``symmetric_activations`` (zero points 0: what TensorRT
    requires)."""

    def __init__(self, algorithm="entropy2", batch_size=8, max_batches=None, per_channel=True,
                 symmetric_activations=True):
        if algorithm not in ALGORITHMS:
            raise InputError("calibration algorithm must be one of {}, got '{}'".format(
                ", ".join(sorted(ALGORITHMS)), algorithm))
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise InputError("calibration batch size must be at least 1, got {}".format(batch_size))
        if max_batches is not None and int(max_batches) < 1:
            raise InputError("max_batches must be at least 1, got {}".format(max_batches))
        self.algorithm = algorithm
        self.batch_size = int(batch_size)
        self.max_batches = None if max_batches is None else int(max_batches)
        self.per_channel = bool(per_channel)
        self.symmetric_activations = bool(symmetric_activations)

    def to_dict(self):
        return {"algorithm": self.algorithm, "batch_size": self.batch_size,
                "max_batches": self.max_batches, "per_channel": self.per_channel,
                "symmetric_activations": self.symmetric_activations}


class QdqResult(object):
    """What :func:`quantize_qdq` wrote and how the Q/DQ model compares with the fp32 one.

    ``top1_agreement``: share of up to 256 calibration samples whose arg-max output is the same in
    both models (None for outputs that are not (N, classes)); ``max_abs_error``: the largest output
    difference on them; ``notes``: warnings (from ONNX Runtime, or TensorRT-compatibility issues).
    """

    def __init__(self, onnx_path, output_path, metadata_path, config, batches, samples, int8_ops,
                 top1_agreement, max_abs_error, compared, onnxruntime_version, size_bytes, notes,
                 gate_report=None, cpu_path=None):
        self.onnx_path = onnx_path
        self.output_path = output_path
        self.metadata_path = metadata_path
        self.config = config
        self.batches = batches
        self.samples = samples
        self.int8_ops = int8_ops
        self.top1_agreement = top1_agreement
        self.max_abs_error = max_abs_error
        self.compared = compared
        self.onnxruntime_version = onnxruntime_version
        self.size_bytes = size_bytes
        self.notes = notes
        self.gate_report = gate_report
        self.cpu_path = cpu_path

    def to_dict(self):
        data = {"onnx_path": self.onnx_path, "output_path": self.output_path,
                "metadata_path": self.metadata_path, "format": "qdq", "batches": self.batches,
                "samples": self.samples, "int8_ops": self.int8_ops,
                "top1_agreement": self.top1_agreement, "max_abs_error": self.max_abs_error,
                "compared_samples": self.compared, "onnxruntime_version": self.onnxruntime_version,
                "size_bytes": self.size_bytes, "notes": list(self.notes),
                "cpu_int8": None if self.cpu_path is None else self.cpu_path.to_dict(),
                "gate": None if self.gate_report is None else self.gate_report.to_dict()}
        data.update(self.config.to_dict())
        return data

    def lines(self, data_name=None):
        """What the CLI prints (``data_name``: what the calibration data was)."""
        config = self.config
        rows = ["quantized {} to Q/DQ INT8{} with ONNX Runtime {} ({} calibration, {} weights, {} "
                "activations): {} batches of {} = {} samples".format(
                    self.onnx_path, " on {}".format(data_name) if data_name else "",
                    self.onnxruntime_version, config.algorithm,
                    "per-channel" if config.per_channel else "per-tensor",
                    "symmetric" if config.symmetric_activations else "asymmetric",
                    self.batches, config.batch_size, self.samples)]
        if self.cpu_path is not None:
            rows.append("ONNX Runtime's CPU runs it as {} on this CPU ({}: {}); the file keeps "
                        "the signed symmetric form TensorRT wants".format(
                            self.cpu_path.form, self.cpu_path.instructions, self.cpu_path.reason))
        if self.gate_report is not None:
            rows.extend(self.gate_report.lines())
        rows.extend("warning: {}".format(note) for note in self.notes)
        rows.append("wrote {} ({:.1f} KiB; {}) and {}".format(
            self.output_path, self.size_bytes / 1024.0, ", ".join(self.int8_ops),
            self.metadata_path))
        return rows


def quantize_qdq(onnx_path, images, output_path, config=None, input_name=None, progress=False,
                 gate=None, data_name=None, seed=None):
    """Quantize ``onnx_path`` to the Q/DQ model ``output_path`` (+ its ``.json`` sidecar) with
    ``images`` (float32 NCHW, already preprocessed like the model expects) -> :class:`QdqResult`.

    ``input_name``: the model input to feed (default: its only input); ``progress``: progress bars
    on stderr (calibration, sensitivity sweep); ``gate``: an :class:`engines.int8_gate.Int8Gate`
    (default: the first 256 calibration images and the default bounds). Before anything is
    written, the CPU form of the Q/DQ model (:func:`engines.cpu_int8.cpu_form`, this CPU's path)
    runs next to the fp32 model; when it fails the gate nothing is written and
    :class:`engines.int8_gate.Int8GateError` says why. ``data_name``/``seed``: the calibration
    data, recorded in the sidecar so ``toolkit build`` can check again.
    """
    from engines.cpu_int8 import keep_float, quantized_layers, this_cpu_int8_path
    from engines.int8_gate import Int8Gate, run_gate
    from engines.model_metadata import ModelMetadata, sidecar_path
    config = config or QdqConfig()
    ort = lazy_import("onnxruntime", "quantizing ONNX models to Q/DQ INT8")
    quantization = lazy_import("onnxruntime.quantization", "quantizing ONNX models to Q/DQ INT8")
    onnx = lazy_import("onnx", "quantizing ONNX models to Q/DQ INT8")
    onnx_path, output_path = os.fspath(onnx_path), os.fspath(output_path)
    _check_paths(onnx_path, output_path)
    images = np.asarray(getattr(images, "images", images))
    if images.size == 0:
        raise InputError("the calibration set is empty")
    if images.ndim != 4:
        raise InputError("calibration images must be NCHW, got shape {}".format(images.shape))
    source_metadata = ModelMetadata.for_model(onnx_path)  # a stale sidecar fails before the work
    notes = []
    reference = _open(onnx_path)
    try:
        name = input_name or _only_input(reference, onnx_path)
    finally:
        reference.close()
    if gate is None:
        gate = Int8Gate(images, input_name=name, progress=progress)
    gate.input_name = gate.input_name or name
    path = this_cpu_int8_path()
    reader, tmp = _quantize_to_temp(quantization, onnx_path, output_path, images, name, config,
                                    notes, progress)
    try:
        model = onnx.load(tmp)
        ops = _check_quantized(model, onnx_path)
        report, float_layers = run_gate(lambda: _open(onnx_path),
                                        lambda layers: _open_cpu_form(model, path, layers),
                                        quantized_layers(model), gate)
        if float_layers:
            model = keep_float(model, float_layers)
            onnx.save(model, tmp)
        notes.extend(tensorrt_issues(model))
        quantized = _open(tmp)
        try:
            comparison = report.to_dict()
            comparison.update({"cpu_int8": path.to_dict(), "calibration_data": data_name,
                               "calibration_seed": seed})
            metadata = _metadata(source_metadata, onnx_path, quantized, model, comparison)
        finally:
            quantized.close()
        _fsync(tmp)
        set_final_mode(tmp, output_path)  # mkstemp's 0600 -> the umask's mode
        os.replace(tmp, output_path)
    except BaseException:
        _remove(tmp)
        raise
    metadata.onnx_sha256 = sha256_file(output_path)
    metadata.save(sidecar_path(output_path))
    return QdqResult(onnx_path, output_path, sidecar_path(output_path), config,
                     reader.batches_read, reader.batches_read * config.batch_size, ops,
                     report.agreement, report.max_abs_error, report.compared,
                     str(ort.__version__), os.path.getsize(output_path), notes,
                     gate_report=report, cpu_path=path)


def _open_cpu_form(model, path, float_layers):
    """The ONNX Runtime engine of ``model``'s CPU form for ``path``, ``float_layers`` in float."""
    from engines.cpu_int8 import cpu_form
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    return OnnxRuntimeEngine(cpu_form(model, path, float_layers).SerializeToString())


def tensorrt_issues(model):
    """What in a Q/DQ ``model`` (an ``onnx.ModelProto``) TensorRT's ONNX parser rejects: non-zero
    zero points, and DequantizeLinear of int8/int32 initializers (quantized weights or biases
    without a QuantizeLinear in front). Empty when TensorRT can build it."""
    numpy_helper = lazy_import("onnx.numpy_helper", "checking Q/DQ models")
    constants = dict((init.name, init) for init in model.graph.initializer)
    issues = []
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        if len(node.input) > 2 and node.input[2] in constants:
            if np.any(numpy_helper.to_array(constants[node.input[2]]) != 0):
                issues.append("{} '{}' has a non-zero zero point: TensorRT needs symmetric "
                              "quantization".format(node.op_type, node.name or node.output[0]))
        if node.op_type == "DequantizeLinear" and node.input[0] in constants:
            issues.append("DequantizeLinear '{}' reads the quantized initializer '{}' ({}): "
                          "TensorRT's parser takes only QuantizeLinear -> DequantizeLinear pairs "
                          "on float tensors (an onnxruntime from 2023 on keeps biases float)".format(
                              node.name or node.output[0], node.input[0],
                              numpy_helper.to_array(constants[node.input[0]]).dtype))
    return issues


def _check_paths(onnx_path, output_path):
    if not os.path.isfile(onnx_path):
        raise InputError("no such ONNX file: {}".format(onnx_path))
    if not output_path.lower().endswith(".onnx"):
        raise InputError("a Q/DQ model is an ONNX file: the output must end in .onnx, got {}"
                         .format(output_path))
    if os.path.abspath(output_path) == os.path.abspath(onnx_path):
        raise InputError("the output would overwrite the fp32 model {}: give another path (e.g. {})"
                         .format(onnx_path, default_output(onnx_path)))


def default_output(onnx_path):
    """``model.onnx`` -> ``model.int8.onnx``."""
    root = os.fspath(onnx_path)
    if root.lower().endswith(".onnx"):
        root = root[:-len(".onnx")]
    return root + ".int8.onnx"


def _count(images, config):
    count = len(images) // config.batch_size
    return count if config.max_batches is None else min(count, config.max_batches)


def _open(path):
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    return OnnxRuntimeEngine(path)


def _only_input(engine, onnx_path):
    if len(engine.inputs) != 1:
        raise InputError("{} has {} inputs ({}): name the one to calibrate".format(
            onnx_path, len(engine.inputs), ", ".join(spec.name for spec in engine.inputs)))
    return engine.inputs[0].name


def _quantize_to_temp(quantization, onnx_path, output_path, images, name, config, notes,
                      progress):
    """Run ``quantize_static`` into a temp file next to ``output_path``: ``(reader, temp path)``."""
    from basics.progress import progress_bar
    from calibration.sources import BatchReader
    bar = progress_bar(_count(images, config), "calibrate", "batch", progress)
    folder = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix="." + os.path.basename(output_path) + ".",
                                   suffix=".tmp.onnx", dir=folder)
    os.close(handle)
    extra = {"ActivationSymmetric": config.symmetric_activations, "WeightSymmetric": True,
             "AddQDQPairToWeight": True, "QuantizeBias": False}
    try:
        reader = BatchReader(images, name, config.batch_size, config.max_batches,
                             on_batch=lambda batch: bar.update(1))
        with _quiet(notes):
            quantization.quantize_static(
                onnx_path, tmp, reader, quant_format=quantization.QuantFormat.QDQ,
                per_channel=config.per_channel, activation_type=quantization.QuantType.QInt8,
                weight_type=quantization.QuantType.QInt8,
                calibrate_method=getattr(quantization.CalibrationMethod,
                                         ALGORITHMS[config.algorithm]),
                extra_options=extra)
        if reader.batches_read == 0:
            raise InputError("the calibration set is empty")
    except BaseException as exc:
        _remove(tmp)
        if isinstance(exc, ToolkitError) or not isinstance(exc, Exception):
            raise
        # onnxruntime raises ValueError, RuntimeError and its own types
        text = str(exc).strip()
        first_line = text.splitlines()[0] if text else "no message"
        raise InputError("ONNX Runtime could not quantize {}: {}: {}".format(
            onnx_path, type(exc).__name__, first_line)) from None
    finally:
        bar.close()
    return reader, tmp


def _check_quantized(model, onnx_path):
    """The INT8 op types in the quantized ``model``; InputError when there are none."""
    from engines.onnx_checks import int8_op_types
    ops = int8_op_types(model)
    if not ops:
        raise InputError("ONNX Runtime quantized nothing in {} (no operator it can quantize)"
                         .format(onnx_path))
    return ops


@contextlib.contextmanager
def _quiet(notes):
    """Keep ONNX Runtime's prints (stdout) and root-logger warnings off the terminal; warnings
    other than its advice to pre-process become ``notes``."""
    root = logging.getLogger()
    collector = _Collector()
    level = root.level
    root.addHandler(collector)  # a handler on root also stops logging.warning's basicConfig
    root.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.removeHandler(collector)
        root.setLevel(level)
        for message in collector.messages:
            if not any(noise in message for noise in _ORT_NOISE) and message not in notes:
                notes.append(message)


class _Collector(logging.Handler):
    def __init__(self):
        logging.Handler.__init__(self, logging.WARNING)
        self.messages = []

    def emit(self, record):
        try:
            self.messages.append(" ".join(record.getMessage().split()))
        except Exception:  # noqa: BLE001 - a bad log record must not break quantization
            pass


def _metadata(source, onnx_path, engine, model, comparison):
    """The Q/DQ model's sidecar: the fp32 model's class names and preprocessing (``source``), its
    own tensors and opset, and how it compares with the fp32 model (``parity``)."""
    from engines.model_metadata import ModelMetadata
    metadata = ModelMetadata() if source is None else ModelMetadata.from_dict(source.to_dict())
    metadata.inputs = list(engine.inputs)
    metadata.outputs = list(engine.outputs)
    opsets = [entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")]
    metadata.opset = opsets[0] if opsets else metadata.opset
    metadata.parity = dict(comparison, reference=os.path.basename(onnx_path),
                           reference_sha256=sha256_file(onnx_path), quantization="qdq int8")
    return metadata


def _fsync(path):
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass
