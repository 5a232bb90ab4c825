"""``toolkit train``: host-side recipes (PyTorch) -- a model pool for the pair, and CBNet.

PyTorch is imported only when a recipe runs, so ``--help`` works on a device without it.
"""
import os

import click

from basics.errors import InputError
from basics.lazy import lazy_import
from toolkit.cli.options import NON_NEGATIVE_INT, progress_option
from toolkit.cli.outputs import guard

_DATA_HELP = ("Labelled data: digits, digits16, digits-hard (bundled), an .npz (images, labels) "
              "or an image folder (one sub-folder per class; needs --input-shape). It is split "
              "60/20/20 into train/val/test by the rule of NAME:val elsewhere, and the split is "
              "written to OUT/split.json: later commands take --data OUT/split.json:val.")


def _common(func):
    options = [
        click.option("--data", required=True, help=_DATA_HELP),
        click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
                     help="Folder to write the models, specs and the JSON summary into."),
        click.option("--input-shape", default=None, metavar="CxHxW",
                     help="Image size for an image folder, e.g. 1x16x16."),
        click.option("--augment", default="default", show_default=True,
                     type=click.Choice(["default", "hard", "off"]),
                     help="Training-input augmentation: default = random rotation (+-10 deg) and "
                          "shift (+-1 px); hard = +-30 deg, +-2 px and noise (sigma 0.1), for "
                          "data as distorted as digits-hard (it hurts clean data); off."),
        click.option("--no-augment", is_flag=True, help="Same as --augment off."),
        click.option("--seed", default=0, show_default=True, type=int,
                     help="Seed of the initial weights, the batch order and the augmentation "
                          "(the 60/20/20 split is fixed: the one of --data NAME:val elsewhere, written to "
                          "OUT/split.json)."),
        click.option("--threads", default=0, show_default=True, type=NON_NEGATIVE_INT,
                     help="PyTorch CPU threads (0: PyTorch's default; 1 is often faster on a "
                          "busy machine)."),
        progress_option(),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group("train")
def train():
    """Host-side training recipes (need PyTorch): a pool of CNNs for the complementary pair, and
    CBNet (a converting autoencoder in front of a lightweight classifier). Each writes ONNX models
    with metadata sidecars and a JSON summary; run them on the device with `toolkit pair`,
    `toolkit build` and `toolkit run`.

    \b
    Examples:
      toolkit train pool --data digits-hard --out pool/
      toolkit train cbnet --data digits-hard --out cbnet/
      toolkit run cbnet/cbnet.yaml --data cbnet/split.json:test
    """


@train.command("pool", short_help="A pool of CNNs plus the large baseline -> ONNX + pool.json.")
@_common
@click.option("--epochs", default=40, show_default=True, type=int,
              help="Training epochs of every model.")
@click.option("--models",
              default="tiny_cnn,small_cnn,depthwise_cnn,flat_cnn,flat_resnet,mid_resnet",
              show_default=True,
              help="Pool members, comma separated (export.models: tiny_cnn, small_cnn, "
                   "depthwise_cnn, large_cnn; export.recipes.pool_models: flat_cnn, "
                   "flat_resnet, mid_resnet, light_cnn).")
@click.option("--baseline", default="large_cnn", show_default=True,
              help="The large baseline model, trained and exported with the pool.")
def pool(data, out_dir, input_shape, augment, no_augment, seed, threads, no_progress, epochs, models,
         baseline):
    """Train a pool of small CNNs of different shapes and one large baseline on the train split,
    report validation and test accuracy, and export each model to OUT/<name>.onnx (+ sidecar
    .onnx.json, parity-checked, and weights .pt). OUT/pool.json lists the models, their
    accuracies and parameter counts. All models train with the same settings (Adam, one-cycle
    learning rate, --epochs, augmentation).

    \b
    Examples:
      toolkit train pool --data digits-hard --out pool/ --augment hard
      toolkit train pool --data digits --out pool8/ --epochs 10 --models tiny_cnn,flat_cnn
      toolkit train pool --data photos/ --input-shape 3x32x32 --out pool/
      toolkit pair select pool/*.onnx --data pool/split.json:val \\
          --write-spec pool/deploy.yaml
    """
    guard([], folders=[("--out", out_dir)])
    _torch_threads(threads)
    from export.recipes.common import load_recipe_data
    from export.recipes.pool import PoolConfig, train_pool
    config = PoolConfig(models=models, baseline=baseline, epochs=epochs, seed=seed,
                        augment=_augment(augment, no_augment))
    dataset = load_recipe_data(data, parse_input_shape(input_shape, data))
    result = train_pool(dataset, out_dir, config, progress=not no_progress)
    for line in result.lines():
        click.echo(line)


@train.command("cbnet", short_help="CBNet: converting autoencoder + lightweight classifier.")
@_common
@click.option("--epochs", default=120, show_default=True, type=int,
              help="Training epochs of the converting autoencoder.")
@click.option("--light-epochs", default=20, show_default=True, type=int,
              help="Training epochs of the lightweight classifier (before conversion).")
@click.option("--finetune-epochs", default=5, show_default=True, type=int,
              help="Fine-tuning epochs of the classifier on converted images.")
@click.option("--target", default="prototype", show_default=True,
              type=click.Choice(["prototype", "nearest-pixel", "nearest-feature"]),
              help="The easy image each training image is converted to: its class's most "
                   "confident easy image, or the nearest easy image of its class in pixel or "
                   "classifier-feature space.")
@click.option("--easy-threshold", default=0.9, show_default=True, type=float,
              help="An image is easy when the classifier gets it right with this confidence.")
@click.option("--min-easy", default=5, show_default=True, type=int,
              help="A class with fewer easy images takes its this many most confident ones.")
@click.option("--light", default="light_cnn", show_default=True,
              help="The lightweight classifier (a model name as in `train pool --models`).")
@click.option("--ae-widths", default="16,48", show_default=True, metavar="A,B",
              help="Channels of the converter's two encoder stages.")
@click.option("--ae-latent", default=64, show_default=True, type=int,
              help="Size of the converter's bottleneck.")
def cbnet(data, out_dir, input_shape, augment, no_augment, seed, threads, no_progress, epochs,
          light_epochs, finetune_epochs, target, easy_threshold, min_easy, light, ae_widths,
          ae_latent):
    """CBNet (Mahmud et al., 2024): train a lightweight classifier; call a training image "easy"
    when it gets it right with confidence >= --easy-threshold; train a converting autoencoder
    (MSE) to map every training image to an easy image of its class (--target); fine-tune the
    classifier on converted images. Writes OUT/converter.onnx, OUT/light.onnx, the two fused into
    one graph OUT/cbnet.onnx (one engine on the device), deployment specs OUT/cbnet.yaml (fused)
    and OUT/cbnet-two-stage.yaml (convert strategy), and OUT/cbnet.json with accuracies.

    \b
    Examples:
      toolkit train cbnet --data digits-hard --out cbnet/ --augment hard --epochs 300 --finetune-epochs 10
      toolkit train cbnet --data digits-hard --out cbnet/ --target nearest-pixel --epochs 40
      toolkit run cbnet/cbnet.yaml --data cbnet/split.json:test
      toolkit build cbnet/cbnet.onnx --precision fp16 -o cbnet.engine
    """
    guard([], folders=[("--out", out_dir)])
    _torch_threads(threads)
    from export.recipes.cbnet import CBNetConfig, train_cbnet
    from export.recipes.common import load_recipe_data
    config = CBNetConfig(light=light, light_epochs=light_epochs, easy_threshold=easy_threshold,
                         min_easy_per_class=min_easy, target=target,
                         ae_widths=_widths(ae_widths), ae_latent=ae_latent, ae_epochs=epochs,
                         finetune_epochs=finetune_epochs, seed=seed,
                         augment=_augment(augment, no_augment))
    dataset = load_recipe_data(data, parse_input_shape(input_shape, data))
    from toolkit.spec_writing import write_spec
    result = train_cbnet(dataset, out_dir, config, progress=not no_progress, write_spec=write_spec)
    for line in result.lines():
        click.echo(line)


def _torch_threads(threads):
    torch = lazy_import("torch", "training models (toolkit train)")
    if threads:
        torch.set_num_threads(threads)


def parse_input_shape(text, data=None):
    """``--input-shape CxHxW`` as a tuple (None when not given, unless ``data`` is an image
    folder, which needs it)."""
    if text is None:
        if data is not None and os.path.isdir(str(data).partition(":")[0]):
            raise InputError("training on an image folder needs --input-shape CxHxW (e.g. 1x16x16)")
        return None
    from engines.base import parse_shape
    shape = parse_shape(text)
    if len(shape) != 3:
        raise InputError("--input-shape must be CxHxW (e.g. 1x16x16), got '{}'".format(text))
    return shape


def _widths(text):
    try:
        widths = tuple(int(part) for part in str(text).split(","))
    except ValueError:
        widths = ()
    if len(widths) != 2 or any(w < 1 for w in widths):
        raise InputError("--ae-widths must be two positive integers like 32,64, got '{}'".format(text))
    return widths


def _augment(name, no_augment):
    from export.recipes.common import AugmentConfig
    if no_augment and name not in ("default", "off"):
        raise InputError("give --augment {} or --no-augment, not both".format(name))
    return AugmentConfig.preset("off" if no_augment else name)
