"""``toolkit prune``: energy-aware pruning of a PyTorch model (host side; torch imported lazily)."""
import json

import click

from basics.errors import InputError
from basics.lazy import lazy_import
from toolkit.cli.options import (NON_NEGATIVE_INT, POSITIVE_INT, force_option, json_flag,
                                 progress_option)
from toolkit.cli.outputs import Output, data_reads, guard, model_source_reads


@click.command("prune")
@click.argument("model_factory")
@click.option("--weights", type=click.Path(dir_okay=False),
              help="State dict of the model (torch.save(model.state_dict(), path)); without it the "
                   "model is first trained on the data's train split.")
@click.option("--data", default="digits", show_default=True,
              help="Labelled data: digits, digits16, digits-hard or an .npz (split 60/20/20 into "
                   "train / validation / test with --seed, by the rule of NAME:val elsewhere).")
@click.option("--target-energy", default=0.4, show_default=True, type=click.FloatRange(0.0, 1.0, min_open=True),
              help="Stop when the estimated energy is at most this fraction of the original.")
@click.option("--granularity", type=click.Choice(["weights", "channels"]), default="weights",
              show_default=True,
              help="weights: unstructured zeros (the paper's; saves energy on sparse accelerators, "
                   "not time on TensorRT/ONNX Runtime). channels: removes whole channels of plain "
                   "conv chains, so the layers become smaller and faster everywhere.")
@click.option("--max-accuracy-drop", default=0.01, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="Largest allowed fall of validation accuracy (0.01 = 1 point); a round that "
                   "loses more is undone.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Pruned ONNX to write (+ <output>.json metadata sidecar).")
@click.option("--report", type=click.Path(dir_okay=False),
              help="Where the JSON report goes [default: <output minus .onnx>.prune.json].")
@json_flag("Print the report as JSON instead of tables.")
@click.option("--bits", type=click.Choice(["16", "8"]), default="16", show_default=True,
              help="Bit width of the energy model.")
@click.option("--rounds", default=8, show_default=True, type=POSITIVE_INT,
              help="Most prune + fine-tune rounds.")
@click.option("--error-bound", default=0.01, show_default=True, type=click.FloatRange(0.0, min_open=True),
              help="First round's bound on the growth of a layer's relative output error; it "
                   "doubles each round.")
@click.option("--step", default=0.05, show_default=True, type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
              help="Share of a layer's weights (or channels) removed per greedy step.")
@click.option("--channel-multiple", default=8, show_default=True, type=POSITIVE_INT,
              help="Channel pruning keeps channel counts in multiples of this: ONNX Runtime's "
                   "CPU kernels and TensorRT's tensor cores are fastest on multiples of 8; other "
                   "counts can make a smaller layer slower.")
@click.option("--finetune-epochs", default=5, show_default=True, type=NON_NEGATIVE_INT,
              help="Fine-tuning epochs after each round (0: none).")
@click.option("--finetune-lr", default=2e-3, show_default=True, type=click.FloatRange(0.0, min_open=True),
              help="Learning rate of the fine-tuning (Adam, cosine schedule).")
@click.option("--train-epochs", default=15, show_default=True, type=NON_NEGATIVE_INT,
              help="Training epochs when no --weights are given.")
@click.option("--calibration-samples", default=256, show_default=True, type=POSITIVE_INT,
              help="Training images used for the least-squares refit.")
@click.option("--latency-batch", default=256, show_default=True, type=NON_NEGATIVE_INT,
              help="Batch at which the original and pruned ONNX are timed on ONNX Runtime (CPU, "
                   "1 thread); 0 skips the timing.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the split and training.")
@progress_option()
@force_option()
def prune(model_factory, weights, data, target_energy, granularity, max_accuracy_drop, output,
          report, as_json, bits, rounds, error_bound, step, channel_multiple, finetune_epochs,
          finetune_lr, train_epochs, calibration_samples, latency_batch, seed, no_progress, force):
    """Prune MODEL_FACTORY for energy (Yang, Chen, Sze, CVPR 2017) and export it to ONNX.

    MODEL_FACTORY is 'package.module:factory' (or 'file.py:factory'), called without arguments;
    a TorchScript file cannot be pruned (its layers cannot be rebuilt).
    Each round visits the layers from the most to the least energy-hungry (the `toolkit energy`
    model), removes the smallest weights (or channels) while a least-squares refit keeps the
    layer's output error within a bound, then fine-tunes the network with the pruning fixed.
    Rounds repeat until the energy target is met or the validation accuracy would fall by more
    than --max-accuracy-drop. The path of energy and accuracy is printed and written as JSON.

    Energies are estimates in normalized units (one 16-bit MAC = 1), not measurements; the ONNX
    Runtime latency of the original and the pruned model is measured (--latency-batch). Only
    channel pruning can make the model faster there.

    \b
    Examples:
      toolkit prune export.models:small_cnn --data digits --target-energy 0.4 -o pruned.onnx
      toolkit prune export.models:small_cnn --weights w.pt --granularity channels \\
          --max-accuracy-drop 0.005 -o small.onnx
    """
    torch = lazy_import("torch", "pruning PyTorch models")
    from basics.fileio import write_json_atomic
    from calibration.datasets import load_dataset
    from calibration.splits import whole_data
    from engines.model_metadata import ModelMetadata
    from export import training
    from export.model_loader import load_model
    from export.onnx_export import export_to_onnx
    from export.pruning import PruneConfig, compare_latency, onnx_bytes, prune_model
    from energy_model import EnergyModelConfig

    report = report or _default_report(output)
    guard([Output("-o", output, "ONNX model"), Output("-o", output + ".json", "model sidecar"),
           Output("--report", report, "JSON file")],
          model_source_reads(model_factory, weights) + data_reads(data), force)
    if train_epochs < 1 and weights is None:
        raise InputError("--train-epochs must be at least 1 when no --weights are given")
    config = PruneConfig(target_energy=target_energy, granularity=granularity,
                         max_accuracy_drop=max_accuracy_drop, error_bound=error_bound, step=step,
                         max_rounds=rounds, finetune_epochs=finetune_epochs,
                         finetune_lr=finetune_lr,
                         channel_multiple=channel_multiple,
                         calibration_samples=calibration_samples,
                         energy=EnergyModelConfig(bits=int(bits)), seed=seed)
    dataset = load_dataset(whole_data(data, "pruning"), seed=seed)
    if dataset.labels is None:
        raise InputError("--data {} has no labels; pruning needs labelled data".format(data))
    train, val, test = dataset.split(seed=seed)
    if min(len(train), len(val)) < 2:
        raise InputError("--data {} is too small to split into train / validation / test".format(data))
    torch.manual_seed(seed)
    model = load_model(model_factory, weights)
    if isinstance(model, torch.jit.ScriptModule):
        raise InputError("{} is a TorchScript model, which cannot be pruned; give its "
                         "'package.module:factory' and --weights".format(model_factory))
    if weights is None:
        _train(training, model, train, train_epochs, seed, not no_progress)
    say = (lambda text: None) if as_json else (lambda text: click.echo(text, err=True))
    result = prune_model(model, train, val, config, test=test, progress=say)

    shape = (1,) + tuple(train.images.shape[1:])
    metadata = ModelMetadata(class_names=dataset.class_names, source="{} pruned ({})".format(
        model_factory, granularity))
    exported = export_to_onnx(result.model, output, shape, metadata=metadata)
    if latency_batch:
        result.latency = compare_latency(onnx_bytes(result.original, shape, dynamic_batch=True),
                                         exported.onnx_path, batch_size=latency_batch)
    data_out = result.to_dict()
    data_out.update({"model": model_factory, "weights": weights, "data": data,
                     "onnx": exported.onnx_path, "report": report})
    write_json_atomic(report, data_out)
    if as_json:
        click.echo(json.dumps(data_out, indent=2, sort_keys=True))
        return
    for line in result.lines():
        click.echo(line)
    click.echo("wrote {} and {}".format(exported.onnx_path, report))


def _train(training, model, data, epochs, seed, progress):
    from basics.progress import progress_bar
    bar = progress_bar(epochs, "train", "epoch", progress)
    try:
        training.train_classifier(model, data, training.TrainConfig(epochs=epochs, seed=seed),
                                  progress=lambda epoch, loss: (bar.update(1), bar.set_postfix_str(
                                      "loss={:.4f}".format(loss))))
    finally:
        bar.close()


def _default_report(output):
    stem = output[:-5] if output.lower().endswith(".onnx") else output
    return stem + ".prune.json"
