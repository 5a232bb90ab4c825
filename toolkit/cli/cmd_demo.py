"""``toolkit demo``: the whole job on the bundled digits, from training to a benchmarked engine,
then the product: a small -> large cascade with a memo against the large model alone."""
import os
import time

import click

from basics.errors import InputError
from toolkit.power.options import config_from_options, power_options

SMALL, LARGE = "small_cnn", "large_cnn"


class DemoConfig(object):
    """Where the demo writes (``out_dir``), how long it trains (``epochs`` for the small model,
    ``baseline_epochs`` for the large baseline), how engines are built (``backend``,
    ``precision``, ``max_batch``), how long latency is timed, how the cascade threshold is
    chosen (cheapest within ``tolerance`` of the large model's validation accuracy), how the
    comparison runs (``duplicate`` share of the test split shown twice, ``repeats`` runs per
    strategy, each batch's median time is kept) and how energy is measured (``power``, a
    PowerConfig; None: source auto)."""

    def __init__(self, out_dir="demo-out", epochs=20, baseline_epochs=8, backend="auto",
                 precision="fp32", max_batch=32, bench_iterations=200, bench_warmup=20, seed=0,
                 tolerance=0.003, duplicate=1.0, repeats=5, power=None, progress=True):
        if epochs < 1:
            raise InputError("--epochs must be at least 1, got {}".format(epochs))
        if baseline_epochs < 1:
            raise InputError("--baseline-epochs must be at least 1, got {}".format(
                baseline_epochs))
        if bench_iterations < 1:
            raise InputError("--iterations must be at least 1, got {}".format(bench_iterations))
        if not 0.0 <= tolerance <= 1.0:
            raise InputError("tolerance must be in [0, 1], got {}".format(tolerance))
        if repeats < 1:
            raise InputError("repeats must be at least 1, got {}".format(repeats))
        self.out_dir = out_dir
        self.epochs = int(epochs)
        self.baseline_epochs = int(baseline_epochs)
        self.backend = backend
        self.precision = precision
        self.max_batch = int(max_batch)
        self.bench_iterations = int(bench_iterations)
        self.bench_warmup = int(bench_warmup)
        self.seed = int(seed)
        self.tolerance = float(tolerance)
        self.duplicate = float(duplicate)
        self.repeats = int(repeats)
        self.power = power
        self.progress = progress


def run_demo(config, log=lambda line: None):
    """Train -> export -> build -> evaluate -> benchmark the small model; train, export and build
    the large baseline; choose the cascade threshold; compare large / cascade / memo + cascade
    on the duplicated test split. Returns the report dict (also written to
    ``<out_dir>/demo_report.json``). ``log`` receives one line per finished step."""
    import numpy as np

    from basics.fileio import write_json_atomic
    from basics.lazy import lazy_import
    from calibration.datasets import load_dataset
    from engines.load import load_engine
    from toolkit.benchmarking import bench_engine

    torch = lazy_import("torch", "the demo (it trains a small CNN first)")

    report = {"out_dir": config.out_dir, "steps": {}}
    steps = report["steps"]
    os.makedirs(config.out_dir, exist_ok=True)
    paths = {name: _paths(config.out_dir, name) for name in (SMALL, LARGE)}

    # 1. data: the bundled digits, fixed 60/20/20 split (written, so the commands repeat it)
    split_path = os.path.join(config.out_dir, "split.json")
    _write_split(split_path, config.seed)
    train, val, test = (load_dataset("{}:{}".format(split_path, part))
                        for part in ("train", "val", "test"))
    log("data: digits, {} train / {} val / {} test images of {}x{}, {} classes".format(
        len(train), len(val), len(test), train.images.shape[2], train.images.shape[3],
        train.num_classes))

    # 2-4. train export.models.small_cnn on the host (torch), export to ONNX, build an engine
    model, steps["train"] = _train(torch, SMALL, config.epochs, train, test, config, log)
    steps["export"] = _export(model, paths[SMALL], train, log)
    steps["build"] = _build(paths[SMALL], config, log)
    torch_accuracy = steps["train"]["torch_test_accuracy"]

    # 5. run the engine on the test split
    with load_engine(paths[SMALL]["engine"]) as engine:
        name = engine.input.name
        predictions = []
        for start in range(0, len(test), config.max_batch):
            out = engine.infer({name: test.images[start:start + config.max_batch]})
            predictions.append(np.argmax(out[engine.outputs[0].name], axis=1))
        predictions = np.concatenate(predictions)
        accuracy = float(np.mean(predictions == test.labels))
        steps["evaluate"] = {"samples": len(test), "engine_test_accuracy": accuracy}
        log("evaluate: engine test accuracy {:.2%} on {} images (PyTorch {:.2%})".format(
            accuracy, len(test), torch_accuracy))

        # 6. latency at batch 1 and at the largest batch
        latency = {}
        for batch in sorted(set([1, config.max_batch])):
            feeds = {name: test.images[:batch]}
            summary = bench_engine(engine, batch, config.bench_iterations, config.bench_warmup,
                                   progress=config.progress, feeds=feeds)
            latency[str(batch)] = summary
            log("latency: batch {:>2}: median {:.3f} ms, p95 {:.3f} ms, {:.0f} images/s".format(
                batch, summary["latency_median_ms"], summary["latency_p95_ms"],
                summary["throughput_per_s"]))
        steps["latency"] = latency

    # 7-9. the large baseline: train, export, build
    model, steps["train_baseline"] = _train(torch, LARGE, config.baseline_epochs, train, test,
                                            config, log)
    steps["export_baseline"] = _export(model, paths[LARGE], train, log)
    steps["build_baseline"] = _build(paths[LARGE], config, log)

    # 10. the cascade's threshold on the validation split, costed by measured latency
    steps["threshold"] = _choose_threshold(paths, val, config, log)

    # 11. deployment specs and the comparison on the duplicated test split
    specs = _write_specs(config.out_dir, paths, steps["threshold"]["threshold"])
    steps["specs"] = specs
    log("spec: {} (memo + cascade {} -> {}, threshold {:.4f})".format(
        specs["memo_cascade"], SMALL, LARGE, steps["threshold"]["threshold"]))
    steps["compare"] = _compare(specs, test, config, log)

    report["commands"] = _commands(config, paths, specs, steps["threshold"])
    log("reproduce by hand:")
    for command in report["commands"]:
        log("  " + command)

    report_path = os.path.join(config.out_dir, "demo_report.json")
    write_json_atomic(report_path, report)
    log("report: {}".format(report_path))
    return report


def _write_split(path, seed):
    """Write the split file of the bundled digits' split with ``seed`` (the 60/20/20 rule)."""
    from calibration.datasets import load_digits_variant
    from calibration.splits import make_split_file
    make_split_file("digits", len(load_digits_variant("digits")), seed=seed).write(path)


def _paths(out_dir, name):
    return {"weights": os.path.join(out_dir, name + ".pt"),
            "onnx": os.path.join(out_dir, name + ".onnx"),
            "engine": os.path.join(out_dir, name + ".engine")}


def _train(torch, name, epochs, train, test, config, log):
    """Train ``export.models.<name>``; save its state dict (for `toolkit export --weights`)."""
    import io

    from basics.fileio import write_bytes_atomic
    from basics.progress import progress_bar
    from export import models, training
    started = time.time()
    torch.manual_seed(config.seed)
    model = getattr(models, name)(in_channels=1, num_classes=train.num_classes)
    bar = progress_bar(epochs, "train " + name, "epoch", config.progress)
    try:
        training.train_classifier(model, train, training.TrainConfig(epochs=epochs,
                                                                     seed=config.seed),
                                  progress=lambda epoch, loss: bar.update(1))
    finally:
        bar.close()
    seconds = time.time() - started
    accuracy = training.accuracy(training.predict_logits(model, test.images), test.labels)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    weights = os.path.join(config.out_dir, name + ".pt")
    write_bytes_atomic(weights, buffer.getvalue())
    log("train: {}{}, {} epochs in {:.1f} s, PyTorch test accuracy {:.2%}".format(
        name, " (the large baseline)" if name == LARGE else "", epochs, seconds, accuracy))
    return model, {"model": "export.models:" + name, "epochs": epochs, "seconds": seconds,
                   "torch_test_accuracy": accuracy, "weights": weights}


def _export(model, paths, train, log):
    """Export to ONNX (+ metadata sidecar, parity-checked against PyTorch)."""
    from calibration.preprocess import Preprocessing
    from engines.model_metadata import ModelMetadata
    from export.onnx_export import export_to_onnx
    name = os.path.splitext(os.path.basename(paths["onnx"]))[0]
    metadata = ModelMetadata(class_names=train.class_names, source="export.models:" + name,
                             preprocessing=Preprocessing(channel_order="L"))
    exported = export_to_onnx(model, paths["onnx"], (1,) + train.images.shape[1:],
                              metadata=metadata)
    log("export: {} (parity max abs error {:.2e})".format(
        paths["onnx"], exported.parity["max_abs_error"]))
    return {"onnx": paths["onnx"], "parity": exported.parity}


def _build(paths, config, log):
    """Build an engine: TensorRT where installed, ONNX Runtime otherwise."""
    from engines.build import build_engine
    from engines.build_config import BuildConfig
    sidecar = build_engine(paths["onnx"], paths["engine"], BuildConfig(
        precision=config.precision, max_batch=config.max_batch, backend=config.backend))
    log("build: {} ({})".format(paths["engine"], sidecar.describe()))
    return {"engine": paths["engine"], "backend": sidecar.backend, "precision": sidecar.precision,
            "seconds": sidecar.build_seconds}


def _prepared(engine, images):
    import numpy as np
    meta = getattr(engine, "metadata", None)
    prep = None if meta is None else meta.preprocessing
    out = images if prep is None or prep.is_identity else prep.apply(images)
    return np.ascontiguousarray(out, dtype=np.float32)


def _choose_threshold(paths, val, config, log):
    """The cheapest threshold (by measured latency per sample) whose validation accuracy is within
    ``config.tolerance`` of the large model's; the most accurate one when none is."""
    import numpy as np

    from toolkit.deploy import open_engine
    from toolkit.strategies import Single
    from toolkit.strategies.thresholds import latency_cost_ms, threshold_curve
    probs, costs = {}, {}
    for name in (SMALL, LARGE):
        with open_engine(paths[name]["engine"]) as engine:
            images = _prepared(engine, val.images)
            single = Single(engine)
            probs[name] = np.concatenate([single.classify(images[i:i + config.max_batch]).probs
                                          for i in range(0, len(images), config.max_batch)])
            costs[name] = latency_cost_ms(engine, images, batch_size=config.max_batch)
    unit = "ms per sample (median, measured)"
    curve = threshold_curve(probs[SMALL], probs[LARGE], val.labels, cost_first=costs[SMALL],
                            cost_second=costs[LARGE], cost_unit=unit)
    target = curve.accuracy_second - config.tolerance
    choice = curve.cheapest(target_accuracy=target)
    if choice is None:  # not reachable (a large model worse than the tolerance allows)
        choice = curve.best_accuracy()
    log("threshold: {} -> {} on {}: {} (large alone: accuracy {:.4f} at {:.4g} {}; "
        "target {:.4f})".format(SMALL, LARGE, val.name, choice.line(), curve.accuracy_second,
                                costs[LARGE], unit, target))
    data = choice.to_dict()
    data.update({"data": val.name, "target_accuracy": target, "tolerance": config.tolerance,
                 "accuracy_small": curve.accuracy_first, "accuracy_large": curve.accuracy_second,
                 "cost_small": costs[SMALL], "cost_large": costs[LARGE]})
    return data


def _write_specs(out_dir, paths, threshold):
    """Three deployment specs: the large model alone, the cascade, memo + cascade."""
    from toolkit import deploy
    specs = {"large": os.path.join(out_dir, "large.yaml"),
             "cascade": os.path.join(out_dir, "cascade.yaml"),
             "memo_cascade": os.path.join(out_dir, "deploy.yaml")}
    large = os.path.relpath(os.path.abspath(paths[LARGE]["engine"]),
                            os.path.dirname(os.path.abspath(specs["large"])))
    deploy.write_spec(specs["large"], {"version": 1, "engines": {"large": large},
                                       "strategy": "large"})
    for key, memo in (("cascade", "off"), ("memo_cascade", "exact")):
        deploy.write_spec(specs[key], deploy.cascade_spec(
            specs[key], paths[SMALL]["engine"], paths[LARGE]["engine"], threshold, memo=memo,
            names=("small", "large")))
    return specs


ROWS = (("large", "large alone"), ("cascade", "cascade small -> large"),
        ("memo_cascade", "memo + cascade"))


def _compare(specs, test, config, log):
    """Run each spec on the duplicated test split ``config.repeats`` times (interleaved, each on
    a freshly loaded deployment); time per sample = the sum over batches of each batch's median
    time over the runs, / samples. Energy per inference (median over the runs) is measured when a
    power source exists (runs whose window was not measured are left out), else estimated by the
    energy model."""
    import numpy as np

    from toolkit import deploy
    from toolkit.energy_estimate import estimate_deployment, try_estimate
    from toolkit.power.config import PowerConfig
    from toolkit.power.meter import PowerMeter
    data = deploy.duplicate(test, config.duplicate, "none", config.seed)
    runs = {key: [] for key, _ in ROWS}
    with PowerMeter(config.power or PowerConfig(source="auto")) as meter:
        if meter.measuring:
            meter.measure_idle()
        for _ in range(config.repeats):
            for key, _ in ROWS:
                with deploy.load_spec(specs[key]) as deployment:
                    report = deploy.run_deployment(
                        deployment, data, batch_size=config.max_batch,
                        meter=meter if meter.measuring else None)
                    energy = _measured_energy(report)
                    if energy is None:
                        estimate, why_not = try_estimate(estimate_deployment, deployment)
                        energy = {"measured": False, "estimate": None if estimate is None
                                  else estimate.to_dict(), "estimate_unavailable": why_not}
                runs[key].append((report, energy))
        source = meter.source.info()["description"] if meter.source is not None else None
        idle = meter.idle
        measuring = meter.measuring
        not_measured = None if measuring else meter.report().not_measured_reason
    rows = []
    for key, label in ROWS:
        report, energy = runs[key][-1]
        ms = [1000.0 * r.total_s / r.samples for r, _ in runs[key]]
        # per batch the median over the runs, summed: robust to a stray slow batch in one run
        batch_ms = np.median(np.stack([r.batch_ms for r, _ in runs[key]]), axis=0)
        if measuring:  # never mix measured mJ with estimated units
            values = [e["mj_per_inference"] for _, e in runs[key] if e["measured"]]
        else:
            values = [e["estimate"]["value"] for _, e in runs[key] if e.get("estimate")]
        rows.append({"strategy": label, "spec": specs[key], "describe": report.strategy,
                     "samples": report.samples, "accuracy": report.accuracy,
                     "ms_per_sample": float(batch_ms.sum()) / report.samples,
                     "ms_per_sample_runs": ms,
                     "handoff_rate": report.stats.get("handoff_rate"),
                     "memo_hit_rate": report.stats.get("memo_hit_rate"),
                     "energy_per_inference": float(np.median(values)) if values else None,
                     "energy": energy})
    for row in rows:
        row["speedup_vs_large"] = rows[0]["ms_per_sample"] / row["ms_per_sample"]
        base, value = rows[0]["energy_per_inference"], row["energy_per_inference"]
        row["energy_vs_large"] = value / base if value is not None and base else None
    compare = {"data": data.name, "samples": len(data), "batch": config.max_batch,
               "repeats": config.repeats, "rows": rows,
               "energy_measured": measuring, "power_source": source, "idle": idle,
               "not_measured_reason": not_measured,
               "switched_off": meter.config.source == "none"}
    for line in _table(compare):
        log(line)
    return compare


def _measured_energy(report):
    """The run window's measured energy per inference (above idle when known), or None."""
    windows = (report.energy or {}).get("windows") or []
    if not windows or not windows[-1].get("measured"):
        return None
    window = windows[-1]
    above = window.get("mj_per_inference_above_idle")
    return {"measured": True, "mj_per_inference": above if above is not None
            else window["mj_per_inference"], "above_idle": above is not None,
            "mj_per_inference_total": window["mj_per_inference"], "flags": window["flags"]}


def _table(compare):
    """The comparison as text lines: a header, one row per strategy and what the energy is."""
    rows = compare["rows"]
    measured = compare["energy_measured"]
    energy_head = "mJ/inference" if measured else "energy/inf (EST.)"
    out = ["compare: {} ({} samples), batch {}, time: each batch's median of {} runs".format(
               compare["data"], compare["samples"], compare["batch"], compare["repeats"]),
           "  {:<24} {:>8} {:>10} {:>8} {:>9} {:>9} {:>18}".format(
               "strategy", "accuracy", "ms/sample", "handoff", "memo hits", "speed-up",
               energy_head)]

    def rate(value):
        return "-" if value is None else "{:.3f}".format(value)
    for row in rows:
        energy = "n/a" if row["energy_per_inference"] is None else "{:.4g}".format(
            row["energy_per_inference"])
        if row["energy_vs_large"] is not None:
            energy += " ({:.0%})".format(row["energy_vs_large"])
        out.append("  {:<24} {:>8.4f} {:>10.4f} {:>8} {:>9} {:>8.2f}x {:>18}".format(
            row["strategy"], row["accuracy"], row["ms_per_sample"], rate(row["handoff_rate"]),
            rate(row["memo_hit_rate"]), row["speedup_vs_large"], energy))
    if measured:
        above = all(row["energy"].get("above_idle") for row in rows)
        out.append("  energy: MEASURED with {}, mJ per inference {} (percent: of the large "
                   "model's)".format(compare["power_source"], "above the idle baseline of "
                                     "{:.0f} mW".format(compare["idle"]["power_mw"]) if above
                                     else "in total (no idle baseline)"))
        flagged = [row["energy"]["flags"] for row in rows if row["energy"].get("flags")]
        if flagged:
            out.append("  ! flagged windows for {} of {} strategies, e.g. {} (all flags: "
                       "demo_report.json)".format(len(flagged), len(rows), flagged[0][0]))
    else:
        estimate = rows[0]["energy"].get("estimate") or {}
        if estimate:
            what = "mJ per sample (calibrated)" if estimate.get("calibrated") else \
                "normalized units per sample (one 16-bit MAC = 1; not joules)"
        else:
            what = "n/a: " + str(rows[0]["energy"].get("estimate_unavailable"))
        out.append("  energy: ESTIMATE, not measured ({}): the analytical energy model's expected "
                   "energy, {}; percent: of the large model's".format(
                       "--power none" if compare["switched_off"] else
                       "no power source here; `toolkit power --list` says why", what))
    return out


def _commands(config, paths, specs, threshold):
    """The commands that repeat the demo's steps by hand."""
    labels = ",".join(str(i) for i in range(10))
    build_extra = "".join([" --precision " + config.precision
                           if config.precision != "fp32" else "",
                           " --backend " + config.backend if config.backend != "auto" else ""])
    commands = []
    for name in (SMALL, LARGE):
        commands.append("toolkit export export.models:{} --weights {} --input-shape 1x1x8x8 "
                        "-o {} --labels {}".format(name, paths[name]["weights"],
                                                   paths[name]["onnx"], labels))
        commands.append("toolkit build {} -o {} --max-batch {}{}".format(
            paths[name]["onnx"], paths[name]["engine"], config.max_batch, build_extra))
    commands.append("toolkit bench {} --batch {}".format(paths[SMALL]["engine"],
                                                         config.max_batch))
    split = os.path.join(config.out_dir, "split.json")
    commands.append("toolkit pair threshold {} {} --data {}:val --target-accuracy {:.6f} "
                    "--write-spec {}".format(paths[SMALL]["engine"], paths[LARGE]["engine"], split,
                                             threshold["target_accuracy"],
                                             specs["memo_cascade"]))
    for key, _ in ROWS:
        commands.append("toolkit run {} --data {}:test --duplicate {:g}".format(
            specs[key], split, config.duplicate))
    return commands


@click.command("demo")
@click.option("--out", "out_dir", default="demo-out", show_default=True,
              type=click.Path(file_okay=False), help="Folder for the models, engines, specs and "
                                                     "the report.")
@click.option("--epochs", default=20, show_default=True, type=int,
              help="Training epochs of the small model.")
@click.option("--baseline-epochs", default=8, show_default=True, type=int,
              help="Training epochs of the large baseline.")
@click.option("--backend", type=click.Choice(["auto", "tensorrt", "onnxruntime"]), default="auto",
              show_default=True, help="Engine backend (auto: TensorRT when usable).")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32",
              show_default=True, help="Engine precision.")
@click.option("--iterations", default=200, show_default=True, type=int,
              help="Timed calls per latency measurement.")
@click.option("--repeats", default=5, show_default=True, type=int,
              help="Runs of each strategy in the comparison (each batch's median time is kept).")
@power_options(default_source="auto")
@click.option("--no-progress", is_flag=True, help="No progress bars on stderr.")
def demo(out_dir, epochs, baseline_epochs, backend, precision, iterations, repeats,
         power_source, power_rate_hz, idle_s, power_sysfs_root, no_progress):
    """Run the whole toolkit on the bundled digits (under 3 minutes on 2 CPU cores).

    \b
    Steps:
      1. load scikit-learn's digits (8x8, 10 classes; no download), split 60/20/20
         (written to split.json: the printed commands read it)
      2. train export.models.small_cnn with PyTorch
      3. export it to ONNX with a parity check and a metadata sidecar
      4. build an engine (TensorRT on a Jetson, ONNX Runtime elsewhere)
      5. run the engine on the test split: accuracy
      6. time it at batch 1 and 32: median / p95 latency and throughput
      7. train export.models.large_cnn (the large baseline), export and build it
      8. choose the cascade threshold small -> large on the val split: the cheapest
         (by measured latency) within 0.3 points of the large model's accuracy
      9. write deployment specs: large.yaml, cascade.yaml, deploy.yaml (memo + cascade)
     10. run the test split with every image shown twice through each spec and
         print a table: accuracy, ms per sample, handoff rate, memo hit rate,
         speed-up vs large, energy per inference (measured with a power source,
         else the analytical energy model's estimate, labelled ESTIMATE)
     11. print the toolkit commands that repeat each step by hand
    Everything lands in --out (*.pt, *.onnx, *.engine + .json, *.yaml, split.json,
    demo_report.json).

    \b
    Examples:
      toolkit demo
      toolkit demo --out /tmp/demo --epochs 3 --baseline-epochs 2
      toolkit demo --precision fp16 --power ina3221
    """
    config = DemoConfig(out_dir=out_dir, epochs=epochs, baseline_epochs=baseline_epochs,
                        backend=backend, precision=precision, bench_iterations=iterations,
                        repeats=repeats,
                        power=config_from_options(power_source, power_rate_hz, idle_s,
                                                  power_sysfs_root),
                        progress=not no_progress)
    run_demo(config, log=click.echo)
