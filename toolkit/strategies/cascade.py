"""Complementary pair with early handoff (Kinnas et al., 2024).

Model A classifies the whole batch; every sample whose confidence score (see
:mod:`toolkit.strategies.scores`) is *below* the threshold is gathered into one batch for model B,
and B's answers are scattered back. The final answer of a handed-off sample is B's; with
``post_check`` it is the more confident of A's and B's (by the same score; a tie goes to B),
never an average.
"""
import numpy as np

from toolkit.errors import InputError
from toolkit.strategies.base import ClassifyResult, Strategy, as_strategy, combine_identity
from toolkit.strategies.scores import check_score
from toolkit.strategies.scores import confidence as score_confidence


def check_threshold(threshold):
    """The threshold as a float in [0, 1], or InputError."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise InputError("threshold must be a number in [0, 1], got {!r}".format(threshold)) from None
    if not 0.0 <= value <= 1.0:
        raise InputError("threshold must be in [0, 1], got {}".format(threshold))
    return value


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
        if classes_a and classes_b and classes_a != classes_b:
            raise InputError("the pair's models disagree on the number of classes: {} vs {}".format(
                classes_a, classes_b))
        shape_a, shape_b = self.first.inputs[0].shape, self.second.inputs[0].shape
        if shape_a[1:] != shape_b[1:] and -1 not in shape_a[1:] + shape_b[1:]:
            raise InputError("the pair's models take different inputs: {} vs {}".format(
                shape_a[1:], shape_b[1:]))
        self.last_handoff_index = np.zeros(0, dtype=np.int64)
        self._init_strategy(shape_a, classes_a or classes_b)

    def _classify(self, images):
        result_a = self.first.classify(images)
        probs = result_a.probs
        conf_a = score_confidence(probs, self.score)
        # compared in float64, exactly like the threshold search (toolkit.strategies.thresholds)
        handoff = np.flatnonzero(conf_a.astype(np.float64) < self.threshold)
        kept_first = 0
        if len(handoff):
            result_b = self.second.classify(images[handoff])
            if result_b.probs.shape[1] != probs.shape[1]:
                raise InputError("the pair's models disagree on the number of classes: {} vs {}"
                                 .format(probs.shape[1], result_b.probs.shape[1]))
            probs = probs.copy()
            if self.post_check:
                conf_b = score_confidence(result_b.probs, self.score)
                take_b = conf_b >= conf_a[handoff]
                kept_first = int(len(handoff) - np.count_nonzero(take_b))
                probs[handoff[take_b]] = result_b.probs[take_b]
            else:
                probs[handoff] = result_b.probs
        self.last_handoff_index = handoff
        self._count(samples=len(images), handoffs=len(handoff), post_check_kept_first=kept_first)
        return ClassifyResult.from_probs(probs, self.score)

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
