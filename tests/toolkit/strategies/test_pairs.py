import json

import numpy as np
import pytest

from basics.errors import InputError
from toolkit.strategies.pairs import complementarity, evaluate_pool


def test_complementarity_matrices_equal_their_definitions():
    rng = np.random.RandomState(0)
    correct = rng.rand(4, 200) < np.array([[0.6], [0.7], [0.8], [1.0]])
    matrices = complementarity(correct)
    for a in range(4):
        for b in range(4):
            ca, cb = correct[a], correct[b]
            assert matrices["exactly_one"][a, b] == pytest.approx(np.mean(ca != cb))
            assert matrices["oracle"][a, b] == pytest.approx(np.mean(ca | cb))
            wrong = ~ca
            expected = np.mean(cb[wrong]) if wrong.any() else 0.0
            assert matrices["fixes"][a, b] == pytest.approx(expected)
    assert np.allclose(matrices["exactly_one"], matrices["exactly_one"].T)
    assert not np.allclose(matrices["fixes"], matrices["fixes"].T)  # asymmetric


def _pool():
    """Three fake models on 200 samples: 'cheap' (70% right), 'mid' (85%), 'big' (95%), where
    confident answers of 'cheap' are the right ones."""
    rng = np.random.RandomState(1)
    labels = rng.randint(0, 3, size=200)

    def model(right_share, sharpness):
        right = rng.rand(200) < right_share
        answer = np.where(right, labels, (labels + 1) % 3)
        probs = np.full((200, 3), 0.05)
        probs[np.arange(200), answer] = np.where(right, sharpness, 0.5)
        return probs / probs.sum(axis=1, keepdims=True)
    return ["cheap", "mid", "big"], [model(0.7, 5.0), model(0.85, 3.0), model(0.95, 3.0)], labels


def test_pool_recommends_the_cheapest_pair_reaching_the_target():
    names, probs, labels = _pool()
    costs = [1.0, 3.0, 10.0]
    evaluation = evaluate_pool(names, probs, labels, costs, cost_unit="ms", target_accuracy=0.9)
    candidate, choice, meets = evaluation.recommended()
    assert meets and choice.accuracy >= 0.9
    all_choices = [c.chosen for c in evaluation.candidates if c.chosen is not None]
    assert choice.expected_cost == min(c.expected_cost for c in all_choices)
    assert choice.expected_cost < costs[2]  # cheaper than running the big model alone
    data = json.loads(json.dumps(evaluation.to_dict()))
    assert len(data["pairs"]) == 6 and data["recommended"]["meets_target"]
    assert any(line.startswith("recommended:") for line in evaluation.lines())


def test_unreachable_target_falls_back_to_the_most_accurate_pair_and_says_so():
    names, probs, labels = _pool()
    labels[0] = 2
    for p in probs:
        p[0] = [1.0, 0.0, 0.0]  # every model is wrong on sample 0
    reachable = evaluate_pool(names, probs, labels, [1, 2, 3])
    best = max(c.best.accuracy for c in reachable.candidates)
    assert best < 1.0
    evaluation = evaluate_pool(names, probs, labels, [1, 2, 3], target_accuracy=best + 0.001)
    candidate, choice, meets = evaluation.recommended()
    assert not meets
    assert choice.accuracy == max(c.best.accuracy for c in evaluation.candidates)
    assert "no pair reaches the target" in evaluation.lines()[-1]


def test_tolerance_is_measured_from_the_best_accuracy_any_pair_reaches():
    names, probs, labels = _pool()
    evaluation = evaluate_pool(names, probs, labels, [1, 2, 3], tolerance=0.01)
    best = max(c.best.accuracy for c in evaluation.candidates)
    assert evaluation.rule == "near-best" and evaluation.best_accuracy == best
    assert evaluation.target_accuracy == pytest.approx(best - 0.01)
    candidate, choice, meets = evaluation.recommended()
    assert meets and choice.rule == "near-best"
    assert choice.accuracy >= best - 0.01 - 1e-12
    assert "within 0.01 of the best accuracy {:.4f}".format(best) in evaluation.lines()[1]


def _large_first_pool():
    """'large' (cost 10) is the most accurate model and the paper's rule picks a pair with large
    first (the second model fixes a few of its errors); 'small' (cost 1) -> large is half a point
    behind at less than half the cost."""
    rng = np.random.RandomState(3)
    n = 1000
    labels = rng.randint(0, 4, size=n)

    def probs_of(right, confidence):
        answer = np.where(right, labels, (labels + 1) % 4)
        out = np.full((n, 4), 0.01)
        out[np.arange(n), answer] = confidence
        return out / out.sum(axis=1, keepdims=True)
    large_right = rng.rand(n) < 0.95
    # mid is right on 40% of large's errors (and on 85% elsewhere); large is unsure when wrong
    mid_right = np.where(large_right, rng.rand(n) < 0.85, rng.rand(n) < 0.4)
    large = probs_of(large_right, np.where(large_right, 50.0, 1.5))
    mid = probs_of(mid_right, np.full(n, 5.0))
    # small: right and sure on 70%, unsure elsewhere (then right by chance on 20%)
    sure = rng.rand(n) < 0.7
    small_right = sure | (rng.rand(n) < 0.2)
    small = probs_of(small_right, np.where(sure, 50.0, 1.2))
    return ["small", "mid", "large"], [small, mid, large], labels, [1.0, 4.0, 10.0]


def test_default_rule_is_the_cheapest_near_the_best_and_flags_pairs_that_save_nothing():
    names, probs, labels, costs = _large_first_pool()
    paper = evaluate_pool(names, probs, labels, costs, rule="best-accuracy")
    candidate, choice, meets = paper.recommended()
    assert names[candidate.first] == "large"  # the large model runs first
    assert meets and choice.rule == "best-accuracy"
    assert paper.saves_nothing(candidate, choice)
    lines = paper.lines()
    assert any(line.startswith("note: large -> ") and "saves nothing: its first model large is "
               "the most expensive" in line for line in lines)
    assert "rule best-accuracy (the paper's)" in lines[1]
    assert paper.to_dict()["recommended"]["saves_nothing"]

    default = evaluate_pool(names, probs, labels, costs)
    candidate, choice, meets = default.recommended()
    assert default.rule == "near-best" and default.tolerance == 0.005
    assert meets and choice.accuracy >= paper.best_accuracy - 0.005 - 1e-12
    assert choice.expected_cost < costs[2]  # cheaper than the large model alone
    assert names[candidate.first] != "large"
    # brute force: no point of any curve within the tolerance is cheaper
    floor = default.best_accuracy - 0.005
    cheapest = min(cost for c in default.candidates
                   for acc, cost in zip(c.curve.accuracy, c.curve.expected_cost)
                   if acc >= floor - 1e-12)
    assert choice.expected_cost == pytest.approx(cheapest)
    assert default.saves_nothing(candidate, choice) is None
    assert not any(line.startswith("note:") for line in default.lines())
    assert "within 0.005 of the best accuracy" in default.lines()[1]


def test_a_cost_budget_recommends_the_most_accurate_pair_within_it():
    names, probs, labels = _pool()
    costs = [1.0, 3.0, 10.0]
    for budget in (1.5, 4.0, 8.0):
        evaluation = evaluate_pool(names, probs, labels, costs, cost_unit="ms", cost_budget=budget)
        candidate, choice, meets = evaluation.recommended()
        assert meets and choice.rule == "budget" and choice.expected_cost <= budget
        # brute force over every pair's whole curve: nothing within the budget is more accurate
        within = [(acc, cost) for c in evaluation.candidates
                  for acc, cost in zip(c.curve.accuracy, c.curve.expected_cost) if cost <= budget]
        best = max(acc for acc, _ in within)
        assert choice.accuracy == pytest.approx(best)
        assert choice.expected_cost == pytest.approx(min(cost for acc, cost in within
                                                         if acc == best))
        assert evaluation.to_dict()["cost_budget"] == budget
        assert any("most accurate within the budget" in line for line in evaluation.lines())
    # more budget never recommends a less accurate pair
    accs = [evaluate_pool(names, probs, labels, costs, cost_budget=b).recommended()[1].accuracy
            for b in (1.5, 4.0, 8.0, 20.0)]
    assert accs == sorted(accs) and accs[0] < accs[-1]
    # a budget below the cheapest model: nothing fits, said so, most accurate pair instead
    evaluation = evaluate_pool(names, probs, labels, costs, cost_budget=0.5)
    candidate, choice, meets = evaluation.recommended()
    assert not meets and choice.rule == "best-accuracy"
    assert "no pair fits the cost budget" in evaluation.lines()[-1]


def test_second_models_limit_the_pairs():
    names, probs, labels = _pool()
    evaluation = evaluate_pool(names, probs, labels, [1, 2, 3], second_models=["big"])
    assert sorted((names[c.first], names[c.second]) for c in evaluation.candidates) == \
        [("cheap", "big"), ("mid", "big")]
    assert len(evaluate_pool(names, probs, labels, [1, 2, 3], second_models="mid").candidates) == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"names": ["a"]}, "at least two models"),
    ({"names": ["a", "a", "b"]}, "must differ"),
    ({"target_accuracy": 0.9, "tolerance": 0.01}, "give one of"),
    ({"tolerance": 0.01, "cost_budget": 2.0}, "give one of"),
    ({"cost_budget": -1.0}, "cost budget must be >= 0"),
    ({"second_models": ["huge"]}, "second models must be some of"),
    ({"target_accuracy": 1.5}, "target accuracy must be in"),
    ({"tolerance": -1}, "tolerance must be in"),
    ({"rule": "best-accuracy", "tolerance": 0.01}, "takes no goal value"),
    ({"rule": "target"}, "needs a target accuracy"),
    ({"rule": "cheapest-ever"}, "rule must be one of"),
])
def test_bad_pool_arguments_are_input_errors(kwargs, message):
    names, probs, labels = _pool()
    args = {"names": names, "probs": probs, "labels": labels, "costs": [1, 2, 3]}
    args.update(kwargs)
    with pytest.raises(InputError, match=message):
        evaluate_pool(**args)


def test_models_with_different_class_counts_are_refused():
    names, probs, labels = _pool()
    probs[1] = np.hstack([probs[1], np.zeros((200, 1))])
    with pytest.raises(InputError, match="disagree on the number of classes"):
        evaluate_pool(names, probs, labels, [1, 2, 3])
