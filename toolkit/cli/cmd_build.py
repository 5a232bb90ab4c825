"""``toolkit build``: ONNX -> engine file + sidecar (TensorRT where installed, ONNX Runtime otherwise)."""
import json
import os

import click


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
@click.option("--workspace-mb", default=256, show_default=True, type=int,
              help="TensorRT builder workspace (scratch memory for tactics), in MiB.")
@click.option("--calibration-cache", type=click.Path(dir_okay=False),
              help="TensorRT INT8 calibration cache (from `toolkit calibrate`); int8 only.")
@click.option("--backend", type=click.Choice(["auto", "tensorrt", "onnxruntime"]), default="auto",
              show_default=True, help="auto: TensorRT when it is usable here, else ONNX Runtime.")
@click.option("--json", "as_json", is_flag=True, help="Print the sidecar as JSON.")
def build(onnx_path, output, precision, min_batch, opt_batch, max_batch, workspace_mb,
          calibration_cache, backend, as_json):
    """Build an engine from MODEL.onnx.

    With TensorRT (on a Jetson) this builds a serialized TensorRT engine with one optimization
    profile (min/opt/max batch) for this GPU and TensorRT version; copy it elsewhere and the load
    refuses it with the reason. Without TensorRT the engine holds the ONNX model for ONNX Runtime
    (CPU), with the same sidecar, so bench/run work the same way.

    The sidecar MODEL.engine.json records the backend, TensorRT version, GPU and compute
    capability, precision, batch profile, sha256 of the ONNX and of the engine, build time and the
    model's metadata (class names, preprocessing from MODEL.onnx.json); loads check it.

    \b
    Examples:
      toolkit build model.onnx                       # -> model.engine, fp32, batch 1..32
      toolkit build model.onnx --precision fp16 --max-batch 8 -o model_fp16.engine
      toolkit build model.onnx --precision int8 --calibration-cache model.cache
      toolkit build model_qdq.onnx --precision int8 --backend onnxruntime
    """
    from engines.build import build_engine
    from engines.build_config import BuildConfig
    from engines.engine_file import sidecar_path

    config = BuildConfig(precision=precision, min_batch=min_batch, opt_batch=opt_batch,
                         max_batch=max_batch, workspace_mb=workspace_mb,
                         calibration_cache=calibration_cache, backend=backend)
    if output is None:
        output = os.path.splitext(onnx_path)[0] + ".engine"
    sidecar = build_engine(onnx_path, output, config)
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
