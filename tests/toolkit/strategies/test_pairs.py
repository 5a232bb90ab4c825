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


def test_tolerance_is_measured_from_the_pools_best_single_model():
    names, probs, labels = _pool()
    evaluation = evaluate_pool(names, probs, labels, [1, 2, 3], tolerance=0.01)
    assert evaluation.target_accuracy == pytest.approx(evaluation.accuracies.max() - 0.01)
    candidate, choice, meets = evaluation.recommended()
    assert meets and choice.rule == "tolerance"
    assert choice.accuracy >= evaluation.accuracies.max() - 0.01
    assert "best single model - tolerance 0.01" in evaluation.lines()[1]


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
