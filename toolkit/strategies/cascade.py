"""Complementary pair with early handoff (Kinnas et al., 2024).

Model A classifies the whole batch; every sample whose confidence score (see
:mod:`toolkit.strategies.scores`) is *below* the threshold is gathered into one batch for model B,
and B's answers are scattered back. The final answer of a handed-off sample is B's; with
``post_check`` it is the more confident of A's and B's (by the same score; a tie goes to B),
never an average.
"""
import numpy as np

from basics.errors import InputError
from toolkit.strategies.base import (
    ClassifyResult,
    Strategy,
    as_strategy,
    check_class_counts,
    combine_identity,
)
from toolkit.strategies.registry import StrategyType, bracket, register_strategy
from toolkit.strategies.scores import check_score
from toolkit.strategies.scores import confidence as score_confidence

_FLOAT32 = np.dtype(np.float32)
_NO_HANDOFF = np.zeros(0, dtype=np.int64)
_FIRST_ONLY = np.zeros(1, dtype=np.int64)  # a batch of one handed off
_NO_HANDOFF.flags.writeable = False
_FIRST_ONLY.flags.writeable = False


def check_threshold(threshold):
    """The threshold as a float in [0, 1], or InputError."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise InputError("threshold must be a number in [0, 1], got {!r}".format(threshold)) from None
    if not 0.0 <= value <= 1.0:
        raise InputError("threshold must be in [0, 1], got {}".format(threshold))
    return value


def float32_bound(threshold):
    """The float32 ``t`` with ``c < t`` exactly when ``float64(c) < threshold``, for every float32
    ``c``: the threshold itself when float32 holds it, else the next float32 above it."""
    bound = np.float32(threshold)
    if float(bound) < threshold:
        bound = np.nextafter(bound, np.float32(np.inf))
    return bound


class Cascade(Strategy):
    """``first`` (A) on every sample, ``second`` (B) on those A is unsure of.

    ``first``/``second`` are engines (softmaxed logits) or strategies. Counters: ``samples``,
    ``handoffs``, ``handoff_rate``, ``post_check_kept_first`` (handed-off samples where A stayed
    the answer). ``last_handoff_index`` holds the positions sent to B in the latest batch.
    """

    kind = "cascade"

    def __init__(self, first, second, threshold, score="max_softmax", post_check=False):
        self.first = as_strategy(first)
        self.second = as_strategy(second)
        self.threshold = check_threshold(threshold)
        self.score = check_score(score)
        self.post_check = bool(post_check)
        classes_a, classes_b = self.first.num_classes, self.second.num_classes
        check_class_counts(classes_a or None, classes_b or None)
        shape_a, shape_b = self.first.inputs[0].shape, self.second.inputs[0].shape
        if shape_a[1:] != shape_b[1:] and -1 not in shape_a[1:] + shape_b[1:]:
            raise InputError("the pair's models take different inputs: {} vs {}".format(
                shape_a[1:], shape_b[1:]))
        self.last_handoff_index = np.zeros(0, dtype=np.int64)
        self._threshold32 = float32_bound(self.threshold)
        self._same_input = tuple(shape_a[1:]) == tuple(shape_b[1:])  # B needs no feed check
        self.confidence_score = self.score
        # the parts whose own confidence is this score already (reused, not computed again)
        self._reuse_first = self.first.confidence_score == self.score
        self._reuse_second = self.second.confidence_score == self.score
        self._init_strategy(shape_a, classes_a or classes_b)

    def _classify(self, images):
        # classify() has checked ``images`` against this cascade's input, which is A's
        result_a = self.first.classify(images, False)
        if self._reuse_first:
            conf_a = result_a.confidence
        else:
            conf_a = score_confidence(result_a.probs, self.score)
        if len(conf_a) == 1:
            return self._classify_one(images, result_a, conf_a)
        # compared as in float64, exactly like the threshold search (toolkit.strategies.thresholds)
        if conf_a.dtype == _FLOAT32:
            handoff = (conf_a < self._threshold32).nonzero()[0]
        else:
            handoff = (conf_a.astype(np.float64) < self.threshold).nonzero()[0]
        count, handed = len(images), len(handoff)
        if not handed:  # the common case: A answers every sample
            self.last_handoff_index = handoff
            with self._lock:
                counters = self._counters
                counters["samples"] += count
            return ClassifyResult(result_a.labels, result_a.probs, conf_a)
        probs = result_a.probs
        subset = images.take(handoff, axis=0)
        result_b = self.second.classify(subset, not self._same_input)
        if result_b.probs.shape[1] != probs.shape[1]:
            check_class_counts(probs.shape[1], result_b.probs.shape[1])
        conf_b = self._confidence(result_b, self._reuse_second)
        probs, labels, confidence = probs.copy(), result_a.labels.copy(), conf_a.copy()
        kept_first = 0
        if self.post_check:
            take_b = conf_b >= conf_a.take(handoff)
            kept_first = int(handed - np.count_nonzero(take_b))
        if kept_first:  # A stays the answer for some: B's rows only where B won
            rows = handoff[take_b]
            probs[rows] = result_b.probs[take_b]
            labels[rows] = result_b.labels[take_b]
            confidence[rows] = conf_b[take_b]
        else:  # B is the answer for every handed-off sample
            probs[handoff] = result_b.probs
            labels[handoff] = result_b.labels
            confidence[handoff] = conf_b
        self.last_handoff_index = handoff
        with self._lock:
            counters = self._counters
            counters["samples"] += count
            counters["handoffs"] += handed
            counters["post_check_kept_first"] += kept_first
        return ClassifyResult(labels, probs, confidence)

    def _classify_one(self, images, result_a, conf_a):
        """``_classify`` for one sample, in Python floats (numpy's per-call cost is most of a
        batch of one): the same decisions, exactly (float32 -> float64 is exact, so
        ``c < threshold`` is the float64 comparison the batch path makes)."""
        value_a = conf_a.item(0)
        if not value_a < self.threshold:
            self.last_handoff_index = _NO_HANDOFF
            with self._lock:
                self._counters["samples"] += 1
            if conf_a is result_a.confidence:
                return result_a
            return ClassifyResult(result_a.labels, result_a.probs, conf_a)
        result_b = self.second.classify(images, not self._same_input)
        if result_b.probs.shape[1] != result_a.probs.shape[1]:
            check_class_counts(result_a.probs.shape[1], result_b.probs.shape[1])
        conf_b = self._confidence(result_b, self._reuse_second)
        kept_first = 1 if self.post_check and not conf_b.item(0) >= value_a else 0
        self.last_handoff_index = _FIRST_ONLY
        with self._lock:
            counters = self._counters
            counters["samples"] += 1
            counters["handoffs"] += 1
            counters["post_check_kept_first"] += kept_first
        if kept_first:
            return ClassifyResult(result_a.labels, result_a.probs, conf_a)
        if conf_b is result_b.confidence:
            return result_b
        return ClassifyResult(result_b.labels, result_b.probs, conf_b)

    def _confidence(self, result, reuse):
        """The score of a part's answers: its own confidence when ``reuse`` (it is this score
        already)."""
        if reuse:
            return result.confidence
        return score_confidence(result.probs, self.score)

    def _counter_names(self):
        return ("samples", "handoffs", "post_check_kept_first")

    def stats(self):
        stats = Strategy.stats(self)
        stats["handoff_rate"] = stats["handoffs"] / stats["samples"] if stats["samples"] else 0.0
        return stats

    def children(self):
        return (self.first, self.second)

    def identity(self):
        return combine_identity(self.kind, [self.first.identity(), self.second.identity()],
                                {"threshold": self.threshold, "score": self.score,
                                 "post_check": self.post_check})

    def __repr__(self):
        return "Cascade({!r}, {!r}, threshold={}, score={}, post_check={})".format(
            self.first, self.second, self.threshold, self.score, self.post_check)


@register_strategy
class CascadeType(StrategyType):
    """``{type: cascade, first: A, second: B, threshold: T, score: S, post_check: bool}``; A and B
    are engine names or nested strategies."""

    name = "cascade"
    strategy_class = Cascade
    description = "complementary pair with early handoff (Kinnas et al., 2024)"
    keys = ("first", "second", "threshold", "score", "post_check")
    part_keys = ("first", "second")
    entry_keys = ("first", "second")
    answer_keys = ("first", "second")

    def parse(self, data, read):
        threshold = read.checked(check_threshold,
                                 read.require("threshold", "a 'threshold' in [0, 1]"))
        score = read.checked(check_score, read.get("score", "max_softmax"))
        return {"first": read.part("first"), "second": read.part("second"),
                "threshold": threshold, "score": score, "post_check": read.boolean("post_check")}

    def build(self, node, parts, context):
        names_a = context.class_names(node.values["first"])
        names_b = context.class_names(node.values["second"])
        check_class_counts(None if names_a is None else len(names_a),
                           None if names_b is None else len(names_b))
        values = node.values
        return Cascade(parts["first"], parts["second"], values["threshold"], score=values["score"],
                       post_check=values["post_check"])

    def describe(self, node, parts):
        values = node.values
        return "cascade({} -> {}, {} < {:g}{})".format(
            parts["first"], parts["second"], values["score"], values["threshold"],
            ", post-check" if values["post_check"] else "")

    def energy(self, strategy, expected):
        rate = strategy.stats().get("handoff_rate", 0.0)  # E(first) + handoff rate x E(second)
        first, first_text = expected(strategy.first)
        second, second_text = expected(strategy.second)
        return first + rate * second, "{} + {:.3f} x {}".format(first_text, rate,
                                                                bracket(second_text))
