"""Energy-aware pruning (Yang, Chen, Sze, CVPR 2017) on digits CNNs: estimated energy reduction at
no more than 1 point of accuracy lost, and the measured ONNX Runtime speed-up of channel pruning.

For each model -- ``small_cnn`` (SimpleCNN widths 16, 32) and a wider SimpleCNN (64, 128), both
trained on the 8x8 digits train split -- the run prunes two ways with the same settings (target
25% of the original energy, at most 1 point of validation accuracy lost):

- ``weights``: unstructured (the paper's method). The energy model counts the skipped zeros; a
  dense runtime does not skip them, so its latency ratio is expected near 1;
- ``channels``: whole channels removed (smaller dense layers).

It prints the estimated energy reduction (original / pruned, the analytical model in normalized
16-bit units) against the aim of 3x (the paper: 3.7x for AlexNet), the test-accuracy change
against the 1-point bound, and the ONNX Runtime CPU latency of the original and the pruned model,
timed interleaved in the same run (1 thread; batch 256 and batch 1). Energies are estimates, not
measurements; latencies are measured. A last block times SimpleCNNs with odd and round channel
counts: why channel pruning keeps counts in multiples of 8.

    python -m benchmarks.pruning [--quick]
"""
import argparse
import time

AIM_REDUCTION = 3.0  # the task's aim (the paper reached 3.7x on AlexNet)
MAX_DROP_POINTS = 1.0


def _models():
    from export import models
    return [("small_cnn (16,32)", lambda: models.SimpleCNN(widths=(16, 32))),
            ("wide_cnn (64,128)", lambda: models.SimpleCNN(widths=(64, 128)))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer training epochs, rounds and timing runs (a smoke run)")
    parser.add_argument("--verbose", action="store_true", help="print every pruning path")
    args = parser.parse_args(argv)

    import torch

    from calibration.datasets import load_digits_variant
    from export import training
    from export.pruning import PruneConfig, compare_latency, onnx_bytes, prune_model

    torch.set_num_threads(1)
    train, val, test = load_digits_variant("digits").split(seed=0)
    epochs = 6 if args.quick else 15
    iterations = 20 if args.quick else 100
    shape = (1,) + tuple(train.images.shape[1:])
    rows = []
    for label, factory in _models():
        torch.manual_seed(0)
        start = time.perf_counter()
        model = training.train_classifier(factory(), train, training.TrainConfig(epochs=epochs))
        print("{}: trained {} epochs in {:.0f} s, test accuracy {:.2%}".format(
            label, epochs, time.perf_counter() - start,
            training.accuracy(training.predict_logits(model, test.images), test.labels)))
        for granularity in ("weights", "channels"):
            config = PruneConfig(target_energy=0.25, granularity=granularity,
                                 max_accuracy_drop=MAX_DROP_POINTS / 100.0,
                                 max_rounds=3 if args.quick else 8,
                                 finetune_epochs=2 if args.quick else 5,
                                 calibration_samples=128 if args.quick else 256)
            start = time.perf_counter()
            result = prune_model(model, train, val, config, test=test)
            seconds = time.perf_counter() - start
            original = onnx_bytes(result.original, shape, dynamic_batch=True)
            pruned = onnx_bytes(result.model, shape, dynamic_batch=True)
            latency = {batch: compare_latency(original, pruned, batch_size=batch,
                                              iterations=iterations)
                       for batch in (256, 1)}
            if args.verbose:
                print("\n".join(result.lines()))
            rows.append((label, granularity, result, latency, seconds))
            print("  {} pruning: {:.2f}x less energy, test accuracy {:+.2f} points, {:.0f} s".format(
                granularity, result.energy_reduction, 0.0 - 100 * result.accuracy_drop, seconds))

    print()
    print("energy: estimated by the analytical model (normalized 16-bit units); latency: measured, "
          "ONNX Runtime CPU, 1 thread, median of {} interleaved runs".format(iterations))
    header = "{:<18} {:<9} {:>11} {:>5} {:>5} {:>12} {:>6} {:>11} {:>11}  {}".format(
        "model", "prune", "energy red.", "aim", "met", "test acc pts", "<=1", "speedup@256",
        "speedup@1", "stopped")
    print(header)
    print("-" * len(header))
    for label, granularity, result, latency, _ in rows:
        drop_points = 100 * result.accuracy_drop
        print("{:<18} {:<9} {:>10.2f}x {:>4.1f}x {:>5} {:>+12.2f} {:>6} {:>10.2f}x {:>10.2f}x  {}".format(
            label, granularity, result.energy_reduction, AIM_REDUCTION,
            "yes" if result.energy_reduction >= AIM_REDUCTION else "no", 0.0 - drop_points,
            "yes" if drop_points <= MAX_DROP_POINTS + 1e-9 else "no", latency[256]["speedup"],
            latency[1]["speedup"], result.stop_reason.split(":")[0].split(" (")[0]))
    print("channel counts after channel pruning: " + "; ".join(
        "{}: {}".format(label, ", ".join("{} {}->{}".format(layer["layer"], layer["shape_before"][0],
                                                              layer["shape_after"][0])
                                         for layer in result.layers
                                         if layer["shape_after"][:1] != layer["shape_before"][:1]))
        for label, granularity, result, _, _ in rows if granularity == "channels"))
    _channel_multiples(shape, iterations)
    return 0


def _channel_multiples(shape, iterations):
    """Why channel counts are kept in multiples of 8: same-run latency of odd vs round widths."""
    from export import models
    from export.pruning import compare_latency, onnx_bytes

    base = onnx_bytes(models.SimpleCNN(widths=(64, 128)), shape, dynamic_batch=True)
    print("channel counts and speed (untrained SimpleCNN; timing does not depend on the weights), "
          "ONNX Runtime CPU, batch 256, speed-up over widths 64/128:")
    for widths in ((34, 26), (32, 32), (40, 32), (40, 30)):
        other = onnx_bytes(models.SimpleCNN(widths=widths), shape, dynamic_batch=True)
        timing = compare_latency(base, other, batch_size=256, iterations=iterations)
        print("  widths {:>2}/{:<2}: {:.2f}x".format(widths[0], widths[1], timing["speedup"]))


if __name__ == "__main__":
    raise SystemExit(main())
