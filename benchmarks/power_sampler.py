"""The power sampler's achieved rate, its CPU cost, and its effect on inference throughput.

1. Rate: the sampler process reads a fake three-rail INA3221 tree (JetPack 4 layout, one ``pread``
   per rail) at the asked rate; the achieved rate is samples / time span of the trace.
2. Throughput: an ONNX Runtime engine (``export.models.small_cnn`` trained one epoch on digits)
   runs blocks of inferences with and without the sampler running beside it at 100 Hz,
   interleaved (off/on, then on/off, ...) so machine noise hits both alike; the figure is the
   median over rounds of the on/off throughput ratio. One sampler process runs throughout: it is
   paused (idle on its pipe, no reads) for the "off" blocks and resumed for the "on" blocks, each
   of which is one meter window.

    python -m benchmarks.power_sampler [--quick]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np


def _export_trained_model(folder):
    """small_cnn trained one epoch on the digits, exported to ONNX (opset 13, dynamic batch)."""
    import warnings

    import torch

    from calibration.datasets import load_digits_variant
    from export import models, training
    torch.set_num_threads(1)
    train = load_digits_variant("digits").split(seed=0)[0]
    model = training.train_classifier(models.small_cnn(), train, training.TrainConfig(epochs=1))
    path = os.path.join(folder, "small_cnn.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(1, 1, 8, 8),), path, dynamo=False,
                          opset_version=13, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return path


def _cpu_seconds(pid):
    """CPU seconds used so far by process ``pid`` (Linux: schedstat in ns, else /proc/pid/stat)."""
    try:
        with open("/proc/{}/schedstat".format(pid)) as handle:
            return int(handle.read().split()[0]) / 1e9
    except (IOError, OSError, ValueError, IndexError):
        with open("/proc/{}/stat".format(pid)) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def sampler_rate(root, rates, seconds):
    """(in-process µs per read of all rails,
    [(asked Hz, achieved Hz, sampler CPU % of a core)])."""
    from toolkit.power.config import PowerConfig
    from toolkit.power.meter import PowerMeter
    from toolkit.power.sources import find_source

    source, _ = find_source(PowerConfig(source="ina3221", sysfs_root=root))
    source.open()
    reads = 5000
    start = time.perf_counter()
    for _ in range(reads):
        source.read()
    read_us = (time.perf_counter() - start) / reads * 1e6
    source.close()
    rows = []
    for rate in rates:
        config = PowerConfig(source="ina3221", sysfs_root=root, rate_hz=rate)
        with PowerMeter(config) as meter:
            cpu0 = _cpu_seconds(meter.sampler.pid)
            wall0 = time.monotonic()
            time.sleep(seconds)
            cpu = (_cpu_seconds(meter.sampler.pid) - cpu0) / (time.monotonic() - wall0)
            trace = meter.fetch()
            t = trace.t[trace.t >= wall0]
            achieved = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 else 0.0
        rows.append((rate, achieved, 100.0 * cpu))
    return read_us, rows


def throughput(engine, root, batch, rounds, calls, rate_hz, nices=(0, 10)):
    """Interleaved blocks without the sampler and with it at each niceness of ``nices``.

    Returns {side: [(inferences/s, CPU us per inference of this process) per round]} (side
    "off" or the niceness), {nice: sampler Hz}, {nice: sampler CPU % of a core}.
    """
    from toolkit.power.config import PowerConfig
    from toolkit.power.meter import PowerMeter

    feeds = {"input": np.random.RandomState(0).random_sample((batch, 1, 8, 8)).astype(np.float32)}
    run = engine.run_unchecked
    for _ in range(max(1, calls // 4)):  # warm-up
        run(feeds)

    def block():
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            run(feeds)
        wall_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
        return calls * batch / wall_s, cpu_s / (calls * batch) * 1e6

    meters = {nice: PowerMeter(PowerConfig(source="ina3221", sysfs_root=root, rate_hz=rate_hz,
                                           sampler_nice=nice)).start() for nice in nices}
    sides = ["off"] + list(nices)
    results = {side: [] for side in sides}
    cpu_s = {nice: 0.0 for nice in nices}
    on_s = {nice: 0.0 for nice in nices}
    try:
        for meter in meters.values():
            meter.pause()  # a paused sampler idles on its pipe: no reads, no CPU
        for i in range(rounds):
            for k in range(len(sides)):
                side = sides[(i + k) % len(sides)]  # the order rotates every round
                if side == "off":
                    results[side].append(block())
                    continue
                meter = meters[side]
                pid = meter.sampler.pid
                meter.resume()
                time.sleep(0.02)
                cpu0, wall0 = _cpu_seconds(pid), time.monotonic()
                with meter.window("block") as window:
                    results[side].append(block())
                    window.inferences = calls * batch
                cpu_s[side] += _cpu_seconds(pid) - cpu0
                on_s[side] += time.monotonic() - wall0
                time.sleep(0.02)  # a sample after the window's end
                meter.pause()
        achieved = {}
        for nice, meter in meters.items():
            meter.report()  # collects the samples that cover the last window
            rates = []
            for window in meter.windows:
                t = meter.trace.t[(meter.trace.t >= window.start) & (meter.trace.t <= window.end)]
                if len(t) > 1:
                    rates.append((len(t) - 1) / (t[-1] - t[0]))
            achieved[nice] = statistics.median(rates)
    finally:
        for meter in meters.values():
            meter.stop()
    return results, achieved, {n: 100.0 * cpu_s[n] / on_s[n] for n in nices}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (a smoke run)")
    args = parser.parse_args(argv)
    rounds, seconds = (6, 1.0) if args.quick else (40, 3.0)
    block_s = 0.25 if args.quick else 0.4

    sys.path.insert(0, os.getcwd())
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    from tests.toolkit.power.fakes import FakeJetson

    with tempfile.TemporaryDirectory() as folder:
        jetson = FakeJetson(os.path.join(folder, "nano"), "nano")  # three rails, JetPack 4 layout
        read_us, rows = sampler_rate(jetson.root, (100.0, 1000.0, 5000.0), seconds)
        print("sampler on a fake 3-rail INA3221 tree (JetPack 4 iio layout, pread per rail; "
              "{:.0f} s per rate)".format(seconds))
        print("  one read of the 3 rails in-process: {:.1f} us (at most ~{:.0f} Hz)".format(
            read_us, 1e6 / read_us))
        print("  {:>9}  {:>12}  {:>26}".format("asked Hz", "achieved Hz",
                                               "sampler CPU (% of a core)"))
        for asked, achieved, cpu in rows:
            print("  {:>9.0f}  {:>12.1f}  {:>26.2f}".format(asked, achieved, cpu))

        onnx_path = _export_trained_model(folder)
        print("inference throughput beside the sampler at 100 Hz (small_cnn 1x8x8, ONNX Runtime "
              "CPU, {} interleaved rounds of {:g} s blocks; {} CPU cores)".format(
                  rounds, block_s, os.cpu_count()))
        print("  {:>7}  {:>5}  {:>4}  {:>10}  {:>10}  {:>12}  {:>7}  {:>14}  {:>10}  {:>13}".format(
            "threads", "batch", "nice", "off inf/s", "on inf/s", "ratio on/off", "loss %",
            "CPU/inf on/off", "sampler Hz", "sampler CPU %"))
        for threads in (1, 0):
            engine = OnnxRuntimeEngine(onnx_path, threads=threads)
            for batch in (1, 32):
                feeds = {"input": np.zeros((batch, 1, 8, 8), np.float32)}
                start, n = time.perf_counter(), 0
                while time.perf_counter() - start < 0.3:
                    engine.run_unchecked(feeds)
                    n += 1
                calls = max(10, int(n / (time.perf_counter() - start) * block_s))
                results, achieved, cpu = throughput(engine, jetson.root, batch, rounds, calls,
                                                    100.0)
                off = results["off"]
                for nice in achieved:
                    on = results[nice]
                    ratio = statistics.median([b[0] / a[0] for a, b in zip(off, on)])
                    cpu_ratio = statistics.median([b[1] / a[1] for a, b in zip(off, on)])
                    print("  {:>7}  {:>5}  {:>4}  {:>10.0f}  {:>10.0f}  {:>12.4f}  {:>7.2f}  "
                          "{:>14.4f}  {:>10.1f}  {:>13.2f}".format(
                              threads or "all", batch, nice, statistics.median([a[0] for a in off]),
                              statistics.median([b[0] for b in on]), ratio,
                              100.0 * (1.0 - ratio), cpu_ratio, achieved[nice], cpu[nice]))
            engine.close()
        print("ratio: median over rounds of (throughput with the sampler) / (without); loss = "
              "1 - ratio (negative: within noise); CPU/inf on/off: this process's CPU time per "
              "inference with / without the sampler (insensitive to other processes' load). "
              "threads 'all' = ONNX Runtime's default. "
              "sampler CPU: its CPU time during the 'on' blocks, % of one core (what it can take "
              "from inference at most).")
        print("machine load average while measuring: {:.2f} (1 min) on {} cores".format(
            os.getloadavg()[0], os.cpu_count()))


if __name__ == "__main__":
    main()
