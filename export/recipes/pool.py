"""Recipe: a pool of CNNs of different shapes plus one large baseline, for the complementary pair
(Kinnas et al., 2024) -- ``toolkit train pool``.

Every model trains with the same settings (40 epochs by default, Adam with a one-cycle schedule,
augmentation, see :mod:`export.recipes.common`) on the train split: 40 epochs lift the small
models more than the baseline (on digits-hard their cascades reach the baseline's accuracy with
fewer handoffs than after 20), and for data as distorted as digits-hard
``augment=AugmentConfig.hard()`` lifts them further; the validation and test accuracies are
measured on the held-out splits. Each model is exported to ``<out>/<name>.onnx`` (+ its metadata
sidecar ``.onnx.json``, parity-checked against PyTorch) with its weights ``<name>.pt``, and
``<out>/pool.json`` lists them all. Choosing the pair and its threshold is then
``toolkit pair select <out>/*.onnx --data <out>/split.json:val`` (the split the models were
trained by, written by the recipe).
"""
import os

import numpy as np
import torch

from basics.errors import InputError
from basics.fileio import write_json_atomic
from basics.progress import progress_bar
from export import models as base_models
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
)

DEFAULT_MODELS = ("tiny_cnn", "small_cnn", "depthwise_cnn", "flat_cnn", "flat_resnet",
                  "mid_resnet")
DEFAULT_BASELINE = "large_cnn"
POOL_FILE = "pool.json"
FORMAT_VERSION = 1


def model_registry():
    """``{name: (factory, source)}`` of every architecture a pool can hold."""
    registry = {name: (factory, "export.models:" + name)
                for name, factory in base_models.FACTORIES.items()}
    registry.update({name: (factory, "export.recipes.pool_models:" + name)
                     for name, factory in pool_models.FACTORIES.items()})
    return registry


class PoolConfig(object):
    """Which models (``models`` plus the ``baseline``), and how to train them (one
    :class:`FitConfig` for all: ``epochs``, ``batch_size``, ``lr``, ``augment``, ``seed``)."""

    def __init__(self, models=DEFAULT_MODELS, baseline=DEFAULT_BASELINE, epochs=40, batch_size=64,
                 lr=3e-3, augment=None, seed=0):
        registry = model_registry()
        if isinstance(models, str):
            models = [m.strip() for m in models.split(",") if m.strip()]
        models = list(models)
        if baseline is not None and baseline not in registry:
            raise InputError("unknown baseline model '{}'; choose from {}".format(
                baseline, ", ".join(sorted(registry))))
        unknown = [m for m in models if m not in registry]
        if unknown:
            raise InputError("unknown model(s) {}; choose from {}".format(
                ", ".join(unknown), ", ".join(sorted(registry))))
        if len(set(models)) != len(models):
            raise InputError("a model is named twice in {}".format(",".join(models)))
        names = [m for m in models if m != baseline] + ([baseline] if baseline else [])
        if len(names) < 2:
            raise InputError("a pool needs at least two models (the baseline included), got {}"
                             .format(names))
        self.models = [m for m in names if m != baseline]
        self.baseline = baseline
        self.fit = FitConfig(epochs=epochs, batch_size=batch_size, lr=lr,
                             augment=AugmentConfig() if augment is None else augment, seed=seed)

    @property
    def all_models(self):
        """Pool members, then the baseline."""
        return self.models + ([self.baseline] if self.baseline else [])

    def to_dict(self):
        return {"models": list(self.models), "baseline": self.baseline, "fit": self.fit.to_dict()}


class PoolResult(object):
    """What :func:`train_pool` made: ``entries`` (one dict per model) and the data summary."""

    def __init__(self, out_dir, data, config, entries, seconds):
        self.out_dir = out_dir
        self.data = data
        self.config = config
        self.entries = entries
        self.seconds = seconds

    @property
    def path(self):
        return os.path.join(self.out_dir, POOL_FILE)

    def entry(self, name):
        for entry in self.entries:
            if entry["name"] == name:
                return entry
        raise KeyError(name)

    def to_dict(self, complete=True):
        """``complete``: False while models are still being trained (the index is written after
        each one)."""
        return {"format": FORMAT_VERSION, "kind": "pool", "data": self.data,
                "config": self.config, "baseline": self.config.get("baseline"),
                "models": self.entries, "train_seconds": round(self.seconds, 2),
                "complete": bool(complete)}

    def lines(self):
        out = ["pool on {} ({} train / {} val / {} test samples, input {})".format(
            self.data["spec"], self.data["samples"]["train"], self.data["samples"]["val"],
            self.data["samples"]["test"], "x".join(str(d) for d in self.data["input_shape"]))]
        width = max(len(e["name"]) for e in self.entries)
        out.append("  {:<{w}}  {:>9}  {:>8}  {:>8}  {:>7}".format(
            "model", "params", "val acc", "test acc", "train s", w=width))
        for e in self.entries:
            out.append("  {:<{w}}  {:>9,}  {:>8.4f}  {:>8.4f}  {:>7.1f}{}".format(
                e["name"], e["parameters"], e["val_accuracy"], e["test_accuracy"],
                e["train_seconds"], "  (baseline)" if e["role"] == "baseline" else "", w=width))
        out.append("wrote {} ONNX models (+ .onnx.json sidecars, .pt weights) and {}{}".format(
            len(self.entries), self.path, " and the split " + os.path.join(
                self.out_dir, self.data["split_file"]) if self.data.get("split_file") else ""))
        out.append("next: toolkit pair select {} --data {}".format(
            os.path.join(self.out_dir, "*.onnx"), data_arg(self.out_dir, self.data, "val")))
        return out


def build_model(name, in_channels, num_classes, input_shape, seed=0):
    """A fresh, seeded model of the registry's ``name`` for images of ``input_shape`` (C, H, W)."""
    factory, source = model_registry()[name]
    torch.manual_seed(seed)
    if source.startswith("export.recipes."):
        return factory(in_channels, num_classes, input_hw=tuple(input_shape[1:]))
    return factory(in_channels, num_classes)


def train_pool(data, out_dir, config=None, progress=True):
    """Train, evaluate and export every model of ``config`` on ``data`` (a spec string or a
    :class:`RecipeData`) into ``out_dir``; returns a :class:`PoolResult` (also in pool.json)."""
    config = config or PoolConfig()
    if not isinstance(data, RecipeData):
        data = load_recipe_data(data)
    out_dir = os.fspath(out_dir)
    _make_dir(out_dir)
    registry = model_registry()
    done = _finished_entries(out_dir, data, config)
    entries = []
    bar = progress_bar(len(config.all_models), "pool", "model", progress)
    with Stopwatch() as total:
        try:
            for name in config.all_models:
                bar.set_description_str("pool: " + name)
                entries.append(done.get(name) or _train_one(name, registry[name][1], data,
                                                            out_dir, config, progress))
                # the index after every model: an interrupted run leaves a pool that loads,
                # and a rerun with the same data and settings resumes after the last model
                partial = PoolResult(out_dir, data.to_dict(), config.to_dict(), entries,
                                     total.seconds)
                write_json_atomic(partial.path, partial.to_dict(complete=False))
                bar.update(1)
        finally:
            bar.close()
    data.write_split(out_dir)
    result = PoolResult(out_dir, data.to_dict(), config.to_dict(), entries, total.seconds)
    write_json_atomic(result.path, result.to_dict())
    return result


def _finished_entries(out_dir, data, config):
    """{name: entry} of the models an earlier run with the same data and settings finished
    (their .onnx, sidecar and weights still there); {} when there is none to resume."""
    import json
    path = os.path.join(out_dir, POOL_FILE)
    try:
        with open(path) as handle:
            earlier = json.load(handle)
    except (OSError, ValueError):
        return {}
    same = json.loads(json.dumps([data.to_dict(), config.to_dict()]))
    if not isinstance(earlier, dict) or [earlier.get("data"), earlier.get("config")] != same:
        return {}
    done = {}
    for entry in earlier.get("models") or []:
        files = [os.path.join(out_dir, entry.get(key) or "") for key in ("onnx", "weights")]
        if all(os.path.isfile(f) for f in files) and os.path.isfile(files[0] + ".json"):
            done[entry.get("name")] = entry
    return done


def _train_one(name, source, data, out_dir, config, progress):
    model = build_model(name, data.input_shape[0], data.num_classes, data.input_shape,
                        config.fit.seed)
    with Stopwatch() as watch:
        fit(model, data.train.images, data.train.labels, config.fit, loss="ce", desc=name,
            progress=progress)
    val_acc = accuracy(predict(model, data.val.images), data.val.labels)
    test_acc = accuracy(predict(model, data.test.images), data.test.labels)
    onnx_path = os.path.join(out_dir, name + ".onnx")
    weights_path = os.path.join(out_dir, name + ".pt")
    result = export_onnx(model, onnx_path, data.input_shape, data, source)
    save_weights(model, weights_path)
    kwargs = {"input_hw": list(data.input_shape[1:])} if source.startswith("export.recipes.") else {}
    return {"name": name, "role": "baseline" if name == config.baseline else "pool",
            "source": source, "factory_kwargs": kwargs, "onnx": os.path.basename(onnx_path),
            "weights": os.path.basename(weights_path), "parameters": count_parameters(model),
            "val_accuracy": val_acc, "test_accuracy": test_acc,
            "train_seconds": round(watch.seconds, 2),
            "parity_max_abs_error": float(result.parity.get("max_abs_error", np.nan))}


def load_pool(out_dir):
    """The pool.json of ``out_dir`` as a dict (InputError when missing or unreadable)."""
    import json
    path = os.path.join(os.fspath(out_dir), POOL_FILE)
    if not os.path.isfile(path):
        raise InputError("no {} in {} (train one with `toolkit train pool`)".format(POOL_FILE, out_dir))
    try:
        with open(path) as handle:
            data = json.load(handle)
    except ValueError as exc:
        raise InputError("{} is not valid JSON: {}".format(path, exc)) from None
    if not isinstance(data, dict) or data.get("kind") != "pool":
        raise InputError("{} is not a pool summary".format(path))
    return data


def _make_dir(path):
    if os.path.exists(path) and not os.path.isdir(path):
        raise InputError("the output folder {} exists and is not a folder".format(path))
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise InputError("cannot create {}: {}".format(path, exc.strerror or exc)) from None
