"""Choosing a complementary pair from a pool of models on validation data.

Complementarity of models A and B (``correct_A``/``correct_B``: per-sample right or wrong):

- ``exactly_one[A, B]`` (symmetric): the share of samples exactly one of the two gets right
  (the ARCHITECTURE's "how often exactly one of the two is right");
- ``fixes[A, B]`` (asymmetric, the paper's direction of use): the share of the samples A gets
  wrong that B gets right, ``|A wrong and B right| / |A wrong|`` (0 when A makes no mistake).
  This is what a cascade A -> B can gain at most, relative to A's errors;
- ``oracle[A, B]``: the share of samples at least one of the two gets right (the accuracy of a
  perfect handoff rule; an upper bound for the cascade).

Every ordered pair (A first, B second) also gets its threshold curve
(:func:`toolkit.strategies.thresholds.threshold_curve`), its best-accuracy threshold and, given a
target accuracy (or a tolerance below the pool's best single model), its cheapest threshold that
reaches it. The recommendation is the pair reaching the target at the lowest expected cost.

Or, given a cost budget (expected cost per sample, in the costs' unit), each pair's most accurate
threshold within it; the recommendation is then the most accurate pair within the budget (ties:
the cheapest). On a few hundred validation samples this carries over to new data better than
"cheapest reaching the target", which picks the point where noise lifts the validation accuracy
just over the target (a winner's curse over pairs, scores and thresholds). ``second_models``
limits the pairs to those handing off to one of the named models (e.g. only the large model:
fewer candidates, less curse, and a cascade that tends to the large model as it hands off more).
"""
import numpy as np

from basics.errors import InputError
from toolkit.strategies.thresholds import threshold_curve


def complementarity(correct):
    """Matrices ``exactly_one``, ``fixes`` and ``oracle`` (M x M) of a (models, samples) bool array."""
    correct = np.asarray(correct, dtype=bool)
    if correct.ndim != 2 or correct.shape[1] == 0:
        raise InputError("correctness must be (models, samples), got shape {}".format(correct.shape))
    right = correct.astype(np.float64)
    wrong = 1.0 - right
    samples = float(correct.shape[1])
    fixed = wrong @ right.T  # [a, b]: a wrong, b right
    wrong_counts = wrong.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        fixes = np.where(wrong_counts[:, None] > 0, fixed / wrong_counts[:, None], 0.0)
    exactly_one = (fixed + fixed.T) / samples
    oracle = 1.0 - (wrong @ wrong.T) / samples
    return {"exactly_one": exactly_one, "fixes": fixes, "oracle": oracle}


class PairCandidate(object):
    """Ordered pair (first -> second) with its curve and chosen thresholds."""

    def __init__(self, first, second, curve, best, chosen):
        self.first = first
        self.second = second
        self.curve = curve
        self.best = best  # ThresholdChoice by the paper's rule
        self.chosen = chosen  # by target/tolerance/budget, or None when unreachable

    def to_dict(self, names):
        return {"first": names[self.first], "second": names[self.second],
                "best_accuracy": self.best.to_dict(),
                "cheapest_meeting_target": None if self.chosen is None else self.chosen.to_dict()}


class PoolEvaluation(object):
    """Accuracies, costs, complementarity matrices and every ordered pair of a model pool."""

    def __init__(self, names, accuracies, costs, cost_unit, matrices, candidates, score,
                 post_check, target_accuracy, samples, tolerance=None, cost_budget=None):
        self.names = list(names)
        self.accuracies = accuracies
        self.costs = costs
        self.cost_unit = cost_unit
        self.matrices = matrices
        self.candidates = candidates
        self.score = score
        self.post_check = post_check
        self.target_accuracy = target_accuracy
        self.samples = samples
        self.tolerance = tolerance
        self.cost_budget = cost_budget

    @property
    def best_single(self):
        return int(np.argmax(self.accuracies))

    def recommended(self):
        """``(candidate, choice, meets_target)``: the cheapest pair reaching the target (with a
        cost budget: the most accurate pair within it), or (no target or budget, or none reaches
        it) the most accurate pair at its best threshold."""
        reaching = [c for c in self.candidates if c.chosen is not None]
        if self.cost_budget is not None and reaching:
            best = min(reaching, key=lambda c: (-c.chosen.accuracy, c.chosen.expected_cost))
            return best, best.chosen, True
        if self.target_accuracy is not None and reaching:
            best = min(reaching, key=lambda c: (c.chosen.expected_cost, -c.chosen.accuracy))
            return best, best.chosen, True
        best = min(self.candidates, key=lambda c: (-c.best.accuracy, c.best.expected_cost))
        return best, best.best, self.target_accuracy is None and self.cost_budget is None

    def to_dict(self):
        candidate, choice, meets = self.recommended()
        return {
            "samples": self.samples, "score": self.score, "post_check": self.post_check,
            "cost_unit": self.cost_unit, "target_accuracy": self.target_accuracy,
            "tolerance": self.tolerance, "cost_budget": self.cost_budget,
            "models": [{"name": n, "accuracy": float(a), "cost": float(c)}
                       for n, a, c in zip(self.names, self.accuracies, self.costs)],
            "complementarity": {key: [[round(float(v), 6) for v in row] for row in matrix]
                                for key, matrix in self.matrices.items()},
            "pairs": [c.to_dict(self.names) for c in self.candidates],
            "recommended": {"first": self.names[candidate.first],
                            "second": self.names[candidate.second],
                            "meets_target": meets, "choice": choice.to_dict()},
        }

    def lines(self):
        """A human-readable summary."""
        out = ["{} validation samples, score {}{}, cost in {}".format(
            self.samples, self.score, " with post-check" if self.post_check else "", self.cost_unit)]
        if self.target_accuracy is not None:
            out.append("target accuracy {:.4f}{}".format(self.target_accuracy, "" if self.tolerance
                       is None else " (best single model - tolerance {:g})".format(self.tolerance)))
        if self.cost_budget is not None:
            out.append("cost budget {:.4g} {} per sample".format(self.cost_budget, self.cost_unit))
        width = max(len(n) for n in self.names)
        for name, acc, cost in zip(self.names, self.accuracies, self.costs):
            out.append("  {:<{w}}  accuracy {:.4f}  cost {:.4g}".format(name, acc, cost, w=width))
        out.append("complementarity (row A, column B): share of A's errors B gets right")
        for i, name in enumerate(self.names):
            out.append("  {:<{w}}  ".format(name, w=width) + "  ".join(
                "{:.3f}".format(v) for v in self.matrices["fixes"][i]))
        out.append("pairs (A -> B): best-accuracy threshold | {}".format(
            "most accurate within the budget" if self.cost_budget is not None
            else "cheapest meeting the target"))
        for c in sorted(self.candidates, key=lambda c: (-c.best.accuracy, c.best.expected_cost)):
            chosen = "-" if c.chosen is None else "t={:.4f} acc {:.4f} cost {:.4g}".format(
                c.chosen.threshold, c.chosen.accuracy, c.chosen.expected_cost)
            out.append("  {} -> {}: t={:.4f} acc {:.4f} handoff {:.3f} cost {:.4g} | {}".format(
                self.names[c.first], self.names[c.second], c.best.threshold, c.best.accuracy,
                c.best.handoff_rate, c.best.expected_cost, chosen))
        candidate, choice, meets = self.recommended()
        if meets:
            note = ""
        elif self.cost_budget is not None:
            note = " (no pair fits the cost budget {:.4g}; most accurate)".format(self.cost_budget)
        else:
            note = " (no pair reaches the target accuracy {:.4f}; most accurate)".format(
                self.target_accuracy)
        out.append("recommended: {} -> {}, {}{}".format(
            self.names[candidate.first], self.names[candidate.second], choice.line(), note))
        return out


def evaluate_pool(names, probs, labels, costs, cost_unit="relative", score="max_softmax",
                  post_check=False, target_accuracy=None, tolerance=None, cost_budget=None,
                  second_models=None):
    """Evaluate every ordered pair of the models ``names`` from their validation probabilities
    ``probs`` (a list of (N, C) arrays), ``labels`` (N,) and per-sample ``costs``.

    Give ``target_accuracy`` or ``tolerance`` (below the pool's best single accuracy), or
    ``cost_budget`` (expected cost per sample), or none (then the most accurate pair is
    recommended). ``second_models``: only pairs handing off to one of these names."""
    if len(names) < 2:
        raise InputError("a pool needs at least two models, got {}".format(len(names)))
    if len(set(names)) != len(names):
        raise InputError("model names in a pool must differ: {}".format(list(names)))
    if len(probs) != len(names) or len(costs) != len(names):
        raise InputError("need one probability array and one cost per model")
    if sum(v is not None for v in (target_accuracy, tolerance, cost_budget)) > 1:
        raise InputError("give one of a target accuracy, a tolerance or a cost budget")
    if cost_budget is not None and not float(cost_budget) >= 0.0:
        raise InputError("the cost budget must be >= 0, got {}".format(cost_budget))
    if isinstance(second_models, str):
        second_models = [second_models]
    if second_models is not None:
        unknown = [n for n in second_models if n not in names]
        if unknown or not len(second_models):
            raise InputError("second models must be some of {}, got {}".format(
                list(names), list(second_models)))
    if target_accuracy is not None and not 0.0 <= float(target_accuracy) <= 1.0:
        raise InputError("target accuracy must be in [0, 1], got {}".format(target_accuracy))
    if tolerance is not None and not 0.0 <= float(tolerance) <= 1.0:
        raise InputError("tolerance must be in [0, 1], got {}".format(tolerance))
    labels = np.asarray(labels)
    classes = {p.shape[1] for p in probs}
    if len(classes) != 1:
        raise InputError("the pool's models disagree on the number of classes: {}".format(
            dict(zip(names, [p.shape[1] for p in probs]))))
    correct = np.stack([np.argmax(p, axis=1) == labels for p in probs])
    accuracies = correct.mean(axis=1)
    if tolerance is not None:
        target_accuracy = float(accuracies.max()) - float(tolerance)
    rule = "tolerance" if tolerance is not None else "target"
    candidates = []
    for i in range(len(names)):
        for j in range(len(names)):
            if i == j or (second_models is not None and names[j] not in second_models):
                continue
            curve = threshold_curve(probs[i], probs[j], labels, score=score, post_check=post_check,
                                    cost_first=costs[i], cost_second=costs[j], cost_unit=cost_unit)
            if cost_budget is not None:
                chosen, rule = curve.most_accurate_within(cost_budget), "budget"
            else:
                chosen = None if target_accuracy is None else curve.cheapest(
                    target_accuracy=target_accuracy)
            if chosen is not None:
                chosen.rule = rule
            candidates.append(PairCandidate(i, j, curve, curve.best_accuracy(), chosen))
    return PoolEvaluation(names, accuracies, np.asarray(costs, dtype=np.float64), cost_unit,
                          complementarity(correct), candidates, score, post_check,
                          target_accuracy, len(labels), tolerance,
                          None if cost_budget is None else float(cost_budget))
