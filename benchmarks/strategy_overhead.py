"""What the runtime strategies cost on top of the engines, measured side by side in one run.

1. ``Single(engine).classify`` (softmax, labels, confidence, counters) vs the engine's raw
   ``infer`` on the same batch;
2. a memo hit (exact mode: xxh3_128 per sample + LRU lookup) vs running the model; and on encoded
   files, a hit (hash the PNG bytes) vs decoding + preprocessing + running the model;
3. a perceptual memo key (dHash, plain and rotation/flip invariant) per sample vs running the model;
4. the vectorized threshold curve (one sort + cumsum) vs a loop over the thresholds (each
   vectorized over the samples).

Blocks of calls alternate between the sides so that machine noise hits both alike; each figure is
the median over blocks. The model is ``export.models.small_cnn`` (untrained: timing does not
depend on the weights) on 8x8 digits, ONNX Runtime on the CPU with one thread.

    python -m benchmarks.strategy_overhead [--quick]
"""
import argparse
import io
import os
import tempfile
import time

import numpy as np

from benchmarks.common import export_untrained


def _median_interleaved(sides, rounds):
    """``sides``: {name: callable() -> seconds per unit}; median of each over ``rounds`` rounds,
    the order rotating every round."""
    names = list(sides)
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(sides[name]())
    return {name: float(np.median(values)) for name, values in times.items()}


def _per_sample_us(call, samples, calls):
    def run():
        start = time.perf_counter()
        for _ in range(calls):
            call()
        return (time.perf_counter() - start) / (calls * samples) * 1e6
    return run


def bench_single(engine, images, rounds, calls):
    from toolkit.strategies import Single
    single = Single(engine)
    feeds = {"input": images}
    return _median_interleaved({
        "engine.infer": _per_sample_us(lambda: engine.infer(feeds), len(images), calls),
        "Single.classify": _per_sample_us(lambda: single.classify(images), len(images), calls),
    }, rounds)


def bench_memo(engine, images, rounds, calls):
    from toolkit.strategies import Memo, MemoConfig, Single
    memo = Memo(Single(engine), MemoConfig("exact"))
    memo.classify(images)  # every later call hits
    plain = Single(engine)
    return _median_interleaved({
        "model": _per_sample_us(lambda: plain.classify(images), len(images), calls),
        "memo hit": _per_sample_us(lambda: memo.classify(images), len(images), calls),
    }, rounds)


def bench_encoded(engine, images, rounds, calls):
    from PIL import Image

    from engines.preprocess import Preprocessing
    from toolkit.strategies import Memo, MemoConfig, Single
    blobs = []
    for image in images:
        out = io.BytesIO()
        Image.fromarray(np.round(image[0] * 255).astype(np.uint8)).save(out, format="PNG")
        blobs.append(out.getvalue())
    prep = Preprocessing()

    def decode(blob):
        return prep.apply(np.asarray(Image.open(io.BytesIO(blob)).convert("L"))[None])[0]
    memo = Memo(Single(engine), MemoConfig("exact"))
    memo.classify_encoded(blobs, decode)
    plain = Single(engine)
    return _median_interleaved({
        "decode + model": _per_sample_us(lambda: plain.classify_encoded(blobs, decode),
                                         len(blobs), calls),
        "memo hit (file bytes)": _per_sample_us(lambda: memo.classify_encoded(blobs, decode),
                                                len(blobs), calls),
    }, rounds)


def bench_keys(engine, images, rounds, calls):
    from toolkit.strategies import Single
    from toolkit.strategies.hashing import dhash, exact_keys
    plain = Single(engine)
    n = len(images)
    return _median_interleaved({
        "model": _per_sample_us(lambda: plain.classify(images), n, calls),
        "xxh3_128 key": _per_sample_us(lambda: exact_keys(images), n, calls),
        "dHash key": _per_sample_us(lambda: dhash(images), n, calls),
        "dHash key (invariant)": _per_sample_us(lambda: dhash(images, True), n, calls),
    }, rounds)


def _curve_loop(p_a, p_b, labels, thresholds):
    """Reference: one vectorized pass over the samples per threshold."""
    from toolkit.strategies.scores import confidence
    conf = confidence(p_a, "max_softmax").astype(np.float64)
    right_a = np.argmax(p_a, axis=1) == labels
    right_b = np.argmax(p_b, axis=1) == labels
    return np.array([np.mean(np.where(conf < t, right_b, right_a)) for t in thresholds])


def bench_curve(samples, points, rounds):
    from toolkit.strategies.scores import softmax
    from toolkit.strategies.thresholds import threshold_curve
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 10, samples)
    p_a = softmax(rng.randn(samples, 10).astype(np.float32) * 2)
    p_b = softmax(rng.randn(samples, 10).astype(np.float32) * 2)
    grid = np.linspace(0, 1, points)
    fast = threshold_curve(p_a, p_b, labels, thresholds=grid).accuracy
    assert np.allclose(fast, _curve_loop(p_a, p_b, labels, grid))

    def timed(call):
        def run():
            start = time.perf_counter()
            call()
            return (time.perf_counter() - start) * 1e3
        return run
    return _median_interleaved({
        "loop over thresholds": timed(lambda: _curve_loop(p_a, p_b, labels, grid)),
        "vectorized curve": timed(lambda: threshold_curve(p_a, p_b, labels, thresholds=grid)),
    }, rounds)


def _print(title, result, unit, base):
    print(title)
    for name, value in result.items():
        print("  {:<24} {:>10.3f} {}  ({:.2f}x of {})".format(name, value, unit,
                                                           value / result[base], base))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer rounds (a smoke run).")
    args = parser.parse_args(argv)
    rounds, calls = (5, 5) if args.quick else (21, 20)
    from calibration.datasets import load_digits_variant
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    images = np.ascontiguousarray(load_digits_variant("digits").images[:32])
    with tempfile.TemporaryDirectory() as folder:
        path = export_untrained(folder, "small_cnn")
        engine = OnnxRuntimeEngine(path, threads=1, identity="bench")
        print("small_cnn on ONNX Runtime (CPU, 1 thread), batch {}; microseconds per sample, "
              "median of {} interleaved rounds".format(len(images), rounds))
        _print("1. strategy wrapper", bench_single(engine, images, rounds, calls), "us",
               "engine.infer")
        _print("2a. memo hit vs model (arrays)", bench_memo(engine, images, rounds, calls), "us",
               "model")
        _print("2b. memo hit vs decode + model (PNG files)",
               bench_encoded(engine, images, rounds, calls), "us", "decode + model")
        _print("3. memo keys vs model", bench_keys(engine, images, rounds, calls), "us", "model")
    samples, points = (2000, 500) if args.quick else (20000, 2001)
    _print("4. threshold curve, {} samples x {} thresholds (ms)".format(samples, points),
           bench_curve(samples, points, max(3, rounds // 3)), "ms", "loop over thresholds")


if __name__ == "__main__":
    main()
