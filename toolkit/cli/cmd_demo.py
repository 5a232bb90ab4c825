"""``toolkit demo``: the whole mission on bundled data (or an image folder), with a report."""
import os
import sys

import click

from basics.errors import InputError
from engines.backends import build_choices
from toolkit.cli.cmd_train import parse_input_shape
from toolkit.cli.options import power_options, progress_option
from toolkit.cli.outputs import guard
from toolkit.power.options import config_from_options


@click.command("demo")
@click.option("--data", "datasets", multiple=True, metavar="NAME|DIR",
              help="Data to run on: bundled digits / digits-hard (the default: both), or an "
                   "image folder with one sub-folder per class (repeatable).")
@click.option("--out", "out_dir", default="demo-out", show_default=True,
              type=click.Path(file_okay=False),
              help="Folder for every stage's outputs and report/.")
@click.option("--fresh", is_flag=True, help="Redo every stage instead of reusing cached outputs.")
@click.option("--input-shape", default=None, metavar="CxHxW",
              help="Image size for an image folder [default: from its first image, at most 32 "
                   "pixels a side].")
@click.option("--epochs", default=30, show_default=True, type=click.IntRange(1),
              help="Training epochs of every pool model.")
@click.option("--cbnet-epochs", default=40, show_default=True, type=click.IntRange(1),
              help="Training epochs of CBNet's converting autoencoder.")
@click.option("--prune-rounds", default=2, show_default=True, type=click.IntRange(0),
              help="Energy-aware pruning rounds of the large model (0: export it unpruned).")
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1),
              help="Runs of each strategy (each batch's median time is kept).")
@click.option("--backend", type=click.Choice(build_choices()), default="auto",
              show_default=True, help="Engine backend (auto: TensorRT when usable).")
@power_options(default_source="auto")
@progress_option()
def demo(datasets, out_dir, fresh, input_shape, epochs, cbnet_epochs, prune_rounds, repeats,
         backend, power_source, power_rate_hz, idle_s, power_sysfs_root, no_progress):
    """Run the whole toolkit on bundled data and write a report (about 75 s on 2 CPU cores the
    first time; a rerun reuses every stage's cached outputs and takes seconds).

    \b
    For each data set (digits and digits-hard by default):
      1. train a pool of small CNNs and a large baseline, and CBNet's converting
         autoencoder and lightweight classifier (PyTorch, host side)
      2. prune the large model with the energy model (channels), export all to ONNX
      3. build FP32 engines, and an INT8 engine of the large model calibrated on
         training images (TensorRT on a Jetson, ONNX Runtime elsewhere)
      4. choose the pair and threshold on the validation split with the rule of
         `toolkit pair select`
      5. run on the test split and on the duplicated protocol (every test image
         twice): the large model, the best single small model, the pair cascade,
         memo + cascade, CBNet, INT8 and the pruned model; energy is measured with
         a power source, else the analytical estimate (labelled ESTIMATE)
      6. write OUT/report/: report.json, report.md (accuracy with its interval,
         latency p50/p95, throughput, energy per inference, handoff and memo hit
         rates, speed-up and energy saving against the large model, shortfalls
         with their significance) and PNG plots; print the tables
    Each stage caches its outputs keyed by its inputs; --fresh redoes them all.

    \b
    Examples:
      toolkit demo
      toolkit demo --data digits --epochs 5 --cbnet-epochs 10 --out /tmp/demo
      toolkit demo --data photos/ --input-shape 1x16x16
      toolkit demo --power ina3221
    """
    from toolkit.cli.demo.config import BUNDLED_DATASETS, DemoConfig
    from toolkit.cli.demo.pipeline import run_demo
    datasets = tuple(datasets) or BUNDLED_DATASETS
    for spec in datasets:
        if spec not in BUNDLED_DATASETS and not os.path.isdir(spec):
            raise InputError("--data {}: not a bundled data set ({}) nor an image folder".format(
                spec, ", ".join(BUNDLED_DATASETS)))
    shape = parse_input_shape(input_shape) if input_shape else _folder_shape(datasets)
    guard([], folders=[("--out", out_dir)])
    power = config_from_options(power_source, power_rate_hz, idle_s, power_sysfs_root)
    config = DemoConfig(datasets=datasets, out_dir=out_dir, epochs=epochs,
                        cbnet_epochs=cbnet_epochs, prune_rounds=prune_rounds, repeats=repeats,
                        backend=backend, fresh=fresh, input_shape=shape,
                        power=power,
                        progress=not no_progress)
    command = " ".join(["toolkit demo"] + [a for a in sys.argv[2:]]) \
        if os.path.basename(sys.argv[0]) == "toolkit" else "toolkit demo"
    run_demo(config, command=command, log=click.echo)


def _folder_shape(datasets, max_side=32):
    """(C, H, W) of the first image folder's first image (sides capped at ``max_side``, a multiple
    of 4 for CBNet's converter), or None when every data set is bundled."""
    from basics.lazy import lazy_import
    from calibration.datasets import list_image_folder
    folders = [d for d in datasets if os.path.isdir(d)]
    if not folders:
        return None
    files, _ = list_image_folder(folders[0])
    first = files[0][0]
    image_module = lazy_import("PIL.Image", "reading image folders")
    with image_module.open(first) as image:
        width, height = image.size
        channels = 1 if image.mode in ("1", "L", "I", "F", "I;16") else 3
    scale = min(1.0, float(max_side) / max(width, height))
    side = lambda v: max(4, int(round(v * scale / 4.0)) * 4)  # noqa: E731
    return channels, side(height), side(width)
