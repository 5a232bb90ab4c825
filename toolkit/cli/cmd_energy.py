"""``toolkit energy``: the analytical per-layer energy model of an ONNX model (Yang et al. 2017)."""
import json

import click

from toolkit.cli.options import POSITIVE_INT, data_option, json_flag, progress_option


@click.command("energy")
@click.argument("model")
@click.option("--bits", type=click.Choice(["16", "8"]), default="16", show_default=True,
              help="Data and MAC width: 8-bit moves half the bytes (every access x 0.5) and a "
                   "MAC costs (8/16)^2 = 0.25 of a 16-bit one.")
@click.option("--batch", default=1, show_default=True, type=POSITIVE_INT,
              help="Images per inference: the value of a dynamic batch axis (a model whose ONNX "
                   "fixes the batch is computed at its own batch, and says so). Per-image "
                   "figures divide by the batch computed.")
@click.option("--weight-format", type=click.Choice(["auto", "dense", "sparse"]), default="auto",
              show_default=True,
              help="How weights are stored: sparse = non-zeros + a 4-bit index each; auto = the "
                   "smaller of the two, per layer.")
@click.option("--calibration", type=click.Path(dir_okay=False),
              help="Measurements JSON: a list of {\"onnx\": path, \"energy_mj_per_inference\": x} "
                   "measured on the device; fits mJ per unit so that figures are in mJ.")
@data_option("Measure activation sparsity on this data (e.g. digits:train, a .npz, an image "
             "folder; preprocessed as the model's metadata says): the share of zeros in "
             "each conv/fc layer's input, run with ONNX Runtime. Without it every "
             "activation counts as non-zero.", required=False)
@click.option("--data-samples", default=256, show_default=True, type=int,
              help="Use at most this many samples of --data.")
@json_flag("Print the estimate as JSON instead of a table.")
@progress_option()
def energy(model, bits, batch, weight_format, calibration, data, data_samples, as_json,
           no_progress):
    """Estimate the energy of one inference of MODEL (an ONNX file), layer by layer.

    Energy = MACs x 1 + accesses at each memory level x its cost: DRAM 200, global buffer 6,
    inter-PE array 2, register file 1 (normalized to one 16-bit MAC; Yang, Chen, Sze, CVPR 2017).
    Access counts come from a simplified row-stationary dataflow whose assumptions are listed in
    the energy_model docstring. Zero weights are skipped (pruned models cost less) and
    fewer bits cost less. Shapes come from ONNX shape inference.

    Figures are per inference (the batch computed: --batch, or the model's own fixed batch)
    and per image. With --data, the zeros of each conv/fc layer's input are measured on that
    data and skipped (MACs, register-file accesses, compressed DRAM reads): after ReLU often
    half of them.

    Without --calibration the figures are in normalized units: use them to compare models and
    layers. With measurements of a few engines on the device, one scale (mJ per unit, least
    squares through the origin) turns them into millijoules and the fit error is printed.

    \b
    Examples:
      toolkit energy model.onnx
      toolkit energy model.onnx --bits 8 --json > energy.json
      toolkit energy model.onnx --calibration measured.json
      toolkit energy model.onnx --data digits:train
    """
    from basics.errors import InputError
    from energy_model import EnergyModelConfig, estimate_onnx, fit_calibration

    if data_samples < 1:
        raise InputError("--data-samples must be at least 1, got {}".format(data_samples))
    activations = None
    if data is not None:
        activations = _measure(model, data, data_samples, not no_progress)
    config = EnergyModelConfig(bits=int(bits), batch=batch, weight_format=weight_format)
    fit = None
    if calibration:
        fit = fit_calibration(calibration, EnergyModelConfig(bits=int(bits),
                                                             weight_format=weight_format))
        config = config.calibrated(fit.mj_per_unit)
    estimate = estimate_onnx(model, config, activations)
    if as_json:
        data = estimate.to_dict()
        if fit is not None:
            data["calibration"] = fit.to_dict()
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    for line in estimate.lines():
        click.echo(line)
    if fit is not None:
        for line in fit.lines():
            click.echo(line)


def _measure(model, data, max_samples, progress):
    """The activation sparsity of ``model`` on ``data`` (at most ``max_samples`` samples)."""
    from calibration.sources import load_calibration_set
    from energy_model import measure_activation_sparsity
    calibration_set = load_calibration_set(data, model)
    return measure_activation_sparsity(model, calibration_set.images, calibration_set.name,
                                       max_samples=max_samples, progress=progress)
