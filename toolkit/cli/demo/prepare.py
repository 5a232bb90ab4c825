"""The demo's host work for one data set, each step a cached stage (:mod:`.stages`):

1. ``pool``: train the pool and the large baseline (``export.recipes.pool``);
2. ``cbnet``: train the converting autoencoder and the lightweight classifier (``export.recipes.cbnet``);
3. ``pruned``: energy-aware channel pruning of the baseline (``export.pruning``);
4. ``engines``: FP32 engines of every model, and an INT8 engine of the baseline from a Q/DQ model
   calibrated on training images (TensorRT on a Jetson, ONNX Runtime elsewhere);
5. ``select``: the pair and threshold on the validation split with ``toolkit pair select``'s rule,
   and one deployment spec per compared strategy.
"""
import json
import os

import numpy as np

from basics.errors import InputError

SPEC_ROWS = ("large", "best_small", "cascade", "memo_cascade", "cbnet", "int8", "pruned")


class PreparedData(object):
    """What the stages made for one data set: ``data`` (RecipeData), ``specs`` ({row: path}),
    ``selection`` (the pair choice and its validation curve) and per-stage summaries."""

    def __init__(self, name, folder, data, summaries):
        self.name = name
        self.folder = folder
        self.data = data
        self.summaries = summaries

    @property
    def specs(self):
        return self.summaries["select"]["specs"]

    @property
    def selection(self):
        return self.summaries["select"]


def prepare(spec, folder, config, cache, log):
    """Run (or reuse) every stage for data set ``spec`` under ``folder``."""
    from export.recipes.common import AugmentConfig, load_recipe_data
    data = load_recipe_data(spec, input_shape=config.input_shape)
    augment = AugmentConfig.hard() if spec == "digits-hard" else AugmentConfig()
    training = dict(config.training_settings(), data=spec, augment=augment.to_dict())
    data_files = [spec] if os.path.isfile(spec) else []
    summaries = {}
    pool_dir = os.path.join(folder, "pool")
    summaries["pool"] = cache.run(pool_dir, "pool " + spec, training,
                                  lambda: _train_pool(data, pool_dir, config, augment, log),
                                  data_files)
    cbnet_dir = os.path.join(folder, "cbnet")
    summaries["cbnet"] = cache.run(cbnet_dir, "cbnet " + spec, training,
                                   lambda: _train_cbnet(data, cbnet_dir, config, augment, log),
                                   data_files)
    baseline_weights = os.path.join(pool_dir, config.baseline + ".pt")
    pruned_dir = os.path.join(folder, "pruned")
    prune_settings = dict(training, rounds=config.prune_rounds,
                          finetune=config.prune_finetune_epochs)
    summaries["pruned"] = cache.run(
        pruned_dir, "prune " + spec, prune_settings,
        lambda: _prune(data, baseline_weights, pruned_dir, config, log),
        data_files + [baseline_weights])
    models = _model_files(pool_dir, cbnet_dir, pruned_dir, config)
    engines_dir = os.path.join(folder, "engines")
    engine_settings = {"backend": config.backend, "max_batch": config.max_batch,
                       "calibration_samples": config.calibration_samples, "seed": config.seed}
    summaries["engines"] = cache.run(
        engines_dir, "engines " + spec, engine_settings,
        lambda: _build_engines(data, models, engines_dir, config, log),
        sorted(models.values()))
    select_dir = os.path.join(folder, "select")
    engine_files = [os.path.join(engines_dir, f) for f in summaries["engines"]["files"]]
    summaries["select"] = cache.run(
        select_dir, "select " + spec, dict(engine_settings, rule="pair select default"),
        lambda: _select(data, summaries["engines"], engines_dir, select_dir, config, log),
        engine_files)
    return PreparedData(spec, folder, data, summaries)


def _train_pool(data, out_dir, config, augment, log):
    from export.recipes.pool import PoolConfig, train_pool
    result = train_pool(data, out_dir, PoolConfig(models=config.pool_models,
                                                  baseline=config.baseline, epochs=config.epochs,
                                                  augment=augment, seed=config.seed),
                        progress=config.progress)
    for line in result.lines()[:-2]:
        log("  " + line)
    return {"models": [{k: e[k] for k in ("name", "role", "val_accuracy", "test_accuracy",
                                          "parameters")} for e in result.entries],
            "train_seconds": round(result.seconds, 2)}


def _train_cbnet(data, out_dir, config, augment, log):
    from export.recipes.cbnet import CBNetConfig, train_cbnet
    result = train_cbnet(data, out_dir, CBNetConfig(ae_epochs=config.cbnet_epochs,
                                                    finetune_epochs=config.finetune_epochs,
                                                    augment=augment, seed=config.seed),
                         progress=config.progress)
    summary = result.to_dict()
    log("  CBNet on {}: validation accuracy {:.4f} (lightweight classifier alone {:.4f})".format(
        data.spec, summary["accuracy"]["cbnet"]["val"], summary["accuracy"]["light_raw"]["val"]))
    return {"accuracy": summary["accuracy"], "parameters": summary["parameters"],
            "train_seconds": summary["train_seconds"]}


def _prune(data, weights, out_dir, config, log):
    """Channel pruning of the baseline driven by the energy model; exports pruned.onnx."""
    from basics.lazy import lazy_import
    from engines.model_metadata import ModelMetadata
    from export.onnx_export import export_to_onnx
    from export.pruning import PruneConfig, prune_model
    from export.recipes.pool import build_model
    torch = lazy_import("torch", "pruning the large model")
    model = build_model(config.baseline, data.input_shape[0], data.num_classes, data.input_shape,
                        config.seed)
    model.load_state_dict(torch.load(weights, map_location="cpu"))
    if config.prune_rounds == 0:
        result = None
    else:
        prune_config = PruneConfig(granularity="channels", max_rounds=config.prune_rounds,
                                   finetune_epochs=config.prune_finetune_epochs, seed=config.seed)
        result = prune_model(model, data.train, data.val, prune_config, test=data.test)
        model = result.model
    metadata = ModelMetadata(class_names=data.class_names, preprocessing=data.preprocessing,
                             source="{} pruned (channels)".format(config.baseline))
    export_to_onnx(model, os.path.join(out_dir, "pruned.onnx"), (1,) + data.input_shape,
                   metadata=metadata, parity_inputs=data.val.images[:16])
    summary = {} if result is None else result.to_dict()
    fraction = summary.get("energy_fraction")
    if fraction is not None:
        log("  pruned {}: estimated energy {:.1%} of the original".format(config.baseline,
                                                                          fraction))
    return {"energy_fraction": fraction, "stop_reason": summary.get("stop_reason")}


def _model_files(pool_dir, cbnet_dir, pruned_dir, config):
    """{engine name: ONNX path} of every model the demo builds."""
    models = {name: os.path.join(pool_dir, name + ".onnx")
              for name in list(config.pool_models) + [config.baseline]}
    models["cbnet"] = os.path.join(cbnet_dir, "cbnet.onnx")
    models["pruned"] = os.path.join(pruned_dir, "pruned.onnx")
    return models


def _build_engines(data, models, out_dir, config, log):
    """FP32 engines of ``models`` and an INT8 engine of the baseline, all in ``out_dir``; each
    engine's ONNX is copied beside it (the energy estimate reads the ONNX an engine was built
    from)."""
    import shutil

    from calibration.qdq import QdqConfig, quantize_qdq
    from engines.build import build_engine
    from engines.build_config import BuildConfig
    from engines.model_metadata import sidecar_path
    files, notes = [], {}
    for name, onnx_path in sorted(models.items()):
        local = os.path.join(out_dir, name + ".onnx")
        shutil.copyfile(onnx_path, local)
        shutil.copyfile(sidecar_path(onnx_path), sidecar_path(local))
        engine = os.path.join(out_dir, name + ".engine")
        sidecar = build_engine(local, engine, BuildConfig(precision="fp32",
                                                          max_batch=config.max_batch,
                                                          backend=config.backend))
        files.append(os.path.basename(engine))
        notes[name] = sidecar.describe()
    rng = np.random.RandomState(config.seed)
    pick = rng.permutation(len(data.train))[:config.calibration_samples]
    qdq_path = os.path.join(out_dir, "int8.onnx")
    qdq = quantize_qdq(os.path.join(out_dir, config.baseline + ".onnx"),
                       data.train.images[pick], qdq_path, QdqConfig(algorithm="minmax"),
                       progress=config.progress)
    engine = os.path.join(out_dir, "int8.engine")
    from engines.int8_gate import Int8Gate  # the build checks INT8 against FP32 on these samples
    sidecar = build_engine(qdq_path, engine, BuildConfig(precision="int8",
                                                         max_batch=config.max_batch,
                                                         backend=config.backend),
                           Int8Gate(data.train.images[pick], progress=config.progress))
    files.append(os.path.basename(engine))
    notes["int8"] = sidecar.describe()
    log("  engines: {} FP32 + INT8 {} (top-1 agreement with FP32 {:.1%} on {} calibration "
        "images)".format(len(models), config.baseline, qdq.top1_agreement, qdq.samples))
    return {"files": files, "notes": notes, "int8_top1_agreement": qdq.top1_agreement}


def _select(data, engines, engines_dir, out_dir, config, log):
    """Choose the pair and threshold on the validation split as ``toolkit pair select`` does
    (same rule, latency measured here as the cost) and write one spec per compared strategy."""
    from toolkit.deployment import open_engine
    from toolkit.strategies import Single
    from toolkit.strategies.pairs import evaluate_pool
    from toolkit.strategies.thresholds import latency_cost_ms
    names = list(config.pool_models) + [config.baseline]
    probs, costs = [], []
    for name in names:
        with open_engine(os.path.join(engines_dir, name + ".engine")) as engine:
            images = np.ascontiguousarray(data.val.images, dtype=np.float32)  # model-ready
            single = Single(engine)
            probs.append(np.concatenate([single.classify(images[i:i + config.max_batch]).probs
                                         for i in range(0, len(images), config.max_batch)]))
            costs.append(latency_cost_ms(engine, images, batch_size=config.max_batch))
    unit = "ms per sample (median, measured)"
    evaluation = evaluate_pool(names, probs, data.val.labels, costs, unit)
    candidate, choice, _ = evaluation.recommended()
    for line in evaluation.lines()[-1:]:
        log("  " + line)
    first, second = names[candidate.first], names[candidate.second]
    accuracies = {n: float(a) for n, a in zip(names, evaluation.accuracies)}
    best_small = max(config.pool_models, key=lambda n: (accuracies[n], -costs[names.index(n)]))
    specs = _write_specs(out_dir, engines_dir, first, second, choice.threshold, best_small,
                         config.baseline)
    return {"first": first, "second": second, "threshold": float(choice.threshold),
            "rule": choice.rule, "val_accuracy": float(choice.accuracy),
            "val_handoff_rate": float(choice.handoff_rate), "best_small": best_small,
            "val_accuracies": accuracies, "costs": dict(zip(names, map(float, costs))),
            "cost_unit": unit, "specs": specs, "files": [os.path.basename(p)
                                                          for p in specs.values()]}


def _write_specs(out_dir, engines_dir, first, second, threshold, best_small, baseline):
    from toolkit.spec_writing import cascade_spec, write_spec
    os.makedirs(out_dir, exist_ok=True)
    singles = {"large": baseline, "best_small": best_small, "cbnet": "cbnet", "int8": "int8",
               "pruned": "pruned"}
    specs = {}
    for row in SPEC_ROWS:
        path = os.path.join(out_dir, row + ".yaml")
        specs[row] = path
        if row in singles:
            engine = os.path.relpath(os.path.join(engines_dir, singles[row] + ".engine"), out_dir)
            write_spec(path, {"version": 1, "engines": {singles[row]: engine},
                              "strategy": singles[row]})
        else:
            write_spec(path, cascade_spec(
                path, os.path.join(engines_dir, first + ".engine"),
                os.path.join(engines_dir, second + ".engine"), threshold,
                memo="exact" if row == "memo_cascade" else "off", names=(first, second)))
    return specs


def check_prepared(prepared):
    """InputError when a stage's result misses what the comparison needs (a corrupt cache)."""
    missing = [row for row in SPEC_ROWS if not os.path.isfile(prepared.specs.get(row, ""))]
    if missing:
        raise InputError("the demo's specs {} are missing in {}; rerun with --fresh".format(
            ", ".join(missing), prepared.folder))
    return json.dumps(prepared.selection, sort_keys=True)
