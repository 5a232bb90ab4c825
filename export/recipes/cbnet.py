"""Recipe: CBNet (Mahmud et al., 2024), a converting autoencoder in front of a lightweight
classifier -- ``toolkit train cbnet``.

Steps, all on the train split:

1. train the lightweight classifier (``light_cnn``: two strided convolutions and a linear layer);
2. find the *easy* training images: those it classifies correctly with a confidence (softmax of
   the true class) of at least ``easy_threshold`` (0.9). A class with fewer than
   ``min_easy_per_class`` (5) easy images takes its most confident images instead;
3. give every training image a target, an easy image of its own class (see below);
4. train the converting autoencoder (:class:`export.recipes.pool_models.ConvertingAutoencoder`,
   sigmoid output) with MSE from each (augmented) training image to its target. It fits the
   training set long before it generalises: 120 epochs (the default) beat 60 by about a point
   on digits-hard, and with :meth:`export.recipes.common.AugmentConfig.hard` (``augment``) it
   gains about another point (there 200 epochs are at least as good as 120);
5. fine-tune the lightweight classifier on the converted training images;
6. export ``converter.onnx`` (image -> image, output ``image``), ``light.onnx`` (output
   ``logits``) and both fused into one graph, ``cbnet.onnx`` (``nn.Sequential(converter,
   light)``: one engine on the device, no round trip between two), with deployment specs
   ``cbnet.yaml`` (the fused engine) and ``cbnet-two-stage.yaml`` (``convert`` strategy over the
   two engines), and ``cbnet.json`` (accuracies, easy-image counts, settings).

The target of each image (``target``):

- ``prototype`` (the default): the single most confident easy image of its class, the same
  target for every image of a class. Why: the mapping is then a well-posed regression (every
  input of a class has one right answer; with per-image targets, near-identical inputs get
  different targets and MSE drives the output to their blurry average); the output is the image
  the lightweight classifier is surest of, so classifying it takes the least capacity; and it
  measured best here (digits-hard, the same budget: see README.md, "Training recipes"). The cost: the
  converted image keeps no style of the input (it is a class template), so the path's accuracy
  is the converter's ability to recognise the class;
- ``nearest-pixel``: the easy image of the same class nearest to the input in pixel space (an
  easy image is its own target), closer to the paper's "convert to a similar easy image";
- ``nearest-feature``: the same, nearest in the lightweight classifier's feature space (the
  input of its last linear layer).
"""
import os

import numpy as np
import torch
from torch import nn

from basics.errors import InputError
from basics.fileio import write_json_atomic
from basics.progress import progress_bar
from export.recipes import pool_models
from export.recipes.common import (
    AugmentConfig,
    FitConfig,
    RecipeData,
    Stopwatch,
    accuracy,
    count_parameters,
    data_arg,
    export_onnx,
    fit,
    load_recipe_data,
    predict,
    save_weights,
    softmax,
)
from export.recipes.pool import _make_dir, build_model, model_registry

TARGETS = ("prototype", "nearest-pixel", "nearest-feature")
CBNET_FILE = "cbnet.json"
FORMAT_VERSION = 1


class CBNetConfig(object):
    """Settings of the CBNet recipe.

    ``light``: the lightweight classifier (a pool registry name); ``light_epochs``: its training;
    ``easy_threshold`` / ``min_easy_per_class``: what counts as easy; ``target``: one of
    :data:`TARGETS`; ``ae_widths`` / ``ae_latent`` / ``ae_blocks`` / ``ae_epochs``: the converter;
    ``finetune_epochs`` / ``finetune_lr``: the classifier on converted images; ``augment``: input
    augmentation of steps 1 and 4; ``batch_size``, ``lr`` and ``seed`` as in :class:`FitConfig`.
    """

    def __init__(self, light="light_cnn", light_epochs=20, easy_threshold=0.9,
                 min_easy_per_class=5, target="prototype", ae_widths=(16, 48), ae_latent=64,
                 ae_blocks=1, ae_epochs=120, finetune_epochs=5, finetune_lr=1e-3, augment=None,
                 batch_size=64, lr=3e-3, seed=0):
        if light not in model_registry():
            raise InputError("unknown lightweight classifier '{}'; choose from {}".format(
                light, ", ".join(sorted(model_registry()))))
        if not isinstance(easy_threshold, (int, float)) or not 0.0 < easy_threshold <= 1.0:
            raise InputError("the easy threshold must be in (0, 1], got {!r}".format(easy_threshold))
        if isinstance(min_easy_per_class, bool) or not isinstance(min_easy_per_class, int) \
                or min_easy_per_class < 1:
            raise InputError("min easy images per class must be a positive integer, got {!r}"
                             .format(min_easy_per_class))
        if target not in TARGETS:
            raise InputError("target must be one of {}, got '{}'".format(", ".join(TARGETS), target))
        widths = tuple(ae_widths)
        if len(widths) != 2 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1
                                   for w in widths):
            raise InputError("the autoencoder needs two positive channel widths, got {!r}".format(
                ae_widths))
        for name, value in (("autoencoder latent size", ae_latent),):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError("{} must be a positive integer, got {!r}".format(name, value))
        if isinstance(ae_blocks, bool) or not isinstance(ae_blocks, int) or ae_blocks < 0:
            raise InputError("autoencoder blocks must be 0 or more, got {!r}".format(ae_blocks))
        augment = AugmentConfig() if augment is None else augment
        self.light = light
        self.easy_threshold = float(easy_threshold)
        self.min_easy_per_class = int(min_easy_per_class)
        self.target = target
        self.ae_widths = widths
        self.ae_latent = int(ae_latent)
        self.ae_blocks = int(ae_blocks)
        self.light_fit = FitConfig(light_epochs, batch_size, lr, seed=seed, augment=augment)
        self.ae_fit = FitConfig(ae_epochs, batch_size, lr, seed=seed, augment=augment)
        self.finetune_fit = FitConfig(finetune_epochs, batch_size, finetune_lr, seed=seed,
                                      augment=AugmentConfig.off())

    def to_dict(self):
        return {"light": self.light, "easy_threshold": self.easy_threshold,
                "min_easy_per_class": self.min_easy_per_class, "target": self.target,
                "ae_widths": list(self.ae_widths), "ae_latent": self.ae_latent,
                "ae_blocks": self.ae_blocks, "light_fit": self.light_fit.to_dict(),
                "ae_fit": self.ae_fit.to_dict(), "finetune_fit": self.finetune_fit.to_dict()}


def easy_mask(probs, labels, threshold):
    """True where the arg-max is the label and the label's probability is >= ``threshold``."""
    labels = np.asarray(labels)
    own = probs[np.arange(len(labels)), labels]
    return (np.argmax(probs, axis=1) == labels) & (own >= threshold)


def easy_sets(probs, labels, num_classes, threshold, min_per_class):
    """``{class: indices of its easy images}`` and the classes that fell back to their
    ``min_per_class`` most confident images (fewer easy ones than that)."""
    labels = np.asarray(labels)
    easy = easy_mask(probs, labels, threshold)
    sets, fallback = {}, []
    for cls in range(num_classes):
        members = np.flatnonzero(labels == cls)
        if not len(members):
            continue
        chosen = members[easy[members]]
        if len(chosen) < min_per_class:
            own = probs[members, cls]
            chosen = members[np.argsort(-own, kind="stable")[:min_per_class]]
            fallback.append(cls)
        sets[cls] = chosen
    return sets, fallback


def choose_targets(images, labels, probs, sets, mode, features=None):
    """The target image (an index into ``images``) of every image, per ``mode`` (:data:`TARGETS`)."""
    labels = np.asarray(labels)
    index = np.empty(len(labels), dtype=np.int64)
    for cls, easy in sets.items():
        members = np.flatnonzero(labels == cls)
        if mode == "prototype":
            index[members] = easy[np.argmax(probs[easy, cls])]
            continue
        space = images.reshape(len(images), -1) if mode == "nearest-pixel" else features
        if space is None:
            raise InputError("target 'nearest-feature' needs the classifier's features")
        candidates = space[easy].astype(np.float64)
        for start in range(0, len(members), 512):
            rows = space[members[start:start + 512]].astype(np.float64)
            dist = (rows ** 2).sum(1)[:, None] - 2 * rows @ candidates.T + (candidates ** 2).sum(1)
            index[members[start:start + 512]] = easy[np.argmin(dist, axis=1)]
    return index


@torch.no_grad()
def classifier_features(model, images, batch_size=256):
    """The input of ``model``'s last linear layer for every image (its feature space)."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not last:
        raise InputError("target 'nearest-feature' needs a classifier ending in a linear layer")
    captured = []
    handle = last[-1].register_forward_pre_hook(lambda module, args: captured.append(
        args[0].detach().reshape(len(args[0]), -1).numpy().copy()))
    try:
        predict(model, images, batch_size)
    finally:
        handle.remove()
    return np.concatenate(captured)


class CBNetResult(object):
    """What :func:`train_cbnet` made (``summary`` is also written as cbnet.json)."""

    def __init__(self, out_dir, summary):
        self.out_dir = out_dir
        self.summary = summary

    @property
    def path(self):
        return os.path.join(self.out_dir, CBNET_FILE)

    def to_dict(self):
        return self.summary

    def lines(self):
        s = self.summary
        acc = s["accuracy"]
        out = ["CBNet on {} ({} train / {} val / {} test samples), target: {}".format(
            s["data"]["spec"], s["data"]["samples"]["train"], s["data"]["samples"]["val"],
            s["data"]["samples"]["test"], s["config"]["target"])]
        out.append("  easy training images: {} of {} (confidence >= {:g}){}".format(
            s["easy"]["count"], s["data"]["samples"]["train"], s["config"]["easy_threshold"],
            "; classes {} took their {} most confident".format(
                s["easy"]["fallback_classes"], s["config"]["min_easy_per_class"])
            if s["easy"]["fallback_classes"] else ""))
        out.append("  {:<42} {:>8} {:>8}".format("accuracy", "val", "test"))
        for key, label in (("light_raw", "lightweight classifier on raw images"),
                           ("cbnet", "CBNet: converter -> fine-tuned classifier")):
            out.append("  {:<42} {:>8.4f} {:>8.4f}".format(label, acc[key]["val"], acc[key]["test"]))
        out.append("  parameters: converter {:,}, classifier {:,}; converter MSE to targets "
                   "{:.4f} (train)".format(s["parameters"]["converter"],
                                           s["parameters"]["light"], s["converter_train_mse"]))
        with_specs = "spec_fused" in s["files"]
        out.append("wrote {}: converter.onnx, light.onnx, cbnet.onnx (fused), {}{}{}".format(
            self.out_dir, "cbnet.yaml, cbnet-two-stage.yaml, " if with_specs else "", CBNET_FILE,
            ", " + s["data"]["split_file"] if s["data"].get("split_file") else ""))
        if with_specs:
            out.append("next: toolkit run {} --data {}".format(
                os.path.join(self.out_dir, "cbnet.yaml"), data_arg(self.out_dir, s["data"], "test")))
        return out


def train_cbnet(data, out_dir, config=None, progress=True, write_spec=None):
    """Run the recipe on ``data`` (a spec string or :class:`RecipeData`) into ``out_dir``.

    ``write_spec(path, mapping)`` writes the deployment specs (``toolkit train cbnet`` passes
    :func:`toolkit.spec_writing.write_spec`: the spec format belongs to the toolkit's runtime, a
    sibling layer that export does not import); None: no spec files, only the models."""
    config = config or CBNetConfig()
    if not isinstance(data, RecipeData):
        data = load_recipe_data(data)
    channels, height, width = data.input_shape
    if height % 4 or width % 4:
        raise InputError("CBNet's converter needs image sides divisible by 4; {} has {}x{}".format(
            data.spec, height, width))
    out_dir = os.fspath(out_dir)
    _make_dir(out_dir)
    train = data.train
    bar = progress_bar(5, "cbnet", "step", progress)
    seconds = {}
    try:
        bar.set_description_str("cbnet: classifier")
        light = build_model(config.light, channels, data.num_classes, data.input_shape,
                            config.light_fit.seed)
        with Stopwatch() as watch:
            fit(light, train.images, train.labels, config.light_fit, desc=config.light,
                progress=progress)
        seconds["light"] = watch.seconds
        raw_acc = {"val": accuracy(predict(light, data.val.images), data.val.labels),
                   "test": accuracy(predict(light, data.test.images), data.test.labels)}
        bar.update(1)

        bar.set_description_str("cbnet: targets")
        probs = softmax(predict(light, train.images))
        sets, fallback = easy_sets(probs, train.labels, data.num_classes, config.easy_threshold,
                                   config.min_easy_per_class)
        features = classifier_features(light, train.images) \
            if config.target == "nearest-feature" else None
        target_index = choose_targets(train.images, train.labels, probs, sets, config.target,
                                      features)
        targets = train.images[target_index]
        bar.update(1)

        bar.set_description_str("cbnet: converter")
        torch.manual_seed(config.ae_fit.seed)
        converter = pool_models.converting_autoencoder(channels, (height, width), config.ae_widths,
                                                       config.ae_latent, config.ae_blocks)
        with Stopwatch() as watch:
            _, mse = fit(converter, train.images, targets, config.ae_fit, loss="mse",
                         desc="converter", progress=progress)
        seconds["converter"] = watch.seconds
        bar.update(1)

        bar.set_description_str("cbnet: fine-tune")
        converted = predict(converter, train.images)
        with Stopwatch() as watch:
            fit(light, converted, train.labels, config.finetune_fit, desc="fine-tune",
                progress=progress)
        seconds["finetune"] = watch.seconds
        fused = nn.Sequential(converter, light).eval()
        cbnet_acc = {"val": accuracy(predict(fused, data.val.images), data.val.labels),
                     "test": accuracy(predict(fused, data.test.images), data.test.labels)}
        converter_mse = float(np.mean((converted - targets) ** 2))
        bar.update(1)

        bar.set_description_str("cbnet: export")
        files = _export_all(converter, light, fused, data, out_dir, config, write_spec)
        bar.update(1)
    finally:
        bar.close()
    easy_counts = {data.class_names[c]: int(len(v)) for c, v in sorted(sets.items())}
    summary = {
        "format": FORMAT_VERSION, "kind": "cbnet", "data": data.to_dict(),
        "config": config.to_dict(),
        "accuracy": {"light_raw": raw_acc, "cbnet": cbnet_acc},
        "easy": {"count": int(easy_mask(probs, train.labels, config.easy_threshold).sum()),
                 "target_pool_per_class": easy_counts,
                 "fallback_classes": [data.class_names[c] for c in fallback]},
        "converter_train_mse": converter_mse, "converter_last_epoch_loss": float(mse),
        "parameters": {"converter": count_parameters(converter), "light": count_parameters(light)},
        "train_seconds": {k: round(v, 2) for k, v in seconds.items()},
        "files": files,
    }
    data.write_split(out_dir)
    result = CBNetResult(out_dir, summary)
    write_json_atomic(result.path, summary)
    return result


def _export_all(converter, light, fused, data, out_dir, config, write_spec):
    shape = data.input_shape
    paths = {"converter": os.path.join(out_dir, "converter.onnx"),
             "light": os.path.join(out_dir, "light.onnx"),
             "cbnet": os.path.join(out_dir, "cbnet.onnx")}
    export_onnx(converter, paths["converter"], shape, data,
                "export.recipes.pool_models:converting_autoencoder", output_name="image",
                class_names=False)
    export_onnx(light, paths["light"], shape, data, model_registry()[config.light][1])
    export_onnx(fused, paths["cbnet"], shape, data, "export.recipes.cbnet (converter + light)")
    save_weights(converter, os.path.join(out_dir, "converter.pt"))
    save_weights(light, os.path.join(out_dir, "light.pt"))
    specs = {"cbnet.yaml": {"version": 1, "engines": {"cbnet": "cbnet.onnx"},
                            "strategy": {"type": "single", "engine": "cbnet"}},
             "cbnet-two-stage.yaml": {"version": 1,
                                      "engines": {"converter": "converter.onnx",
                                                  "light": "light.onnx"},
                                      "strategy": {"type": "convert", "converter": "converter",
                                                   "classifier": "light"}}}
    files = {key: os.path.basename(path) for key, path in paths.items()}
    files.update({"converter_weights": "converter.pt", "light_weights": "light.pt"})
    if write_spec is not None:
        for name, spec in specs.items():
            write_spec(os.path.join(out_dir, name), spec)
        files.update({"spec_fused": "cbnet.yaml", "spec_two_stage": "cbnet-two-stage.yaml"})
    return files
