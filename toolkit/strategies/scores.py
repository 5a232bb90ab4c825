"""Confidence scores of class probabilities, all in [0, 1] (higher = more confident).

The one normalization every strategy, threshold search and report uses:

- ``max_softmax``: the largest probability;
- ``margin``: top-1 minus top-2 probability;
- ``entropy``: ``1 - H(p) / log(C)`` (1 for a one-hot answer, 0 for a uniform one).
"""
import numpy as np

from basics.errors import InputError

SCORES = ("max_softmax", "margin", "entropy")
_FLOAT32 = np.dtype(np.float32)


def check_score(score):
    """Return ``score`` if it is one of :data:`SCORES`, else raise InputError."""
    if score not in SCORES:
        raise InputError("score must be one of {}, got '{}'".format(", ".join(SCORES), score))
    return score


def softmax(logits):
    """Row-wise softmax (max subtracted first, so large logits do not overflow); float32."""
    return softmax_and_max(logits)[0]


def softmax_and_max(logits):
    """``(softmax(logits), its row maxima)``: the largest probability is exactly ``1 / sum`` (the
    top logit's exp(0) = 1 divided by the row sum), which saves a second pass."""
    logits = np.asarray(logits, dtype=np.float32)
    rows, columns = logits.shape if logits.ndim == 2 else (0, 0)
    if rows and columns and logits.flags.c_contiguous:
        # the row maxima read at the arg-maxima: the same values (NaN rows included) as
        # ``logits.max(axis=1)``, a few times cheaper on small batches. The per-row subtraction
        # and division run on flat arrays with the row values repeated: elementwise the same
        # operations as broadcasting a column, without numpy's slow short inner loops
        flat = logits.reshape(-1)
        index = logits.argmax(axis=1)
        index += _row_starts(rows, columns)
        shifted = flat - flat.take(index).repeat(columns)
        np.exp(shifted, out=shifted)
        shifted = shifted.reshape(rows, columns)
        total = shifted.sum(axis=1)
        shifted /= total.repeat(columns).reshape(rows, columns)
        return shifted, np.reciprocal(total)
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    total = shifted.sum(axis=1, keepdims=True)
    shifted /= total
    return shifted, np.reciprocal(total).reshape(-1)


_ROW_STARTS = {}


def _row_starts(rows, columns):
    """``arange(rows) * columns`` (cached: batches repeat their shapes)."""
    starts = _ROW_STARTS.get((rows, columns))
    if starts is None:
        if len(_ROW_STARTS) > 64:
            _ROW_STARTS.clear()
        starts = _ROW_STARTS[(rows, columns)] = np.arange(rows, dtype=np.intp) * columns
    return starts


def confidence(probs, score="max_softmax"):
    """Per-row confidence of probabilities ``probs`` (N, C) by ``score``; float32 (N,)."""
    if type(probs) is not np.ndarray or probs.dtype != _FLOAT32:
        probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 2 or probs.shape[1] < 1:
        raise InputError("probabilities must be 2-D (samples, classes), got shape {}".format(
            probs.shape))
    if score == "max_softmax":
        return probs.max(axis=1)
    if score == "margin":
        classes = probs.shape[1]
        if classes < 2:
            return np.ones(len(probs), dtype=np.float32)
        top2 = probs.copy()  # what np.partition does, without its Python wrapper
        top2.partition(classes - 2, axis=1)
        return top2[:, -1] - top2[:, -2]  # float32 minus float32: a fresh float32 array
    if score == "entropy":
        classes = probs.shape[1]
        if classes < 2:
            return np.ones(len(probs), dtype=np.float32)
        # what np.clip does, by the ufuncs themselves (no Python wrapper), working in place
        terms = np.maximum(probs, 1e-12)
        np.minimum(terms, 1.0, out=terms)
        np.log(terms, out=terms)
        terms *= probs
        value = 1.0 - -terms.sum(axis=1) / np.log(classes)  # float64, like the division
        np.maximum(value, 0.0, out=value)
        np.minimum(value, 1.0, out=value)
        return value.astype(np.float32)
    check_score(score)
    raise AssertionError("unreachable")
