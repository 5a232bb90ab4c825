"""Latency statistics like trtexec's summary: min / mean / median / p95 / p99 / max, throughput."""
import numpy as np


def latency_summary(latencies_ms, batch_size=1):
    """Summary dict of per-call latencies in milliseconds; throughput in samples per second."""
    values = np.asarray(latencies_ms, dtype=np.float64)
    if values.size == 0:
        return {"calls": 0}
    total_s = float(values.sum()) / 1000.0
    return {
        "calls": int(values.size),
        "batch_size": int(batch_size),
        "latency_min_ms": float(values.min()),
        "latency_mean_ms": float(values.mean()),
        "latency_median_ms": float(np.median(values)),
        "latency_p95_ms": float(np.percentile(values, 95)),
        "latency_p99_ms": float(np.percentile(values, 99)),
        "latency_max_ms": float(values.max()),
        "throughput_per_s": float(values.size * batch_size / total_s) if total_s > 0 else float("inf"),
    }
