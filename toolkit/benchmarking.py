"""Latency and throughput of an engine, like trtexec's summary (``toolkit bench``).

``bench_engine`` feeds one fixed random batch ``warmup`` times untimed, then ``iterations`` times
timed (``time.perf_counter`` around each ``engine.infer``), and summarizes with
:func:`basics.stats.latency_summary`.
"""
import time

import numpy as np

from basics.errors import InputError
from basics.progress import progress_bar
from basics.stats import latency_summary


def random_feeds(engine, batch_size, seed=0):
    """One random batch for ``engine``'s inputs: floats in [0, 1), integers in [0, 10)."""
    rng = np.random.RandomState(seed)
    feeds = {}
    for spec in engine.inputs:
        if spec.shape and -1 in spec.shape[1:]:
            raise InputError("input '{}' has dynamic axes besides the batch ({}); bench needs a "
                             "model with fixed sample shapes".format(spec.name, list(spec.shape)))
        shape = (batch_size,) + spec.shape[1:] if spec.shape else ()
        if spec.shape and spec.shape[0] not in (-1, batch_size):
            raise InputError("input '{}' has a fixed batch of {}; use a batch of {}".format(
                spec.name, spec.shape[0], spec.shape[0]))
        if np.issubdtype(spec.dtype, np.floating):
            feeds[spec.name] = rng.random_sample(shape).astype(spec.dtype)
        elif spec.dtype == np.bool_:
            feeds[spec.name] = rng.randint(0, 2, size=shape).astype(np.bool_)
        else:
            feeds[spec.name] = rng.randint(0, 10, size=shape).astype(spec.dtype)
    return feeds


def bench_engine(engine, batch_size, iterations, warmup, progress=True, feeds=None):
    """Time ``iterations`` calls of ``engine.infer`` at ``batch_size`` after ``warmup`` untimed ones.

    Returns :func:`basics.stats.latency_summary` (latency_*_ms, throughput_per_s, calls,
    batch_size) plus ``warmup`` and ``total_s``. ``feeds`` replaces the random batch. A tqdm bar goes
    to stderr when ``progress``.
    """
    batch_size, iterations, warmup = int(batch_size), int(iterations), int(warmup)
    if batch_size < 1:
        raise InputError("the batch size must be at least 1, got {}".format(batch_size))
    if iterations < 1:
        raise InputError("the number of timed calls must be at least 1, got {}".format(iterations))
    if warmup < 0:
        raise InputError("the number of warm-up calls must be 0 or more, got {}".format(warmup))
    if feeds is None:
        feeds = random_feeds(engine, batch_size)
    engine.check_feeds(feeds)  # one clear error before any timing (batch above the profile ...)
    bar = progress_bar(warmup + iterations, "bench", "call", progress)
    try:
        infer = engine.infer
        for _ in range(warmup):
            infer(feeds)
            bar.update(1)
        latencies_ms = np.empty(iterations, dtype=np.float64)
        clock = time.perf_counter
        started = clock()
        for i in range(iterations):
            t0 = clock()
            infer(feeds)
            latencies_ms[i] = (clock() - t0) * 1000.0
            bar.update(1)
        total_s = clock() - started
    finally:
        bar.close()
    summary = latency_summary(latencies_ms, batch_size=batch_size)
    summary["warmup"] = warmup
    summary["total_s"] = total_s
    return summary


def summary_lines(summary):
    """trtexec-like lines of a :func:`bench_engine` summary."""
    return [
        "batch {}, {} timed calls after {} warm-up calls".format(
            summary["batch_size"], summary["calls"], summary.get("warmup", 0)),
        "latency (ms): min {:.3f}  mean {:.3f}  median {:.3f}  p95 {:.3f}  p99 {:.3f}  "
        "max {:.3f}".format(summary["latency_min_ms"], summary["latency_mean_ms"],
                            summary["latency_median_ms"], summary["latency_p95_ms"],
                            summary["latency_p99_ms"], summary["latency_max_ms"]),
        "throughput: {:.1f} samples/s ({:.1f} calls/s)".format(
            summary["throughput_per_s"], summary["throughput_per_s"] / summary["batch_size"]),
    ]
