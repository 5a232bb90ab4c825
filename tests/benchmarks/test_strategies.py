"""benchmarks/strategies.py: the statistics and measurements around the benchmark's figures."""
import time

import numpy as np
import pytest

from benchmarks import strategies as bench
from toolkit.strategies.scores import softmax
from toolkit.strategies.thresholds import threshold_curve


def test_paired_gap_counts_the_discordant_samples_and_brackets_the_gap():
    rng = np.random.RandomState(0)
    base = rng.rand(1000) < 0.95
    other = base.copy()
    flip = rng.choice(1000, 60, replace=False)
    other[flip] = ~other[flip]
    gap = bench.paired_gap(base, other)
    assert gap["only_baseline_right"] == int(np.sum(base & ~other))
    assert gap["only_other_right"] == int(np.sum(other & ~base))
    assert gap["gap"] == pytest.approx(base.mean() - other.mean())
    assert gap["gap"] == pytest.approx((gap["only_baseline_right"] - gap["only_other_right"]) / 1000)
    low, high = gap["ci95"]
    assert low < gap["gap"] < high
    # about +-1.96 standard errors of a paired difference
    n, b, c = 1000, gap["only_baseline_right"], gap["only_other_right"]
    se = np.sqrt(b + c - (b - c) ** 2 / n) / n
    assert (high - low) == pytest.approx(2 * 1.96 * se, rel=0.2)
    same = bench.paired_gap(base, base)
    assert same["gap"] == 0 and same["ci95"] == [0.0, 0.0] and same["mcnemar_p"] == 1.0


def test_clusters_widen_the_interval_of_correlated_draws():
    rng = np.random.RandomState(1)
    base = rng.rand(300) < 0.9
    other = base.copy()
    other[:20] = ~other[:20]
    # five identical "draws" of every base sample: 1500 samples but only 300 independent ones
    base5, other5 = np.tile(base, 5), np.tile(other, 5)
    clusters = np.tile(np.arange(300), 5)
    naive = bench.paired_gap(base5, other5)
    clustered = bench.paired_gap(base5, other5, clusters)
    single = bench.paired_gap(base, other)
    assert clustered["clusters"] == 300 and naive["clusters"] == 1500
    assert clustered["gap"] == pytest.approx(single["gap"])
    width = lambda g: g["ci95"][1] - g["ci95"][0]  # noqa: E731
    assert width(clustered) == pytest.approx(width(single), rel=0.2)
    assert width(naive) < 0.6 * width(clustered)


def test_mcnemar_exact_p_values():
    assert bench.mcnemar_p(0, 0) == 1.0
    assert bench.mcnemar_p(0, 5) == pytest.approx(2 / 32)
    assert bench.mcnemar_p(5, 0) == pytest.approx(2 / 32)
    assert bench.mcnemar_p(3, 3) == 1.0
    assert bench.mcnemar_p(2, 8) == pytest.approx(2 * (1 + 10 + 45) / 1024)


@pytest.mark.parametrize("post_check", [False, True])
def test_cascade_right_agrees_with_the_threshold_curve(post_check):
    rng = np.random.RandomState(2)
    labels = rng.randint(0, 4, size=500)
    p_a = softmax(rng.randn(500, 4).astype(np.float32) * 2)
    p_b = softmax(rng.randn(500, 4).astype(np.float32) * 2)
    p_b[np.arange(250), labels[:250]] += 2.0
    p_b /= p_b.sum(axis=1, keepdims=True)
    for score in ("max_softmax", "margin", "entropy"):
        curve = threshold_curve(p_a, p_b, labels, score=score, post_check=post_check)
        for index in (0, len(curve.thresholds) // 3, len(curve.thresholds) // 2, -1):
            right = bench.cascade_right(p_a, p_b, labels, score, post_check,
                                        curve.thresholds[index])
            assert right.mean() == pytest.approx(curve.accuracy[index])


def test_stacked_draws_and_their_clusters():
    from calibration.datasets import Dataset
    first = Dataset(np.zeros((3, 1, 2, 2)), [0, 1, 2], list("abc"))
    second = Dataset(np.ones((3, 1, 2, 2)), [0, 1, 2], list("abc"))
    images, labels, clusters = bench.stacked([first, second])
    assert images.shape == (6, 1, 2, 2) and list(labels) == [0, 1, 2, 0, 1, 2]
    assert list(clusters) == [0, 1, 2, 0, 1, 2]
    assert bench.redraws("digits", "val", 4) == []  # no random transform to draw again
    assert bench.redraws("digits-hard", "val", 0) == []
    drawn = bench.redraws("digits-hard", "test", 1)
    assert len(drawn) == 1 and len(drawn[0]) == 360


class _FakeEngine(object):
    seconds = 0.0


class _FakeStrategy(object):
    """Spends ``outside`` seconds per batch itself and books ``inside`` seconds to its engine."""

    def __init__(self, engine, outside, inside):
        self.engine, self.outside, self.inside = engine, outside, inside

    def reset_stats(self):
        pass

    def stats(self):
        return {}

    def classify(self, images):
        time.sleep(self.outside)
        self.engine.seconds += self.inside

        class Result(object):
            labels = np.zeros(len(images), dtype=np.int64)
        return Result()


def test_overhead_in_absolute_terms():
    engine = _FakeEngine()
    images = np.zeros((40, 1, 2, 2), dtype=np.float32)  # 4 batches of 10
    over = bench.overhead_share(_FakeStrategy(engine, 0.004, 0.001), [engine], images, 10, 3)
    # per batch: ~4 ms outside the engine minus the 1 ms booked to it => ~3 ms own time
    assert over["engine_us_per_sample"] == pytest.approx(100.0)
    assert 250 <= over["us_per_sample"] <= 600
    assert over["share"] == pytest.approx(over["us_per_sample"] / 100.0, rel=0.05)
    assert over["break_even_engine_us"] == pytest.approx(over["us_per_sample"] / 0.05)
    assert over["samples"] == 40 and over["aim"] == 0.05


class _FakeInner(object):
    seconds = 0.0


class _FakeMemo(_FakeStrategy):
    """Like _FakeStrategy, and books ``in_inner`` seconds per batch to its inner part."""

    def __init__(self, engine, inner, outside, inside, in_inner):
        _FakeStrategy.__init__(self, engine, outside, inside)
        self.inner, self.in_inner = inner, in_inner

    def classify(self, images):
        self.inner.seconds += self.in_inner
        return _FakeStrategy.classify(self, images)


def test_overhead_outside_an_inner_part():
    engine, inner = _FakeEngine(), _FakeInner()
    images = np.zeros((40, 1, 2, 2), dtype=np.float32)  # 4 batches of 10
    over = bench.overhead_share(_FakeMemo(engine, inner, 0.004, 0.001, 0.002), [engine], images,
                                10, 3, parts=[inner])
    # per batch ~4 ms in all, 2 ms of it in the inner part (1 ms of that in the engine): own time
    # ~2 ms (the pass less the inner part), ~3 ms outside the engine
    assert over["engine_us_per_sample"] == pytest.approx(100.0)
    assert over["us_per_sample"] >= 150  # sleeps never undershoot; a loaded machine oversleeps
    assert over["outside_engines_us_per_sample"] == pytest.approx(over["us_per_sample"] + 100,
                                                                  rel=0.05)
    assert over["share"] == pytest.approx(over["us_per_sample"] / 100.0, rel=0.05)
    assert over["outside_engines_share"] == pytest.approx(
        over["outside_engines_us_per_sample"] / 100.0, rel=0.05)


def test_timed_strategies_answer_as_the_plain_ones_and_add_up_their_seconds():
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    from tests.toolkit.strategies.conftest import linear_image_onnx
    from toolkit.strategies import Cascade
    rng = np.random.RandomState(0)
    images = rng.rand(16, 1, 4, 4).astype(np.float32)
    parts = [OnnxRuntimeEngine(linear_image_onnx(rng.randn(16, 3) * 4, (1, 4, 4)), threads=1)
             for _ in range(2)]
    plain = Cascade(parts[0], parts[1], 0.5, "margin", True).classify(images)
    models = [bench.TimedSingle(part) for part in parts]
    timed = bench.TimedCascade(models[0], models[1], 0.5, "margin", True)
    result = timed.classify(images)
    assert np.array_equal(result.labels, plain.labels)
    assert np.array_equal(result.probs, plain.probs)
    assert 0.0 < models[0].seconds + models[1].seconds < timed.seconds
    assert type(timed).__name__ == "TimedCascade" and isinstance(timed, Cascade)


def test_bad_arguments_are_refused(capsys):
    for argv in (["--redraws", "-1"], ["--budget", "0"], ["--rule", "fastest"]):
        with pytest.raises(SystemExit) as info:
            bench.main(argv)
        assert info.value.code == 2


@pytest.mark.parametrize("args, words", [(["--seeds", "0,x"], "--seeds must be integers"),
                                         (["--seeds", "3-1"], "--seeds must be integers"),
                                         (["--redraws", "-1"], "--redraws must be >= 0"),
                                         (["--cbnet-epochs", "0"], "--cbnet-epochs must be >= 1"),
                                         (["--finetune-epochs", "0"],
                                          "--finetune-epochs must be >= 1"),
                                         (["--split", "train"], "invalid choice")])
def test_cbnet_seeds_bad_arguments(args, words, capsys):
    from benchmarks import cbnet_seeds
    with pytest.raises(SystemExit) as exc:
        cbnet_seeds.main(args)
    assert exc.value.code == 2 and words in capsys.readouterr().err


def test_cbnet_seeds_parse_seeds():
    from benchmarks.cbnet_seeds import parse_seeds
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("0-1, 5") == [0, 1, 5]
    assert parse_seeds("7") == [7]
    with pytest.raises(ValueError):
        parse_seeds("a")
