"""``toolkit calibrate``: INT8 calibration of an ONNX model: a TensorRT calibration cache, or a
Q/DQ ONNX quantized through ONNX Runtime."""
import json
import os

import click

from basics.errors import InputError, MissingDependencyError
from toolkit.cli.options import (POSITIVE_INT, batch_option, force_option, int8_gate_options,
                                 json_flag, progress_option, workspace_option)
from toolkit.cli.outputs import Output, data_reads, guard, sidecar_reads

FORMATS = ("cache", "qdq")
CACHE_ALGORITHMS = ("entropy2", "minmax")
QDQ_HINT = ("without it, --format qdq -o MODEL.int8.onnx quantizes through ONNX Runtime on any "
            "machine")


@click.command("calibrate")
@click.argument("onnx_path", metavar="MODEL.onnx")
@click.option("--data", required=True,
              help="Calibration data: digits[:train|val|test], digits16, digits-hard, a .npz file "
                   "or an image folder (one sub-folder per class). Use training data, not the "
                   "test set.")
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False),
              help="File to write [default: MODEL.cache, or MODEL.int8.onnx with --format qdq].")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="cache: a TensorRT calibration cache (needs TensorRT, on the device that will "
                   "build the engine); qdq: an ONNX with Quantize/DequantizeLinear nodes (ONNX "
                   "Runtime, any machine) [default: qdq when -o ends in .onnx, else cache].")
@click.option("--algorithm", type=click.Choice(["entropy2", "minmax", "percentile"]),
              default="entropy2", show_default=True,
              help="TensorRT's calibrators: entropy2 or minmax; qdq also offers percentile "
                   "(clips each activation at its 99.999th percentile).")
@batch_option(default=8, aliases=("--batch-size",),
              help="Images per calibration batch (a last partial batch is dropped).")
@click.option("--max-batches", default=None, type=POSITIVE_INT,
              help="Use at most this many batches [default: every full batch of --data].")
@workspace_option("cache: TensorRT builder workspace while calibrating, in MiB.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed of the derived data sets (digits-hard) and of the digits split.")
@int8_gate_options("qdq")
@json_flag("Print the result as one JSON object.")
@progress_option()
@force_option()
def calibrate(onnx_path, data, output, fmt, algorithm, batch, max_batches, workspace_mb, seed,
              eval_data, max_accuracy_drop, auto_fallback, as_json, no_progress, force):
    """Calibrate MODEL.onnx for INT8 on --data: write a TensorRT calibration cache, or a Q/DQ ONNX.

    The data is preprocessed as the model's metadata (MODEL.onnx.json, from `toolkit export`)
    says, then fed in batches.

    \b
    --format cache (TensorRT 8.x/10.x, on the device): builds the network once with TensorRT's
      entropy2 or minmax calibrator and writes the cache it produces. A cache belongs to one
      TensorRT version; `toolkit build --precision int8 --calibration-cache` uses it.
    --format qdq (any machine, no TensorRT needed): onnxruntime.quantization.quantize_static in
      QDQ format, INT8 weights per output channel, symmetric INT8 activations, float biases: a
      model TensorRT parses as explicit INT8 (`toolkit build --precision int8`, no cache) and
      ONNX Runtime runs as it is. The future-proof path: calibrators are deprecated from
      TensorRT 10.1 and gone in TensorRT 11.
      The accuracy gate: before writing, the form ONNX Runtime's CPU runs (unsigned activations,
      7-bit weights on x86 without VNNI) is compared with the fp32 model on 256 calibration
      samples; top-1 agreement under 95% (or, with --eval-data, a drop of more than
      --max-accuracy-drop points) fails with one line and writes nothing.

    \b
    Examples:
      toolkit calibrate model.onnx --data digits:train -o model.cache
      toolkit build model.onnx --precision int8 --calibration-cache model.cache
      toolkit calibrate model.onnx --data digits:train --format qdq -o model.int8.onnx
      toolkit build model.int8.onnx --precision int8
      toolkit calibrate model.onnx --data images/ --algorithm minmax --max-batches 64
      toolkit calibrate model.onnx --data digits:train -o m.int8.onnx --eval-data digits:test \\
          --max-accuracy-drop 0.5 --auto-fallback
    """
    fmt = _format(fmt, output)
    if output is None:
        output = _default_output(onnx_path, fmt)
    batch_size = batch
    outputs = [Output("-o", output, "calibration cache")] if fmt == "cache" else [
        Output("-o", output, "ONNX model"), Output("-o", output + ".json", "model sidecar")]
    reads = sidecar_reads(onnx_path, "MODEL.onnx") + data_reads(data) + data_reads(eval_data)
    guard(outputs, reads, force)
    if not os.path.isfile(onnx_path):
        raise InputError("no such ONNX file: {}".format(onnx_path))
    if max_accuracy_drop is not None and not eval_data:
        raise InputError("--max-accuracy-drop needs --eval-data (labelled held-out data)")
    if fmt == "cache" and (eval_data or max_accuracy_drop is not None or auto_fallback):
        raise InputError("--eval-data, --max-accuracy-drop and --auto-fallback are for --format "
                         "qdq (a calibration cache is checked when `toolkit build` uses it)")
    if fmt == "cache":
        report, lines = _cache(onnx_path, data, output, algorithm, batch_size, max_batches,
                               workspace_mb, seed)
    else:
        report, lines = _qdq(onnx_path, data, output, algorithm, batch_size, max_batches, seed,
                             not no_progress, eval_data, max_accuracy_drop, auto_fallback)
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    for line in lines:
        click.echo(line)


def _format(fmt, output):
    if fmt is None:
        return "qdq" if output is not None and output.lower().endswith(".onnx") else "cache"
    if fmt == "cache" and output is not None and output.lower().endswith(".onnx"):
        raise InputError("a calibration cache is not an ONNX model ({}): use --format qdq for a "
                         "Q/DQ model, or another -o".format(output))
    return fmt


def _default_output(onnx_path, fmt):
    if fmt == "qdq":
        from calibration.qdq import default_output
        return default_output(onnx_path)
    root = onnx_path[:-len(".onnx")] if onnx_path.lower().endswith(".onnx") else onnx_path
    return root + ".cache"


def _cache(onnx_path, data, output, algorithm, batch_size, max_batches, workspace_mb, seed):
    from calibration.sources import load_calibration_set
    if algorithm not in CACHE_ALGORITHMS:
        raise InputError("TensorRT's calibrators are {}; '{}' is for --format qdq".format(
            " and ".join(CACHE_ALGORITHMS), algorithm))
    _require_tensorrt()
    from calibration.trt_calibrator import calibrate_to_cache
    calibration_set = load_calibration_set(data, onnx_path, seed=seed)
    report = calibrate_to_cache(onnx_path, calibration_set.images, output, algorithm=algorithm,
                                batch_size=batch_size, max_batches=max_batches,
                                workspace_mb=workspace_mb)
    report.update({"format": "cache", "onnx_path": onnx_path, "data": calibration_set.name,
                   "batch_size": batch_size})
    engine = os.path.splitext(onnx_path)[0] + ".engine"
    lines = [
        "calibrated {} on {} with TensorRT {} ({}): {} batches of {} = {} samples".format(
            onnx_path, calibration_set.name, report["tensorrt_version"], algorithm,
            report["batches"], batch_size, report["samples"]),
        "wrote {} ({})".format(output, report["header"]),
        "next: toolkit build {} --precision int8 --calibration-cache {} -o {}".format(
            onnx_path, output, engine)]
    return report, lines


def _require_tensorrt():
    """MissingDependencyError (one line, naming the way out) unless TensorRT can calibrate here."""
    from basics.lazy import INSTALL_HINTS, is_available
    from engines.tensorrt_backend import tensorrt_available
    if tensorrt_available():
        return
    if not is_available("tensorrt"):
        raise MissingDependencyError(
            "a calibration cache needs TensorRT (run this on the device that will build the "
            "engine), and 'tensorrt' is not installed here: {}; {}".format(
                INSTALL_HINTS["tensorrt"], QDQ_HINT))
    raise MissingDependencyError(
        "TensorRT is installed but cannot run here (no CUDA GPU, or neither pycuda nor "
        "cuda-python); {}".format(QDQ_HINT))


def _qdq(onnx_path, data, output, algorithm, batch_size, max_batches, seed, progress,
         eval_data=None, max_accuracy_drop=None, auto_fallback=False):
    from basics.lazy import lazy_import
    from calibration.qdq import QdqConfig, quantize_qdq
    from calibration.sources import load_calibration_set, load_int8_gate
    config = QdqConfig(algorithm, batch_size=batch_size, max_batches=max_batches)
    lazy_import("onnxruntime.quantization", "quantizing ONNX models to Q/DQ INT8")
    lazy_import("onnx", "quantizing ONNX models to Q/DQ INT8")
    calibration_set = load_calibration_set(data, onnx_path, seed=seed)
    gate = load_int8_gate(onnx_path, calibration_set, eval_data, max_accuracy_drop,
                          auto_fallback, seed=seed, progress=progress)
    result = quantize_qdq(onnx_path, calibration_set.images, output, config,
                          input_name=calibration_set.input.name, progress=progress, gate=gate,
                          data_name=data, seed=seed)
    report = result.to_dict()
    report["data"] = calibration_set.name
    engine = os.path.splitext(output)[0] + ".engine"
    lines = result.lines(calibration_set.name) + [
        "next: toolkit build {} --precision int8 -o {}".format(output, engine)]
    return report, lines
