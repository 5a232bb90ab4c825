"""``toolkit export``: PyTorch model -> ONNX + metadata sidecar, with checks and a parity test."""
import json
import os

import click

from basics.errors import InputError
from toolkit.cli.options import force_option
from toolkit.cli.outputs import Output, Read, guard, model_source_reads


@click.command("export")
@click.argument("model")
@click.option("--weights", type=click.Path(dir_okay=False),
              help="State-dict file (torch.save(model.state_dict(), path)); loaded with "
                   "weights_only=True.")
@click.option("--input-shape", required=True, metavar="NxCxHxW",
              help="Input shape used for export, e.g. 1x3x32x32 (the batch is dynamic unless "
                   "--static-batch).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="ONNX file to write; the sidecar goes to <output>.json.")
@click.option("--static-batch", is_flag=True,
              help="Fix the batch axis to the one in --input-shape (default: dynamic batch).")
@click.option("--opset", default=13, show_default=True, type=int,
              help="ONNX opset. TensorRT 8.0/8.2 (JetPack 4.6, Nano) parse up to 13.")
@click.option("--input-name", default="input", show_default=True, help="Name of the ONNX input.")
@click.option("--output-name", default="logits", show_default=True,
              help="Name(s) of the ONNX output(s), comma separated for several.")
@click.option("--labels", help="Class names, comma separated (one per output column).")
@click.option("--labels-file", type=click.Path(dir_okay=False),
              help="Class names, one per line (or a JSON list).")
@click.option("--resize", metavar="HxW", help="Preprocessing: resize raw images to HxW "
                                              "(must equal the input's HxW).")
@click.option("--mean", help="Preprocessing: per-channel mean subtracted after scaling to [0, 1], "
                             "e.g. 0.485,0.456,0.406.")
@click.option("--std", help="Preprocessing: per-channel std divided by, e.g. 0.229,0.224,0.225.")
@click.option("--channel-order", type=click.Choice(["RGB", "BGR", "L"], case_sensitive=False),
              metavar="[RGB|BGR|L]",
              help="Channel order the model expects [default: L for 1 channel, RGB for 3].")
@click.option("--parity-inputs", type=click.Path(dir_okay=False),
              help="Extra parity inputs: .npz with array 'images' (or 'x'), or .npy; float = "
                   "model-ready NCHW, uint8 = raw images (preprocessed as above).")
@click.option("--tolerance", default=1e-4, show_default=True, type=float,
              help="Absolute parity bound (fp32).")
@click.option("--rtol", default=1e-4, show_default=True, type=float,
              help="Relative parity bound: pass when |onnx - torch| <= tolerance + rtol * |torch|.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the random inputs.")
@force_option()
def export(model, weights, input_shape, output, static_batch, opset, input_name, output_name, labels,
           labels_file, resize, mean, std, channel_order, parity_inputs, tolerance, rtol, seed,
           force):
    """Export a PyTorch MODEL to ONNX, check it, and write a metadata sidecar.

    MODEL is 'package.module:factory' (a function or class returning an nn.Module, called without
    arguments; also 'file.py:factory') or a TorchScript file saved with torch.jit.save.

    The export runs onnx.checker, ONNX shape inference (strict) and a parity check of ONNX Runtime
    against PyTorch on random inputs (batch 1 and 3 with a dynamic batch) and on --parity-inputs;
    a mismatch beyond the tolerance is an error and then nothing is written. The sidecar
    <output>.json holds input/output names, shapes, dtypes, class labels, preprocessing and the
    ONNX's sha256, so the device knows how to feed and read the model.

    \b
    Examples:
      toolkit export export.models:small_cnn --weights w.pt --input-shape 1x1x8x8 -o m.onnx \\
          --labels 0,1,2,3,4,5,6,7,8,9
      toolkit export model.ts --input-shape 1x3x224x224 -o model.onnx --resize 224x224 \\
          --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --labels-file classes.txt
      toolkit export my_net.py:build --input-shape 4x3x32x32 --static-batch -o net.onnx
    """
    from engines.preprocess import Preprocessing
    from engines.base import parse_shape
    from engines.model_metadata import ModelMetadata
    from export.model_loader import load_model
    from export.onnx_export import JETPACK4_MAX_OPSET, check_shape_size, export_to_onnx
    from export.parity import Tolerance

    guard([Output("-o", output, "ONNX model"), Output("-o", output + ".json", "model sidecar")],
          model_source_reads(model, weights) + [Read("the labels file", labels_file),
                                               Read("the parity inputs", parity_inputs)], force)
    shape = parse_shape(input_shape)
    check_shape_size(shape)
    if parity_inputs is not None:  # a bad file fails now, not after the model load and export
        from export.parity import load_parity_inputs
        load_parity_inputs(parity_inputs)
    tol = Tolerance(tolerance, rtol)
    class_names = _class_names(labels, labels_file)
    if channel_order is None and len(shape) == 4:
        channel_order = {1: "L", 3: "RGB"}.get(shape[1])
    preprocessing = Preprocessing(resize_hw=resize, mean=mean, std=std, channel_order=channel_order)
    if len(shape) == 4:
        preprocessing.check_input_shape(shape)  # fail before the slow model load
    source = model if weights is None else "{} (weights {})".format(model, os.path.basename(weights))
    metadata = ModelMetadata(class_names=class_names, preprocessing=preprocessing, source=source)
    if opset > JETPACK4_MAX_OPSET:
        click.echo("note: opset {} > {}: TensorRT 8.0/8.2 (JetPack 4.6) cannot parse it".format(
            opset, JETPACK4_MAX_OPSET), err=True)
    torch_model = load_model(model, weights)
    click.echo("exporting {} with input {} ({} batch), opset {}".format(
        model, input_shape, "static" if static_batch else "dynamic", opset), err=True)
    result = export_to_onnx(torch_model, output, shape, opset=opset, input_names=(input_name,),
                            output_names=output_name, dynamic_batch=not static_batch,
                            metadata=metadata, parity_inputs=parity_inputs, tolerance=tol, seed=seed)
    for line in result.lines():
        click.echo(line)


def _class_names(labels, labels_file):
    if labels is not None and labels_file is not None:
        raise InputError("give --labels or --labels-file, not both")
    if labels is not None:
        names = [part.strip() for part in labels.split(",")]
        if not all(names):
            raise InputError("--labels has an empty name: '{}'".format(labels))
        return names
    if labels_file is None:
        return None
    if not os.path.isfile(labels_file):
        raise InputError("no such labels file: {}".format(labels_file))
    with open(labels_file, "rb") as handle:
        try:
            text = handle.read().decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("labels file {} is not UTF-8 text".format(labels_file)) from None
    if labels_file.lower().endswith(".json"):
        try:
            names = json.loads(text)
        except ValueError as exc:
            raise InputError("labels file {} is not valid JSON: {}".format(labels_file, exc)) from None
        if not isinstance(names, list) or not all(isinstance(n, (str, int)) for n in names):
            raise InputError("labels file {} must hold a JSON list of names".format(labels_file))
        names = [str(n) for n in names]
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise InputError("labels file {} has no labels".format(labels_file))
    return names
