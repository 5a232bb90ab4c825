"""INT8 against fp32 on ONNX Runtime's CPU engine: speed ratio and accuracy, for the digits CNN and
a CNN of more than 10 MMACs per image.

For each model -- ``small_cnn`` on the 8x8 digits and ``large_cnn`` (ResNetish, about 17 MMACs)
on ``digits16`` (the digits upscaled to 16x16) -- the run trains it (cached in ``--workdir``),
exports it, quantizes it to Q/DQ with at most 512 calibration samples (``toolkit calibrate
--format qdq``'s code, accuracy gate included), builds the fp32 and the INT8 ONNX Runtime engines
(``toolkit build``'s code: the INT8 engine holds the form this CPU takes, see ``toolkit info``) and
times both on one thread, interleaved in the same run (batches of 32, median of the rounds). It
prints the speed ratio (fp32 time / INT8 time) against the aim of 2x, the test accuracy of both
against the aim of at most 0.5 points lost, the INT8 path this CPU took, and the accuracy of the
7-bit form CPUs without VNNI take (the same on every CPU: nothing saturates it).

    python -m benchmarks.int8 [--quick] [--workdir DIR]
"""
import argparse
import os
import statistics
import time

from benchmarks import common

AIM_SPEEDUP = 2.0
AIM_MAX_DROP_POINTS = 0.5
CALIBRATION_SAMPLES = 512
BATCH = 32


def _models():
    from export import models
    return [("small_cnn (digits 8x8)", "small_cnn", models.small_cnn, "digits"),
            ("large_cnn (digits16 16x16)", "large_cnn", models.large_cnn, "digits16")]


def macs_per_image(model, shape):
    """Multiply-accumulates of one image through ``model``'s Conv2d and Linear layers."""
    import torch
    from torch import nn
    total = [0]

    def count(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1]
            total[0] += output[0].numel() * (module.in_channels // module.groups) * kernel
        elif isinstance(module, nn.Linear):
            total[0] += module.in_features * module.out_features
    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model(torch.zeros((1,) + tuple(shape)))
    finally:
        for hook in hooks:
            hook.remove()
    return total[0]


def interleaved_ms(engines, feeds, rounds, pick=statistics.median):
    """``pick`` (median) of the ms per call of each engine, called in turn (order rotating every
    round: :func:`benchmarks.common.interleaved`)."""
    seconds = common.interleaved({index: (lambda engine=engine: engine.infer(feeds))
                                  for index, engine in enumerate(engines)}, rounds, pick=pick)
    return [1000.0 * seconds[index] for index in range(len(engines))]


def _accuracy(engine, data):
    import numpy as np
    name = engine.outputs[0].name
    logits = np.concatenate([engine.infer({"input": data.images[i:i + 256]})[name]
                             for i in range(0, len(data.images), 256)])
    return float(np.mean(logits.argmax(1) == data.labels))


def _trained_onnx(workdir, key, factory, data_name, train, epochs):
    """Train once per (model, data, epochs); the exported ONNX is cached in ``workdir``."""
    import torch

    from export import training
    from export.onnx_export import export_to_onnx
    path = os.path.join(workdir, "{}-{}-e{}.onnx".format(key, data_name, epochs))
    model = factory()
    shape = tuple(train.images.shape[1:])
    macs = macs_per_image(model, shape)
    if not os.path.isfile(path):
        torch.manual_seed(0)
        model = training.train_classifier(model, train, training.TrainConfig(epochs=epochs))
        export_to_onnx(model, path, (1,) + shape, input_names=("input",),
                       output_names=("logits",))
    return path, macs


def run_model(label, key, factory, data_name, workdir, epochs, rounds):
    """One model's row: MACs, accuracies, ms per batch and the ratio."""
    from calibration.datasets import load_digits_variant
    from calibration.qdq import QdqConfig, quantize_qdq
    from engines.build import build_engine
    from engines.build_config import BuildConfig
    from engines.int8_gate import Int8Gate
    from engines.load import load_engine
    train, val, test = load_digits_variant(data_name).split(seed=0)
    onnx_path, macs = _trained_onnx(workdir, key, factory, data_name, train, epochs)
    qdq_path = onnx_path[:-len(".onnx")] + ".int8.onnx"
    calibration = train.images[:CALIBRATION_SAMPLES]
    quantize_qdq(onnx_path, calibration, qdq_path, QdqConfig(batch_size=16))
    fp32_engine = onnx_path[:-len(".onnx")] + ".fp32.engine"
    int8_engine = onnx_path[:-len(".onnx")] + ".int8.engine"
    build_engine(onnx_path, fp32_engine, BuildConfig(backend="onnxruntime", max_batch=256))
    gate = Int8Gate(calibration)  # the benchmark reports test accuracy itself
    sidecar = build_engine(qdq_path, int8_engine,
                           BuildConfig(precision="int8", backend="onnxruntime", max_batch=256),
                           gate)
    import onnx

    from engines.cpu_int8 import CpuInt8Path, cpu_form
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    seven_bit = cpu_form(onnx.load(qdq_path), CpuInt8Path("x86", "", "u8s8-reduce-range", ""))
    with OnnxRuntimeEngine(seven_bit.SerializeToString(), threads=1) as engine:
        reduced_accuracy = _accuracy(engine, test)  # no CPU saturates it: the same everywhere
    with load_engine(fp32_engine, threads=1) as fp32, load_engine(int8_engine, threads=1) as int8:
        accuracy = (_accuracy(fp32, test), _accuracy(int8, test))
        feeds = {"input": test.images[:BATCH]}
        fp32_ms, int8_ms = interleaved_ms([fp32, int8], feeds, rounds)
        fp32_best, int8_best = interleaved_ms([fp32, int8], feeds, rounds, pick=min)
    form = [note for note in sidecar.notes if "CPU form" in note]
    return {"label": label, "macs": macs, "fp32_accuracy": accuracy[0],
            "int8_accuracy": accuracy[1], "lost_points": 100.0 * (accuracy[0] - accuracy[1]),
            "reduced_accuracy": reduced_accuracy, "fp32_ms": fp32_ms, "int8_ms": int8_ms,
            "speedup": fp32_ms / int8_ms, "best_speedup": fp32_best / int8_best,
            "test_samples": len(test.images), "form": form}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer training epochs and timing rounds (a smoke run)")
    parser.add_argument("--workdir", default=os.path.join("build", "bench-int8"),
                        help="where trained models are cached [default: build/bench-int8]")
    args = parser.parse_args(argv)

    import onnxruntime
    import torch

    from engines.cpu_int8 import this_cpu_int8_path
    torch.set_num_threads(1)
    os.makedirs(args.workdir, exist_ok=True)
    path = this_cpu_int8_path()
    epochs = 3 if args.quick else 15
    rounds = 10 if args.quick else 200
    print("INT8 vs fp32 on ONNX Runtime {} CPU, 1 thread, batches of {}, {} calibration samples "
          "at most; {} epochs of training".format(onnxruntime.__version__, BATCH,
                                                 CALIBRATION_SAMPLES, epochs))
    print("this CPU's INT8 path: {}".format(path.describe()))
    rows = []
    for label, key, factory, data_name in _models():
        started = time.perf_counter()
        row = run_model(label, key, factory, data_name, args.workdir, epochs, rounds)
        rows.append(row)
        print("{}: {:.1f} MMACs/image, done in {:.0f} s".format(
            label, row["macs"] / 1e6, time.perf_counter() - started), flush=True)
    print("")
    print("| model | MMACs/image | fp32 acc | int8 acc | lost (points) | 7-bit form acc | "
          "fp32 ms/batch | int8 ms/batch | speed-up | best-of speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        lost = row["lost_points"]
        print("| {} | {:.1f} | {:.2%} | {:.2%} | {:+.2f} | {:.2%} | {:.3f} | {:.3f} | {:.2f}x | "
              "{:.2f}x |".format(row["label"], row["macs"] / 1e6, row["fp32_accuracy"],
                                 row["int8_accuracy"], lost, row["reduced_accuracy"],
                                 row["fp32_ms"], row["int8_ms"], row["speedup"],
                                 row["best_speedup"]))
    print("(ms/batch and speed-up: medians of the interleaved rounds; best-of: the fastest "
          "round of each, a second interleaved pass)")
    print("(int8: the form this CPU takes; 7-bit form: u8s8-reduce-range, what x86 CPUs without "
          "VNNI get; no CPU saturates it, so its accuracy is the same on every CPU)")
    print("")
    for row in rows:
        lost = row["lost_points"]
        print("{}: speed-up {:.2f}x (aim >= {:.1f}x: {}), accuracy lost {:+.2f} points on {} test "
              "images (aim <= {:.1f}: {})".format(
                  row["label"], row["speedup"], AIM_SPEEDUP,
                  "met" if row["speedup"] >= AIM_SPEEDUP else "NOT met", lost,
                  row["test_samples"], AIM_MAX_DROP_POINTS,
                  "met" if lost <= AIM_MAX_DROP_POINTS else "NOT met"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
