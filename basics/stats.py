"""Statistics: latency summaries like trtexec's, and the intervals and tests the reports use."""
import math

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


def wilson_interval(correct, total, z=1.959964):
    """95% Wilson score interval (low, high) of a proportion ``correct`` / ``total``."""
    if total <= 0:
        return (float("nan"), float("nan"))
    p = float(correct) / total
    denominator = 1.0 + z * z / total
    centre = (p + z * z / (2.0 * total)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / total + z * z / (4.0 * total * total)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_p(only_first, only_second):
    """Exact two-sided McNemar p-value of the discordant counts (binomial with p = 1/2)."""
    n = int(only_first) + int(only_second)
    if n == 0:
        return 1.0
    k = min(int(only_first), int(only_second))
    # log-space binomial terms: no overflow, and Python 3.6 has no math.comb
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2.0)
            for i in range(k + 1)]
    return float(min(1.0, 2.0 * sum(math.exp(value) for value in logs)))


def paired_gap(base_right, other_right, clusters=None, reps=2000, seed=0, test_clusters=False):
    """The accuracy gap ``other - base`` on the same samples: the discordant counts, an exact
    McNemar p-value and a 95% paired bootstrap interval. ``clusters`` (one id per sample) resamples
    dependent samples together (e.g. both copies of a duplicated image); with ``test_clusters``
    the McNemar test counts the first sample of each cluster only (copies of one image are one
    observation, not several)."""
    base_right = np.asarray(base_right, dtype=bool)
    other_right = np.asarray(other_right, dtype=bool)
    diff = other_right.astype(np.float64) - base_right
    clusters = np.arange(len(diff)) if clusters is None else np.asarray(clusters)
    ids, inverse = np.unique(clusters, return_inverse=True)
    per_cluster = np.bincount(inverse, weights=diff, minlength=len(ids))
    sizes = np.bincount(inverse, minlength=len(ids)).astype(np.float64)
    pick = np.random.RandomState(seed).randint(0, len(ids), size=(reps, len(ids)))
    boot = per_cluster[pick].sum(axis=1) / sizes[pick].sum(axis=1)
    only_base = int(np.sum(base_right & ~other_right))
    only_other = int(np.sum(other_right & ~base_right))
    tested = (only_base, only_other)
    if test_clusters:
        first = np.unique(inverse, return_index=True)[1]
        tested = (int(np.sum(base_right[first] & ~other_right[first])),
                  int(np.sum(other_right[first] & ~base_right[first])))
    return {"gap": float(diff.mean()) if len(diff) else 0.0, "only_base_right": only_base,
            "only_other_right": only_other, "samples": int(len(diff)), "clusters": int(len(ids)),
            "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
            "mcnemar_p": mcnemar_p(*tested), "mcnemar_samples": int(len(ids) if test_clusters
                                                                     else len(diff))}
