"""``toolkit demo``: the whole job on the bundled digits, from training to a benchmarked engine."""
import os
import time

import click

from toolkit.errors import InputError


class DemoConfig(object):
    """Where the demo writes (``out_dir``), how long it trains (``epochs``), how the engine is
    built (``backend``, ``precision``, ``max_batch``) and how long latency is timed."""

    def __init__(self, out_dir="demo-out", epochs=20, backend="auto", precision="fp32",
                 max_batch=32, bench_iterations=200, bench_warmup=20, seed=0, progress=True):
        if epochs < 1:
            raise InputError("--epochs must be at least 1, got {}".format(epochs))
        if bench_iterations < 1:
            raise InputError("--iterations must be at least 1, got {}".format(bench_iterations))
        self.out_dir = out_dir
        self.epochs = int(epochs)
        self.backend = backend
        self.precision = precision
        self.max_batch = int(max_batch)
        self.bench_iterations = int(bench_iterations)
        self.bench_warmup = int(bench_warmup)
        self.seed = int(seed)
        self.progress = progress


def run_demo(config, log=lambda line: None):
    """Train -> export -> build -> evaluate -> benchmark; returns the report dict (also written to
    ``<out_dir>/demo_report.json``). ``log`` receives one line per finished step."""
    import numpy as np

    from calibration.datasets import load_dataset
    from calibration.preprocess import Preprocessing
    from engines.build import build_engine
    from engines.build_config import BuildConfig
    from engines.load import load_engine
    from engines.model_metadata import ModelMetadata
    from toolkit.benchmarking import bench_engine, progress_bar
    from toolkit.fileio import write_json_atomic
    from toolkit.lazy import lazy_import

    torch = lazy_import("torch", "the demo (it trains a small CNN first)")
    from export import models, training
    from export.onnx_export import export_to_onnx

    report = {"out_dir": config.out_dir, "steps": {}}
    os.makedirs(config.out_dir, exist_ok=True)
    onnx_path = os.path.join(config.out_dir, "small_cnn.onnx")
    engine_path = os.path.join(config.out_dir, "small_cnn.engine")

    # 1. data: the bundled digits, fixed 60/20/20 split
    train = load_dataset("digits:train", seed=config.seed)
    test = load_dataset("digits:test", seed=config.seed)
    log("data: digits, {} train / {} test images of {}x{}, {} classes".format(
        len(train), len(test), train.images.shape[2], train.images.shape[3], train.num_classes))

    # 2. train export.models.small_cnn on the host (torch)
    started = time.time()
    torch.manual_seed(config.seed)
    model = models.small_cnn(in_channels=1, num_classes=train.num_classes)
    bar = progress_bar(config.epochs, config.progress, desc="train", unit="epoch")
    try:
        training.train_classifier(model, train, training.TrainConfig(epochs=config.epochs,
                                                                     seed=config.seed),
                                  progress=lambda epoch, loss: bar.update(1))
    finally:
        bar.close()
    train_s = time.time() - started
    torch_accuracy = training.accuracy(training.predict_logits(model, test.images), test.labels)
    report["steps"]["train"] = {"epochs": config.epochs, "seconds": train_s,
                                "torch_test_accuracy": torch_accuracy}
    log("train: small_cnn, {} epochs in {:.1f} s, PyTorch test accuracy {:.2%}".format(
        config.epochs, train_s, torch_accuracy))

    # 3. export to ONNX (+ metadata sidecar, parity-checked against PyTorch)
    metadata = ModelMetadata(class_names=train.class_names, source="export.models:small_cnn",
                             preprocessing=Preprocessing(channel_order="L"))
    exported = export_to_onnx(model, onnx_path, (1,) + train.images.shape[1:], metadata=metadata)
    report["steps"]["export"] = {"onnx": onnx_path, "parity": exported.parity}
    log("export: {} (parity max abs error {:.2e})".format(
        onnx_path, exported.parity["max_abs_error"]))

    # 4. build an engine: TensorRT where installed, ONNX Runtime otherwise
    sidecar = build_engine(onnx_path, engine_path, BuildConfig(
        precision=config.precision, max_batch=config.max_batch, backend=config.backend))
    report["steps"]["build"] = {"engine": engine_path, "backend": sidecar.backend,
                                "precision": sidecar.precision, "seconds": sidecar.build_seconds}
    log("build: {} ({})".format(engine_path, sidecar.describe()))

    # 5. run the engine on the test split
    with load_engine(engine_path) as engine:
        name = engine.input.name
        predictions = []
        for start in range(0, len(test), config.max_batch):
            out = engine.infer({name: test.images[start:start + config.max_batch]})
            predictions.append(np.argmax(out[engine.outputs[0].name], axis=1))
        predictions = np.concatenate(predictions)
        accuracy = float(np.mean(predictions == test.labels))
        report["steps"]["evaluate"] = {"samples": len(test), "engine_test_accuracy": accuracy}
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
        report["steps"]["latency"] = latency

    report_path = os.path.join(config.out_dir, "demo_report.json")
    write_json_atomic(report_path, report)
    log("report: {}".format(report_path))
    return report


@click.command("demo")
@click.option("--out", "out_dir", default="demo-out", show_default=True,
              type=click.Path(file_okay=False), help="Folder for the model, engine and report.")
@click.option("--epochs", default=20, show_default=True, type=int, help="Training epochs.")
@click.option("--backend", type=click.Choice(["auto", "tensorrt", "onnxruntime"]), default="auto",
              show_default=True, help="Engine backend (auto: TensorRT when usable).")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32",
              show_default=True, help="Engine precision.")
@click.option("--iterations", default=200, show_default=True, type=int,
              help="Timed calls per latency measurement.")
@click.option("--no-progress", is_flag=True, help="No progress bars on stderr.")
def demo(out_dir, epochs, backend, precision, iterations, no_progress):
    """Run the whole toolkit on the bundled digits (under 3 minutes on 2 CPU cores).

    \b
    Steps:
      1. load scikit-learn's digits (8x8, 10 classes; no download), split 60/20/20
      2. train export.models.small_cnn with PyTorch
      3. export it to ONNX with a parity check and a metadata sidecar
      4. build an engine (TensorRT on a Jetson, ONNX Runtime elsewhere)
      5. run the engine on the test split: accuracy
      6. time it at batch 1 and 32: median / p95 latency and throughput
    Everything lands in --out (small_cnn.onnx, small_cnn.engine + .json, demo_report.json).

    \b
    Examples:
      toolkit demo
      toolkit demo --out /tmp/demo --epochs 3
      toolkit demo --precision fp16
    """
    config = DemoConfig(out_dir=out_dir, epochs=epochs, backend=backend, precision=precision,
                        bench_iterations=iterations, progress=not no_progress)
    run_demo(config, log=click.echo)
