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
(:func:`toolkit.strategies.thresholds.threshold_curve`), its best-accuracy threshold and its
threshold by the rule (:data:`toolkit.strategies.thresholds.RULES`):

- ``near-best`` (the default): the cheapest pair and threshold whose accuracy is within a
  tolerance (0.005 unless given) of the best accuracy any candidate pair reaches at any threshold.
  The paper's rule alone can pick a pair that saves nothing (on a hard set it chose
  ``large_cnn -> flat_resnet``: the large model runs first);
- ``best-accuracy`` (the paper's): the most accurate pair and threshold (ties: the cheapest);
- ``target``: the cheapest pair and threshold reaching a target accuracy.

Whatever the rule, the output says so when the recommended pair saves nothing: its expected cost
is at least the cost of the most accurate single model, or its first model is the pool's most
expensive one.

Or, given a cost budget (rule ``budget``) (expected cost per sample, in the costs' unit), each pair's most accurate
threshold within it; the recommendation is then the most accurate pair within the budget (ties:
the cheapest). On a few hundred validation samples this carries over to new data better than
"cheapest reaching the target", which picks the point where noise lifts the validation accuracy
just over the target (a winner's curse over pairs, scores and thresholds). ``second_models``
limits the pairs to those handing off to one of the named models (e.g. only the large model:
fewer candidates, less curse, and a cascade that tends to the large model as it hands off more).
"""
import numpy as np

from basics.errors import InputError
from toolkit.strategies.thresholds import resolve_rule, threshold_curve


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
        self.chosen = chosen  # by the rule, or None when unreachable

    def to_dict(self, names):
        return {"first": names[self.first], "second": names[self.second],
                "best_accuracy": self.best.to_dict(),
                "chosen": None if self.chosen is None else self.chosen.to_dict()}


class PoolEvaluation(object):
    """Accuracies, costs, complementarity matrices and every ordered pair of a model pool, and
    the ``rule`` that recommends one (``target_accuracy``: the accuracy floor of the ``target``
    and ``near-best`` rules)."""

    def __init__(self, names, accuracies, costs, cost_unit, matrices, candidates, score,
                 post_check, target_accuracy, samples, tolerance=None, cost_budget=None,
                 rule="best-accuracy"):
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
        self.rule = rule

    @property
    def best_single(self):
        """The most accurate single model (ties: the cheapest)."""
        return min(range(len(self.names)), key=lambda i: (-self.accuracies[i], self.costs[i]))

    @property
    def best_accuracy(self):
        """The highest accuracy any candidate pair reaches at any threshold."""
        return max(c.best.accuracy for c in self.candidates)

    def recommended(self):
        """``(candidate, choice, meets_goal)``: by the rule: the cheapest pair reaching the
        accuracy floor (``near-best``, ``target``), the most accurate within the cost budget
        (``budget``), the most accurate (``best-accuracy``); when no pair meets the goal, the most
        accurate pair at its best threshold (``meets_goal`` False)."""
        reaching = [c for c in self.candidates if c.chosen is not None]
        if self.rule == "budget" and reaching:
            best = min(reaching, key=lambda c: (-c.chosen.accuracy, c.chosen.expected_cost))
            return best, best.chosen, True
        if self.rule in ("target", "near-best") and reaching:
            best = min(reaching, key=lambda c: (c.chosen.expected_cost, -c.chosen.accuracy))
            return best, best.chosen, True
        best = min(self.candidates, key=lambda c: (-c.best.accuracy, c.best.expected_cost))
        return best, best.best, self.rule == "best-accuracy"

    def saves_nothing(self, candidate, choice):
        """Why running ``candidate`` saves nothing over the best single model (a sentence), or
        None when it is cheaper."""
        ref = self.best_single
        first = candidate.first
        if self.costs[first] >= max(self.costs) and len(set(self.costs.tolist())) > 1:
            return "its first model {} is the most expensive of the pool".format(self.names[first])
        if choice.expected_cost >= self.costs[ref]:
            return "its expected cost {:.4g} is not below the {:.4g} of the most accurate single " \
                   "model {}".format(choice.expected_cost, self.costs[ref], self.names[ref])
        return None

    def rule_line(self):
        """The rule, in words."""
        if self.rule == "near-best":
            return "rule near-best: the cheapest pair and threshold within {:g} of the best " \
                   "accuracy {:.4f} (accuracy >= {:.4f}; --rule best-accuracy for the paper's " \
                   "rule)".format(self.tolerance, self.best_accuracy, self.target_accuracy)
        if self.rule == "target":
            return "rule target: the cheapest pair and threshold reaching accuracy {:.4f}".format(
                self.target_accuracy)
        if self.rule == "budget":
            return "rule budget: the most accurate pair and threshold within {:.4g} {} per " \
                   "sample".format(self.cost_budget, self.cost_unit)
        return "rule best-accuracy (the paper's): the most accurate pair and threshold, ties to " \
               "the cheapest"

    def to_dict(self):
        candidate, choice, meets = self.recommended()
        return {
            "samples": self.samples, "score": self.score, "post_check": self.post_check,
            "cost_unit": self.cost_unit, "rule": self.rule, "target_accuracy": self.target_accuracy,
            "tolerance": self.tolerance, "cost_budget": self.cost_budget,
            "best_accuracy": self.best_accuracy,
            "models": [{"name": n, "accuracy": float(a), "cost": float(c)}
                       for n, a, c in zip(self.names, self.accuracies, self.costs)],
            "complementarity": {key: [[round(float(v), 6) for v in row] for row in matrix]
                                for key, matrix in self.matrices.items()},
            "pairs": [c.to_dict(self.names) for c in self.candidates],
            "recommended": {"first": self.names[candidate.first],
                            "second": self.names[candidate.second],
                            "meets_target": meets, "choice": choice.to_dict(),
                            "saves_nothing": self.saves_nothing(candidate, choice)},
        }

    def lines(self):
        """A human-readable summary."""
        out = ["{} validation samples, score {}{}, cost in {}".format(
            self.samples, self.score, " with post-check" if self.post_check else "", self.cost_unit)]
        out.append(self.rule_line())
        width = max(len(n) for n in self.names)
        for name, acc, cost in zip(self.names, self.accuracies, self.costs):
            out.append("  {:<{w}}  accuracy {:.4f}  cost {:.4g}".format(name, acc, cost, w=width))
        out.append("complementarity (row A, column B): share of A's errors B gets right")
        for i, name in enumerate(self.names):
            out.append("  {:<{w}}  ".format(name, w=width) + "  ".join(
                "{:.3f}".format(v) for v in self.matrices["fixes"][i]))
        out.append("pairs (A -> B): best-accuracy threshold | {}".format(
            "most accurate within the budget" if self.rule == "budget"
            else "by the rule" if self.rule == "best-accuracy" else "cheapest meeting the floor"))
        for c in sorted(self.candidates, key=lambda c: (-c.best.accuracy, c.best.expected_cost)):
            chosen = "-" if c.chosen is None else "t={:.4f} acc {:.4f} cost {:.4g}".format(
                c.chosen.threshold, c.chosen.accuracy, c.chosen.expected_cost)
            out.append("  {} -> {}: t={:.4f} acc {:.4f} handoff {:.3f} cost {:.4g} | {}".format(
                self.names[c.first], self.names[c.second], c.best.threshold, c.best.accuracy,
                c.best.handoff_rate, c.best.expected_cost, chosen))
        candidate, choice, meets = self.recommended()
        if meets:
            note = ""
        elif self.rule == "budget":
            note = " (no pair fits the cost budget {:.4g}; most accurate)".format(self.cost_budget)
        else:
            note = " (no pair reaches the target accuracy {:.4f}; most accurate)".format(
                self.target_accuracy)
        useless = self.saves_nothing(candidate, choice)
        if useless:
            out.append("note: {} -> {} saves nothing: {}".format(
                self.names[candidate.first], self.names[candidate.second], useless))
        out.append("recommended: {} -> {}, {}{}".format(
            self.names[candidate.first], self.names[candidate.second], choice.line(), note))
        return out


def evaluate_pool(names, probs, labels, costs, cost_unit="relative", score="max_softmax",
                  post_check=False, target_accuracy=None, tolerance=None, cost_budget=None,
                  second_models=None, rule=None):
    """Evaluate every ordered pair of the models ``names`` from their validation probabilities
    ``probs`` (a list of (N, C) arrays), ``labels`` (N,) and per-sample ``costs``.

    ``rule`` (:data:`toolkit.strategies.thresholds.RULES`; by default ``target`` when a
    ``target_accuracy`` is given, ``budget`` with a ``cost_budget`` (expected cost per sample),
    else ``near-best`` with ``tolerance`` (default 0.005)) recommends the pair.
    ``second_models``: only pairs handing off to one of these names."""
    if len(names) < 2:
        raise InputError("a pool needs at least two models, got {}".format(len(names)))
    if len(set(names)) != len(names):
        raise InputError("model names in a pool must differ: {}".format(list(names)))
    if len(probs) != len(names) or len(costs) != len(names):
        raise ValueError("need one probability array and one cost per model")
    rule, tolerance = resolve_rule(rule, target_accuracy, tolerance, cost_budget)
    if isinstance(second_models, str):
        second_models = [second_models]
    if second_models is not None:
        unknown = [n for n in second_models if n not in names]
        if unknown or not len(second_models):
            raise InputError("second models must be some of {}, got {}".format(
                list(names), list(second_models)))
    labels = np.asarray(labels)
    classes = {p.shape[1] for p in probs}
    if len(classes) != 1:
        raise InputError("the pool's models disagree on the number of classes: {}".format(
            dict(zip(names, [p.shape[1] for p in probs]))))
    correct = np.stack([np.argmax(p, axis=1) == labels for p in probs])
    accuracies = correct.mean(axis=1)
    candidates = []
    for i in range(len(names)):
        for j in range(len(names)):
            if i == j or (second_models is not None and names[j] not in second_models):
                continue
            curve = threshold_curve(probs[i], probs[j], labels, score=score, post_check=post_check,
                                    cost_first=costs[i], cost_second=costs[j], cost_unit=cost_unit)
            candidates.append(PairCandidate(i, j, curve, curve.best_accuracy(), None))
    if rule == "near-best":
        target_accuracy = max(c.best.accuracy for c in candidates) - tolerance
    for c in candidates:
        if rule == "budget":
            c.chosen = c.curve.most_accurate_within(cost_budget)
        elif rule in ("target", "near-best"):
            c.chosen = c.curve.cheapest(target_accuracy=target_accuracy, rule=rule)
        else:
            c.chosen = c.best
    return PoolEvaluation(names, accuracies, np.asarray(costs, dtype=np.float64), cost_unit,
                          complementarity(correct), candidates, score, post_check,
                          None if target_accuracy is None else float(target_accuracy), len(labels),
                          tolerance, None if cost_budget is None else float(cost_budget), rule)
