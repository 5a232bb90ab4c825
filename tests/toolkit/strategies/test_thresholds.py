import json

import numpy as np
import pytest

from basics.errors import InputError
from toolkit.strategies import Cascade, Single
from toolkit.strategies.scores import SCORES, confidence, softmax
from toolkit.strategies.thresholds import threshold_curve, threshold_grid


def _probs(rng, count, classes, sharp):
    return softmax(rng.randn(count, classes).astype(np.float32) * sharp)


def _brute_force(p_a, p_b, labels, thresholds, score, post_check, cost_a, cost_b):
    rows = []
    c_a, c_b = confidence(p_a, score), confidence(p_b, score)
    for t in thresholds:
        right = 0
        handoffs = 0
        for i in range(len(labels)):
            answer = p_a[i]
            if float(c_a[i]) < t:
                handoffs += 1
                if not post_check or c_b[i] >= c_a[i]:
                    answer = p_b[i]
            right += int(np.argmax(answer) == labels[i])
        rows.append((right / len(labels), handoffs / len(labels),
                     cost_a + handoffs / len(labels) * cost_b))
    return np.array(rows)


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("post_check", [False, True])
def test_curve_equals_brute_force(score, post_check):
    rng = np.random.RandomState(3)
    labels = rng.randint(0, 5, size=300)
    p_a, p_b = _probs(rng, 300, 5, 1.5), _probs(rng, 300, 5, 2.5)
    p_b[np.arange(150), labels[:150]] += 2.0  # B is right more often
    p_b /= p_b.sum(axis=1, keepdims=True)
    grid = np.linspace(0, 1, 41)
    curve = threshold_curve(p_a, p_b, labels, score=score, post_check=post_check,
                            cost_first=1.0, cost_second=4.0, thresholds=grid)
    expected = _brute_force(p_a, p_b, labels, grid, score, post_check, 1.0, 4.0)
    np.testing.assert_allclose(curve.accuracy, expected[:, 0])
    np.testing.assert_allclose(curve.handoff_rate, expected[:, 1])
    np.testing.assert_allclose(curve.expected_cost, expected[:, 2])
    best = curve.best_accuracy()
    assert best.accuracy == pytest.approx(expected[:, 0].max())
    tied = np.flatnonzero(np.isclose(expected[:, 0], expected[:, 0].max()))
    assert best.expected_cost == pytest.approx(expected[tied, 2].min())


def _curve_with_a_better_second(seed):
    """A curve over 400 samples of 4 classes where B (10x A's cost) is far more accurate."""
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, 4, size=400)
    p_a, p_b = _probs(rng, 400, 4, 2.0), _probs(rng, 400, 4, 2.0)
    p_b[np.arange(400), labels] += 3.0
    p_b /= p_b.sum(axis=1, keepdims=True)
    curve = threshold_curve(p_a, p_b, labels, cost_first=1.0, cost_second=10.0)
    return curve


def test_cheapest_threshold_meeting_a_target_or_a_tolerance():
    curve = _curve_with_a_better_second(seed=4)
    target = 0.5 * (curve.accuracy_first + curve.accuracy_second)
    choice = curve.cheapest(target_accuracy=target)
    ok = curve.accuracy >= target - 1e-12
    assert choice.accuracy >= target
    assert choice.expected_cost == pytest.approx(curve.expected_cost[ok].min())
    tolerant = curve.cheapest(tolerance=0.02)
    assert tolerant.rule == "near-best"
    assert tolerant.accuracy >= curve.best_cascade_accuracy - 0.02 - 1e-12
    assert curve.best_cascade_accuracy == curve.best_accuracy().accuracy
    default = curve.choose()  # near-best, half a point
    assert default.rule == "near-best" and default.threshold == curve.cheapest(
        tolerance=0.005).threshold
    assert default.expected_cost <= curve.best_accuracy().expected_cost
    assert curve.cheapest(target_accuracy=1.01) is None
    assert curve.choose("target", target_accuracy=target).threshold == choice.threshold
    json.dumps(curve.to_dict())  # JSON-able
    with pytest.raises(InputError, match="either a target accuracy or a tolerance"):
        curve.cheapest()
    with pytest.raises(InputError, match="rule must be one of"):
        curve.choose("cheapest-ever")


def test_most_accurate_threshold_within_a_cost_budget():
    curve = _curve_with_a_better_second(seed=5)
    for budget in (1.0, 2.5, 6.0, 11.0):
        choice = curve.most_accurate_within(budget)
        within = curve.expected_cost <= budget
        assert choice.rule == "budget" and choice.expected_cost <= budget
        assert choice.accuracy == pytest.approx(curve.accuracy[within].max())
        tied = within & (curve.correct_count == curve.correct_count[within].max())
        assert choice.expected_cost == pytest.approx(curve.expected_cost[tied].min())
        assert curve.choose("budget", cost_budget=budget).threshold == choice.threshold
    assert curve.most_accurate_within(1.0).handoff_rate == 0.0  # only A fits
    assert curve.most_accurate_within(0.99) is None
    assert curve.most_accurate_within(11.0).accuracy == pytest.approx(curve.accuracy.max())
    with pytest.raises(InputError, match="needs a cost budget"):
        curve.choose("budget")
    with pytest.raises(InputError, match="must be >= 0"):
        curve.most_accurate_within(-1)


def test_default_grid_resolves_confidences_near_one():
    conf = 1.0 - np.geomspace(1e-6, 1e-2, 500)
    grid = threshold_grid(conf, points=101)
    assert np.count_nonzero(grid > 0.99) > 50 and grid[0] == 0.0 and grid[-1] == 1.0
    assert np.all(np.diff(grid) > 0)


def test_curve_predicts_the_runtime_cascade_exactly(small_cnn_onnx, tiny_cnn_onnx, digits_splits,
                                                     ort_engine):
    """The accuracy and handoff rate the curve promises at the chosen threshold is what a
    Cascade with that threshold does on the same data."""
    val = digits_splits[1]
    first, second = ort_engine(tiny_cnn_onnx), ort_engine(small_cnn_onnx)
    p_a, p_b = Single(first).classify(val.images).probs, Single(second).classify(val.images).probs
    for post_check in (False, True):
        curve = threshold_curve(p_a, p_b, val.labels, score="margin", post_check=post_check)
        choice = curve.best_accuracy()
        cascade = Cascade(first, second, choice.threshold, score="margin", post_check=post_check)
        result = cascade.classify(val.images)
        assert np.mean(result.labels == val.labels) == pytest.approx(choice.accuracy)
        assert cascade.stats()["handoff_rate"] == pytest.approx(choice.handoff_rate)
        assert choice.accuracy >= curve.accuracy_first


@pytest.mark.parametrize("bad, message", [
    (lambda a, b, y: (a, b[:5], y), "same shape"),
    (lambda a, b, y: (a, b, y[:5]), "labels for"),
    (lambda a, b, y: (a[:0], b[:0], y[:0]), "no validation samples"),
])
def test_bad_curve_inputs_are_input_errors(bad, message):
    rng = np.random.RandomState(0)
    args = bad(_probs(rng, 10, 3, 1.0), _probs(rng, 10, 3, 1.0), rng.randint(0, 3, 10))
    with pytest.raises(InputError, match=message):
        threshold_curve(*args)


def test_plot_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from toolkit.strategies.plots import plot_curves
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 3, 50)
    curve = threshold_curve(_probs(rng, 50, 3, 1.0), _probs(rng, 50, 3, 2.0), labels)
    path = plot_curves(str(tmp_path / "c.png"), [("a -> b", curve)],
                       [("best", curve.best_accuracy())], title="t")
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
