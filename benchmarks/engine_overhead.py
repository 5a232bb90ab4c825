"""Per-call overhead of the toolkit's engine (``load_engine(...).infer``) over a raw
``onnxruntime.InferenceSession.run`` on the same model, batch 1 and 32, measured interleaved.

Both sides run the same ONNX bytes with the same session options (one intra-op thread, full graph
optimization, CPU provider). Blocks of calls alternate between the sides so that machine noise hits
all alike; each side's figure is the median over blocks of the mean time per call. A third column,
the "floor", times the C++ session that ``InferenceSession.run`` wraps: the toolkit checks the feeds
itself and then calls that directly on CPU-only sessions, skipping the wrapper's own Python checks.
A fourth, "naive", is the same checks done the plain way (full check, public ``run``, ``dict(zip)``):
what the fast paths save.

    python -m benchmarks.engine_overhead [--quick]
"""
import argparse
import os
import tempfile
import time

import numpy as np

from benchmarks.common import export_untrained


def _raw_session(model_bytes):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model_bytes, sess_options=options,
                                providers=["CPUExecutionProvider"])


def _block_us(call, feeds, calls):
    clock = time.perf_counter
    start = clock()
    for _ in range(calls):
        call(feeds)
    return (clock() - start) / calls * 1e6


def measure(engine, session, batch, rounds, calls):
    """Median microseconds per call of raw ``session.run``, the toolkit's ``engine.infer`` and the
    C++ session under ``session.run`` (the floor), interleaved (the order rotates every round)."""
    feeds = {"input": np.random.RandomState(0).random_sample((batch, 1, 8, 8)).astype(np.float32)}
    names = ["logits"]

    def raw(f):
        return session.run(names, f)

    def floor(f):
        return session._sess.run(names, f, None)

    def naive(f):  # what infer did before the fast paths: full check + the public run
        engine._check_feeds_full(f)
        return dict(zip(names, session.run(names, f)))

    sides = [raw, engine.infer, floor, naive]
    assert np.allclose(raw(feeds)[0], engine.infer(feeds)["logits"])
    for _ in range(3):  # warm-up
        for call in sides:
            _block_us(call, feeds, calls)
    times = [[] for _ in sides]
    for i in range(rounds):
        for k in range(len(sides)):
            j = (i + k) % len(sides)
            times[j].append(_block_us(sides[j], feeds, calls))
    return [float(np.median(t)) for t in times]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = parser.parse_args(argv)
    rounds, calls = (20, 100) if args.quick else (200, 200)

    from engines.build import build_engine
    from engines.build_config import BuildConfig
    from engines.engine_file import read_engine
    from engines.load import load_engine

    with tempfile.TemporaryDirectory() as folder:
        onnx_path = export_untrained(folder)
        engine_path = os.path.join(folder, "small_cnn.engine")
        build_engine(onnx_path, engine_path, BuildConfig(max_batch=32, backend="onnxruntime"))
        model_bytes, _ = read_engine(engine_path)
        session = _raw_session(model_bytes)
        print("toolkit engine overhead over raw onnxruntime (small_cnn 1x8x8, 1 thread, CPU), "
              "{} interleaved rounds of {} calls".format(rounds, calls))
        print("{:>5}  {:>8}  {:>10}  {:>11}  {:>7}  {:>8}  {:>15}  {:>11}".format(
            "batch", "raw us", "toolkit us", "overhead us", "ratio", "floor us", "toolkit-floor",
            "naive ratio"))
        with load_engine(engine_path, threads=1) as engine:
            for batch in (1, 32):
                raw_us, toolkit_us, floor_us, naive_us = measure(engine, session, batch, rounds,
                                                                 calls)
                print("{:>5}  {:>8.2f}  {:>10.2f}  {:>11.2f}  {:>7.3f}  {:>8.2f}  {:>12.2f} us  "
                      "{:>11.3f}".format(batch, raw_us, toolkit_us, toolkit_us - raw_us,
                                         toolkit_us / raw_us, floor_us, toolkit_us - floor_us,
                                         naive_us / raw_us))
        print("raw: onnxruntime.InferenceSession.run; toolkit: load_engine(...).infer (input checks "
              "+ dict of outputs); floor: the C++ session run under both; naive: the full check + "
              "InferenceSession.run, i.e. without the toolkit's fast paths")


if __name__ == "__main__":
    main()
