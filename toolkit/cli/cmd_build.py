"""``toolkit build``: ONNX -> engine file + sidecar (TensorRT where installed, ONNX Runtime otherwise)."""
import json
import os

import click

from basics.errors import InputError
from engines.backends import build_choices
from toolkit.cli.options import (force_option, int8_gate_options, json_flag, progress_option,
                                 workspace_option)
from toolkit.cli.outputs import Output, Read, data_reads, guard, sidecar_reads


@click.command("build")
@click.argument("onnx_path", metavar="MODEL.onnx")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Engine file to write [default: MODEL.engine]; the sidecar goes to "
                   "<output>.json.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32",
              show_default=True,
              help="fp16/int8 need a GPU with fast FP16/INT8 (the Nano has FP16, no INT8). On ONNX "
                   "Runtime fp16 converts the weights to float16 (I/O stays float32) and int8 needs a "
                   "model with Q/DQ nodes.")
@click.option("--min-batch", default=1, show_default=True, type=int,
              help="Smallest batch the engine accepts (the optimization profile's min).")
@click.option("--opt-batch", default=None, type=int,
              help="Batch TensorRT tunes its kernels for [default: --max-batch].")
@click.option("--max-batch", default=32, show_default=True, type=int,
              help="Largest batch the engine accepts.")
@workspace_option()
@click.option("--calibration-cache", type=click.Path(dir_okay=False),
              help="TensorRT INT8 calibration cache (from `toolkit calibrate`); int8 only.")
@click.option("--backend", type=click.Choice(build_choices()), default="auto",
              show_default=True, help="auto: TensorRT when it is usable here, else ONNX Runtime.")
@click.option("--no-confidence-head", is_flag=True,
              help="TensorRT: leave softmax and top-1 out of a classifier's engine (by default "
                   "they are appended to its graph, so TensorRT computes them on the GPU; the "
                   "logits stay an output either way).")
@click.option("--data", default=None,
              help="int8 on ONNX Runtime: calibration samples for the accuracy gate [default: the "
                   "data the Q/DQ model was calibrated on, from its sidecar].")
@int8_gate_options("int8")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed of derived data sets and of the digits split (--data, --eval-data).")
@progress_option()
@json_flag("Print the sidecar as JSON.")
@force_option()
def build(onnx_path, output, precision, min_batch, opt_batch, max_batch, workspace_mb,
          calibration_cache, backend, no_confidence_head, data, eval_data, max_accuracy_drop,
          auto_fallback, seed, no_progress, as_json, force):
    """Build an engine from MODEL.onnx.

    With TensorRT (on a Jetson) this builds a serialized TensorRT engine with one optimization
    profile (min/opt/max batch) for this GPU and TensorRT version; copy it elsewhere and the load
    refuses it with the reason. Without TensorRT the engine holds the ONNX model for ONNX Runtime
    (CPU), with the same sidecar, so bench/run work the same way.

    With TensorRT, a classifier (one output of shape N x classes) gets the confidence head: softmax
    and top-1 appended to its graph before parsing (kept in FP32 in fp16/int8 builds), so the
    engine outputs probs, confidence and label beside the logits and strategies read those
    instead of computing a softmax on the host (editing the graph needs the onnx package); the
    notes say whether the engine has it. --no-confidence-head leaves it out.

    INT8 on TensorRT: with --data (or --eval-data) the engine is compared with the fp32 model on
    ONNX Runtime the same way; --auto-fallback rebuilds it with the most sensitive layers in FP32.

    INT8 on ONNX Runtime: the engine holds the form this CPU runs without saturating (unsigned
    activations; 7-bit weights on x86 without VNNI, see `toolkit info`), built from the Q/DQ
    model's scales. Before it is written it is compared with the fp32 model on calibration samples
    (top-1 agreement under 95% fails) and, with --eval-data, on labelled held-out data.

    The sidecar MODEL.engine.json records the backend, TensorRT version, GPU and compute
    capability, precision, batch profile, sha256 of the ONNX and of the engine, build time and the
    model's metadata (class names, preprocessing from MODEL.onnx.json); loads check it.

    \b
    Examples:
      toolkit build model.onnx                       # -> model.engine, fp32, batch 1..32
      toolkit build model.onnx --precision fp16 --max-batch 8 -o model_fp16.engine
      toolkit build model.onnx --no-confidence-head  # TensorRT: logits only
      toolkit build model.onnx --precision int8 --calibration-cache model.cache
      toolkit build model_qdq.onnx --precision int8 --backend onnxruntime
      toolkit build model.int8.onnx --precision int8 --eval-data digits:test --auto-fallback
    """
    from engines.build import build_engine
    from engines.build_config import BuildConfig
    from engines.engine_file import sidecar_path

    if calibration_cache is not None and precision != "int8":
        raise InputError("--calibration-cache only applies to --precision int8")
    config = BuildConfig(precision=precision, min_batch=min_batch, opt_batch=opt_batch,
                         max_batch=max_batch, workspace_mb=workspace_mb,
                         calibration_cache=calibration_cache, backend=backend,
                         confidence_head=not no_confidence_head)
    if output is None:
        output = os.path.splitext(onnx_path)[0] + ".engine"
    reads = sidecar_reads(onnx_path, "MODEL.onnx") + [Read("the calibration cache",
                                                            calibration_cache)] + data_reads(data)
    guard([Output("-o", output, "engine"), Output("-o", sidecar_path(output), "engine sidecar")],
          reads, force)
    gate = _int8_gate(onnx_path, config, data, eval_data, max_accuracy_drop, auto_fallback, seed,
                      not no_progress)
    sidecar = build_engine(onnx_path, output, config, gate,
                           progress=lambda line: click.echo("  " + line, err=True))
    if as_json:
        click.echo(json.dumps(sidecar.to_dict(), indent=2, sort_keys=True))
        return
    click.echo("built {} ({:.1f} KiB) in {:.2f} s: {}".format(
        output, sidecar.engine_size_bytes / 1024.0, sidecar.build_seconds or 0.0,
        sidecar.describe()))
    for label, specs in (("input", sidecar.inputs), ("output", sidecar.outputs)):
        for spec in specs:
            click.echo("  {:<6} {:<12} {} {}".format(label, spec.name, "x".join(
                "N" if d == -1 else str(d) for d in spec.shape), spec.dtype.name))
    for note in sidecar.notes:
        click.echo("  note: {}".format(note))
    click.echo("  sidecar: {}".format(sidecar_path(output)))


def _int8_gate(onnx_path, config, data, eval_data, max_accuracy_drop, auto_fallback, seed,
               progress):
    """The INT8 accuracy gate of an INT8 build: always on ONNX Runtime (None: build_engine asks
    for --data), on TensorRT when a gate option is given; None for other precisions."""
    from basics.errors import InputError
    gate_options = data or eval_data or max_accuracy_drop is not None or auto_fallback
    if config.precision != "int8":
        if gate_options:
            raise InputError("--data, --eval-data, --max-accuracy-drop and --auto-fallback are "
                             "for --precision int8")
        return None
    from engines.backends import resolve_backend
    tensorrt = resolve_backend(config.backend).int8_gate_optional
    if tensorrt and not gate_options:
        return None  # TensorRT: the gate runs when asked for (it needs onnxruntime for fp32)
    if not os.path.isfile(onnx_path):
        return None  # build_engine says so
    from calibration.sources import load_calibration_set, load_int8_gate
    if data is None:
        from engines.model_metadata import ModelMetadata
        metadata = ModelMetadata.for_model(onnx_path)
        parity = (metadata.parity if metadata is not None else None) or {}
        data = parity.get("calibration_data")
        if parity.get("calibration_seed") is not None:
            seed = parity["calibration_seed"]
        if data is None and tensorrt:
            raise InputError("the INT8 accuracy gate compares with fp32 on calibration samples: "
                             "give --data DATA")
        if data is None:
            return None  # build_engine checks the model first, then asks for --data
    samples = load_calibration_set(data, onnx_path, seed=seed)
    return load_int8_gate(onnx_path, samples, eval_data, max_accuracy_drop, auto_fallback,
                          seed=seed, progress=progress)
