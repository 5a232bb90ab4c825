"""bench_engine and its helpers, on a pure-numpy engine (no backend needed)."""
import numpy as np
import pytest

from basics.errors import InputError
from engines.base import Engine, TensorSpec
from toolkit.benchmarking import bench_engine, random_feeds, summary_lines


class Counting(Engine):
    def __init__(self, inputs=None, max_batch=16):
        self.inputs = inputs or (TensorSpec("input", (-1, 1, 4, 4), np.float32),)
        self.outputs = (TensorSpec("out", (-1, 1), np.float32),)
        self.max_batch = max_batch
        self.calls = 0
        self.batches = []

    def _run(self, feeds):
        self.calls += 1
        first = feeds[self.inputs[0].name]
        self.batches.append(len(first))
        return {"out": np.zeros((len(first), 1), np.float32)}


def test_bench_engine_counts_and_summarizes():
    engine = Counting()
    summary = bench_engine(engine, batch_size=4, iterations=7, warmup=3, progress=False)
    assert engine.calls == 10 and set(engine.batches) == {4}
    assert summary["calls"] == 7 and summary["batch_size"] == 4 and summary["warmup"] == 3
    for key in ("latency_min_ms", "latency_mean_ms", "latency_median_ms", "latency_p95_ms",
                "latency_p99_ms", "latency_max_ms"):
        assert summary[key] >= 0
    assert summary["latency_min_ms"] <= summary["latency_median_ms"] <= summary["latency_max_ms"]
    assert summary["throughput_per_s"] > 0 and summary["total_s"] > 0
    lines = summary_lines(summary)
    assert lines[0] == "batch 4, 7 timed calls after 3 warm-up calls"
    assert lines[1].startswith("latency (ms): min") and "p99" in lines[1]
    assert lines[2].startswith("throughput:")


def test_bench_engine_with_a_progress_bar(capsys):
    bench_engine(Counting(), 1, 3, 0, progress=True)
    assert "bench" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=0, iterations=1, warmup=0), "the batch size must be at least 1"),
    (dict(batch_size=1, iterations=0, warmup=0), "the number of timed calls must be at least 1"),
    (dict(batch_size=1, iterations=1, warmup=-1), "the number of warm-up calls must be 0 or more"),
    (dict(batch_size=17, iterations=1, warmup=0), "batch 17 is above the engine's maximum batch 16"),
])
def test_bad_bench_settings(kwargs, message):
    engine = Counting()
    with pytest.raises(InputError, match=message):
        bench_engine(engine, progress=False, **kwargs)
    assert engine.calls == 0


def test_random_feeds_follow_the_input_specs():
    engine = Counting(inputs=(TensorSpec("x", (-1, 3), np.float16), TensorSpec("ids", (-1, 2), np.int64),
                              TensorSpec("mask", (-1, 2), np.bool_)))
    feeds = random_feeds(engine, 5)
    assert feeds["x"].shape == (5, 3) and feeds["x"].dtype == np.float16
    assert feeds["ids"].dtype == np.int64 and feeds["ids"].max() < 10
    assert feeds["mask"].dtype == np.bool_
    np.testing.assert_array_equal(random_feeds(engine, 5)["x"], feeds["x"])  # seeded


def test_random_feeds_refuse_shapes_they_cannot_fill():
    dynamic = Counting(inputs=(TensorSpec("x", (-1, 3, -1, -1), np.float32),))
    with pytest.raises(InputError, match="dynamic axes besides the batch"):
        random_feeds(dynamic, 1)
    fixed = Counting(inputs=(TensorSpec("x", (2, 3), np.float32),))
    with pytest.raises(InputError, match="fixed batch of 2; use a batch of 2"):
        random_feeds(fixed, 1)

