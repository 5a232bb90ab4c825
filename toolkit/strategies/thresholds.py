"""Choosing the handoff threshold of a pair from validation outputs (vectorized).

For model A's confidence ``c_i`` (see :mod:`toolkit.strategies.scores`) a threshold ``t`` hands
off the samples with ``c_i < t`` to model B. Over a fine grid of thresholds the curve gives, per
threshold: cascade accuracy, handoff rate and expected cost per sample
``cost_first + handoff_rate * cost_second``. The whole curve costs one sort and one cumulative sum.

Rules (:data:`RULES`):

- ``near-best`` (the default): the cheapest threshold whose accuracy >= (the best accuracy on the
  curve - a tolerance, :data:`DEFAULT_TOLERANCE` = 0.005, half a point). The paper's rule picks the
  top of the curve, where noise of a few samples can cost many handoffs: within half a point the
  accuracy is the same for any validation set of a few hundred samples, and the cost is far lower;
- ``best-accuracy`` (the paper's): the threshold of highest cascade accuracy (ties: the cheapest);
- ``target``: the cheapest threshold whose accuracy >= a target accuracy;
- ``budget``: the most accurate threshold whose expected cost <= a cost budget (ties: the cheapest).
  Less prone to the winner's curse than ``target``/``tolerance`` on small validation sets: those
  pick the lowest threshold at which validation accuracy just crosses the target, i.e. the point
  where noise in the accuracy estimate decides; a budget binds on the expected cost, whose
  estimate (a handoff rate) is far less noisy than an accuracy difference of a fraction of a point.

Costs are in any one unit: measured median latency per sample (ms), measured energy per sample
(mJ), or the analytical energy model's estimate (see :func:`latency_cost_ms`, :func:`model_energy_cost`).
"""
import time

import numpy as np

from basics.errors import InputError, MissingDependencyError
from basics.lazy import lazy_import
from toolkit.strategies.scores import check_score
from toolkit.strategies.scores import confidence as score_confidence

RULES = ("near-best", "best-accuracy", "target", "budget")
DEFAULT_RULE = "near-best"
DEFAULT_TOLERANCE = 0.005


def resolve_rule(rule=None, target_accuracy=None, tolerance=None, cost_budget=None):
    """``(rule, tolerance)``: the one rule that ``rule`` and the goal values ask for. Without
    ``rule``, a target accuracy means ``target``, a cost budget ``budget``, else ``near-best``
    (``tolerance`` defaults to :data:`DEFAULT_TOLERANCE`). InputError when they disagree."""
    given = [name for name, value in (("a target accuracy", target_accuracy),
                                      ("a tolerance", tolerance), ("a cost budget", cost_budget))
             if value is not None]
    if len(given) > 1:
        raise InputError("give one of a target accuracy, a tolerance or a cost budget")
    if rule is None:
        rule = "target" if target_accuracy is not None else "budget" if cost_budget is not None \
            else DEFAULT_RULE
    if rule not in RULES:
        raise InputError("rule must be one of {}, got '{}'".format(", ".join(RULES), rule))
    needs = {"near-best": "a tolerance", "target": "a target accuracy", "budget": "a cost budget",
             "best-accuracy": None}[rule]
    if given and given[0] != needs:
        raise InputError("rule '{}' takes {}, not {}".format(rule, needs or "no goal value",
                                                             given[0]))
    if rule == "target" and target_accuracy is None:
        raise InputError("rule 'target' needs a target accuracy")
    if rule == "budget" and cost_budget is None:
        raise InputError("rule 'budget' needs a cost budget")
    if target_accuracy is not None and not 0.0 <= float(target_accuracy) <= 1.0:
        raise InputError("target accuracy must be in [0, 1], got {}".format(target_accuracy))
    if tolerance is not None and not 0.0 <= float(tolerance) <= 1.0:
        raise InputError("tolerance must be in [0, 1], got {}".format(tolerance))
    if cost_budget is not None and not float(cost_budget) >= 0.0:
        raise InputError("the cost budget must be >= 0, got {}".format(cost_budget))
    if rule == "near-best" and tolerance is None:
        tolerance = DEFAULT_TOLERANCE
    return rule, None if tolerance is None else float(tolerance)


def threshold_grid(conf_first, points=1001):
    """``points`` evenly spaced thresholds in [0, 1] plus as many quantiles of A's confidences
    (max softmax piles up near 1, where an even grid is coarse), sorted and unique."""
    even = np.linspace(0.0, 1.0, int(points))
    quantiles = np.quantile(np.asarray(conf_first, dtype=np.float64), np.linspace(0.0, 1.0, int(points)))
    return np.unique(np.clip(np.concatenate([even, quantiles]), 0.0, 1.0))


class ThresholdChoice(object):
    """One point of the curve picked by a rule."""

    def __init__(self, rule, threshold, accuracy, handoff_rate, expected_cost, cost_unit):
        self.rule = rule
        self.threshold = float(threshold)
        self.accuracy = float(accuracy)
        self.handoff_rate = float(handoff_rate)
        self.expected_cost = float(expected_cost)
        self.cost_unit = cost_unit

    def to_dict(self):
        return {"rule": self.rule, "threshold": self.threshold, "accuracy": self.accuracy,
                "handoff_rate": self.handoff_rate, "expected_cost": self.expected_cost,
                "cost_unit": self.cost_unit}

    def line(self):
        return "threshold {:.4f} ({}): accuracy {:.4f}, handoff rate {:.3f}, expected cost {:.4g} {}" \
            .format(self.threshold, self.rule, self.accuracy, self.handoff_rate,
                    self.expected_cost, self.cost_unit)

    def __repr__(self):
        return "ThresholdChoice({})".format(self.line())


class ThresholdCurve(object):
    """Accuracy, handoff rate and expected cost of a pair at every threshold of a grid."""

    def __init__(self, thresholds, correct_count, handoff_count, samples, correct_first,
                 correct_second, cost_first, cost_second, cost_unit, score, post_check):
        self.thresholds = thresholds
        self.samples = int(samples)
        self.correct_count = correct_count
        self.accuracy = correct_count / float(samples)
        self.handoff_rate = handoff_count / float(samples)
        self.accuracy_first = correct_first / float(samples)
        self.accuracy_second = correct_second / float(samples)
        self.cost_first = float(cost_first)
        self.cost_second = float(cost_second)
        self.cost_unit = cost_unit
        self.expected_cost = self.cost_first + self.handoff_rate * self.cost_second
        self.score = score
        self.post_check = post_check

    @property
    def best_single_accuracy(self):
        return max(self.accuracy_first, self.accuracy_second)

    def _choice(self, rule, index):
        return ThresholdChoice(rule, self.thresholds[index], self.accuracy[index],
                               self.handoff_rate[index], self.expected_cost[index], self.cost_unit)

    @property
    def best_cascade_accuracy(self):
        """The highest accuracy of any threshold on the curve."""
        return float(self.correct_count.max()) / self.samples

    def best_accuracy(self):
        """The paper's rule: highest cascade accuracy; among ties the cheapest (fewest handoffs)."""
        best = self.correct_count.max()
        candidates = np.flatnonzero(self.correct_count == best)
        return self._choice("best-accuracy", candidates[np.argmin(self.expected_cost[candidates])])

    def cheapest(self, target_accuracy=None, tolerance=None, rule=None):
        """The cheapest threshold with accuracy >= ``target_accuracy``, or >= the curve's best
        accuracy minus ``tolerance`` (give one; the ``near-best`` rule); None when no threshold
        reaches it. ``rule``: the label of the choice (default: ``target`` / ``near-best``)."""
        if (target_accuracy is None) == (tolerance is None):
            raise InputError("give either a target accuracy or a tolerance")
        if target_accuracy is not None:
            rule, floor = rule or "target", float(target_accuracy)
        else:
            if tolerance < 0:
                raise InputError("tolerance must be >= 0, got {}".format(tolerance))
            rule, floor = rule or "near-best", self.best_cascade_accuracy - float(tolerance)
        # integer comparison (with a hair of slack for float rounding of the floor)
        needed = int(np.ceil(floor * self.samples - 1e-9))
        candidates = np.flatnonzero(self.correct_count >= needed)
        if not len(candidates):
            return None
        order = np.lexsort((-self.correct_count[candidates], self.expected_cost[candidates]))
        return self._choice(rule, candidates[order[0]])

    def most_accurate_within(self, cost_budget):
        """The most accurate threshold whose expected cost <= ``cost_budget`` (ties: the
        cheapest); None when even handing off nothing costs more than the budget."""
        cost_budget = float(cost_budget)
        if not cost_budget >= 0:
            raise InputError("the cost budget must be >= 0, got {}".format(cost_budget))
        candidates = np.flatnonzero(self.expected_cost <= cost_budget * (1 + 1e-12))
        if not len(candidates):
            return None
        order = np.lexsort((self.expected_cost[candidates], -self.correct_count[candidates]))
        return self._choice("budget", candidates[order[0]])

    def choose(self, rule=None, target_accuracy=None, tolerance=None, cost_budget=None):
        """Apply ``rule`` (one of :data:`RULES`, resolved by :func:`resolve_rule`); None when a
        target is not reachable or no threshold fits the cost budget."""
        rule, tolerance = resolve_rule(rule, target_accuracy, tolerance, cost_budget)
        if rule == "best-accuracy":
            return self.best_accuracy()
        if rule == "budget":
            return self.most_accurate_within(cost_budget)
        if rule == "target":
            return self.cheapest(target_accuracy=target_accuracy)
        return self.cheapest(tolerance=tolerance)

    def to_dict(self):
        return {"samples": self.samples, "score": self.score, "post_check": self.post_check,
                "accuracy_first": self.accuracy_first, "accuracy_second": self.accuracy_second,
                "cost_first": self.cost_first, "cost_second": self.cost_second,
                "cost_unit": self.cost_unit,
                "thresholds": [round(float(v), 6) for v in self.thresholds],
                "accuracy": [round(float(v), 6) for v in self.accuracy],
                "handoff_rate": [round(float(v), 6) for v in self.handoff_rate],
                "expected_cost": [float(v) for v in self.expected_cost]}


def threshold_curve(probs_first, probs_second, labels, score="max_softmax", post_check=False,
                    cost_first=1.0, cost_second=1.0, cost_unit="relative", thresholds=None):
    """The :class:`ThresholdCurve` of pair (A, B) from their validation probabilities (N, C) and
    labels (N,). ``thresholds`` defaults to :func:`threshold_grid` of A's confidences."""
    check_score(score)
    probs_first = np.asarray(probs_first, dtype=np.float32)
    probs_second = np.asarray(probs_second, dtype=np.float32)
    labels = np.asarray(labels)
    if probs_first.ndim != 2 or probs_first.shape != probs_second.shape:
        raise InputError("the pair's outputs must have the same shape (samples, classes): {} vs {}"
                         .format(probs_first.shape, probs_second.shape))
    if labels.shape != (len(probs_first),):
        raise InputError("{} labels for {} samples".format(labels.shape[0] if labels.ndim else 0,
                                                            len(probs_first)))
    if not len(labels):
        raise InputError("no validation samples")
    conf_first = score_confidence(probs_first, score)
    correct_first = np.argmax(probs_first, axis=1) == labels
    correct_second = np.argmax(probs_second, axis=1) == labels
    if post_check:
        take_second = score_confidence(probs_second, score) >= conf_first
        correct_handoff = np.where(take_second, correct_second, correct_first)
    else:
        correct_handoff = correct_second
    if thresholds is None:
        thresholds = threshold_grid(conf_first)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    order = np.argsort(conf_first, kind="stable")
    gain = correct_handoff[order].astype(np.int64) - correct_first[order].astype(np.int64)
    cumulative = np.concatenate([[0], np.cumsum(gain)])
    # samples handed off at t: conf < t, i.e. the first searchsorted(..., 'left') of the sorted confs
    handoffs = np.searchsorted(conf_first[order].astype(np.float64), thresholds, side="left")
    correct = int(correct_first.sum()) + cumulative[handoffs]
    return ThresholdCurve(thresholds, correct, handoffs, len(labels), int(correct_first.sum()),
                          int(correct_second.sum()), cost_first, cost_second, cost_unit, score,
                          bool(post_check))


# -- costs --------------------------------------------------------------------------------------
def latency_cost_ms(engine, images, batch_size=32, iterations=20, warmup=3):
    """Median latency per sample (ms) of ``engine`` on batches of ``images`` (measured here)."""
    from toolkit.strategies.base import run_chunked
    images = np.ascontiguousarray(images[:batch_size], dtype=np.float32)
    if not len(images):
        raise InputError("no samples to time the engine on")
    for _ in range(max(0, int(warmup))):
        run_chunked(engine, images)
    times_ms = []
    for _ in range(max(1, int(iterations))):
        start = time.perf_counter()
        run_chunked(engine, images)
        times_ms.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times_ms)) / len(images)


def model_energy_cost(onnx_path, bits=16):
    """``(energy per sample, unit)`` of an ONNX model by the analytical energy model
    (``energy_model.estimate_onnx``, batch 1, or per image of the model's fixed batch;
    data and MACs ``bits`` wide): normalized units, or mJ when calibrated.
    MissingDependencyError when that module is not installed."""
    try:
        energy_model = lazy_import("energy_model", "energy-model costs")
    except MissingDependencyError:
        raise MissingDependencyError("the analytical energy model (energy_model) is not "
                                     "available; use --cost latency") from None
    result = energy_model.estimate_onnx(onnx_path, energy_model.EnergyModelConfig(bits=bits))
    if result.per_image_mj is not None:
        return float(result.per_image_mj), "mJ per sample (energy model, calibrated)"
    return float(result.per_image), "normalized energy units per sample (energy model)"
