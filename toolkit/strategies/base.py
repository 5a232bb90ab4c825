"""What every runtime strategy shares: the result type, the engine-like base class, counters,
combined identities and running one engine in chunks of its maximum batch.

A strategy is an :class:`engines.base.Engine` with one input ``"input"`` (float32 NCHW) and one
output ``"probs"`` (float32, samples x classes), plus ``classify(images) -> ClassifyResult`` and
``stats()`` (a dict of counters). Strategies compose: ``Memo(Cascade(Single(a), Single(b)))``.
"""
import hashlib
import json
import threading

import numpy as np

from basics.errors import InputError
from engines.base import Engine, TensorSpec
from engines.confidence_head import scores_output
from toolkit.strategies.scores import softmax_and_max


class ClassifyResult(object):
    """``labels`` int64 (N,), ``probs`` float32 (N, C) and ``confidence`` float32 (N,).

    ``confidence`` is the strategy's confidence score of its answer (max softmax unless the
    strategy was configured with another score, see :mod:`toolkit.strategies.scores`).
    """

    __slots__ = ("labels", "probs", "confidence")

    def __init__(self, labels, probs, confidence):
        self.labels = labels
        self.probs = probs
        self.confidence = confidence

    def __len__(self):
        return len(self.labels)

    def take(self, index):
        """The rows at ``index`` (fresh arrays)."""
        return ClassifyResult(self.labels[index], self.probs[index], self.confidence[index])


def combine_identity(kind, parts, settings=None):
    """A sha256 over a strategy's kind, its parts' identities and its settings."""
    payload = json.dumps({"kind": kind, "parts": list(parts), "settings": settings or {}},
                         sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class Strategy(Engine):
    """Base class of strategies; subclasses implement ``_classify(images)`` and ``children()``."""

    kind = "strategy"
    #: the score that ``ClassifyResult.confidence`` holds (None: unknown), so that a cascade over
    #: this strategy reuses it instead of computing it again
    confidence_score = None

    def _init_strategy(self, input_shape, num_classes):
        self.inputs = (TensorSpec("input", (-1,) + tuple(input_shape[1:]), np.float32),)
        self.outputs = (TensorSpec("probs", (-1, num_classes or -1), np.float32),)
        self.max_batch = None  # strategies chunk for their engines themselves
        self.num_classes = num_classes
        self._lock = threading.RLock()
        # this strategy's counters only: parts keep theirs (reset_stats() resets the whole tree).
        # The hot paths add to this dict in place under ``_lock`` (one cheap lock, no kwargs).
        self._counters = dict.fromkeys(self._counter_names(), 0)

    # -- the engine interface ------------------------------------------------------------------
    def _run(self, feeds):
        return {"probs": self._classify(np.ascontiguousarray(feeds["input"])).probs}

    def classify(self, images, check=True):
        """Classify a float32 NCHW batch of any size; returns a :class:`ClassifyResult`.

        ``check=False`` is the declared unchecked path: ``images`` must already be a checked,
        C-contiguous float32 batch of this strategy's input shape (a strategy that has checked
        its own input passes it, or a part of it, to its parts this way). The answer is the same.
        """
        if check:
            images = np.ascontiguousarray(images, dtype=np.float32)
            self.check_feeds({"input": images})
        return self._classify(images)

    def classify_encoded(self, blobs, decode):
        """Classify encoded samples (file bytes); ``decode(blob)`` returns one float32 (C, H, W)
        array. Without a memo every blob is decoded; :class:`Memo` decodes only its misses."""
        if not len(blobs):
            raise InputError("empty batch: at least one sample is needed")
        return self.classify(np.stack([decode(blob) for blob in blobs]))

    def _classify(self, images):
        raise NotImplementedError

    def children(self):
        """The engines or strategies this one runs."""
        return ()

    def warmup(self, images):
        """Run every engine once on ``images`` without touching counters or caches."""
        for child in self.children():
            if isinstance(child, Strategy):
                child.warmup(images)

    def close(self):
        for child in self.children():
            child.close()

    # -- counters ------------------------------------------------------------------------------
    def stats(self):
        """A dict of this strategy's counters (and derived rates)."""
        with self._lock:
            return dict(self._counters)

    def reset_stats(self):
        """Zero this strategy's counters and its children's."""
        with self._lock:
            self._counters = dict.fromkeys(self._counter_names(), 0)
        for child in self.children():
            if isinstance(child, Strategy):
                child.reset_stats()

    def _counter_names(self):
        return ("samples",)


def as_strategy(engine_or_strategy):
    """A strategy as is; a plain engine wrapped in :class:`toolkit.strategies.single.Single`."""
    if isinstance(engine_or_strategy, Strategy):
        return engine_or_strategy
    if not isinstance(engine_or_strategy, Engine):
        raise TypeError("expected an engine or a strategy, got {}".format(
            type(engine_or_strategy).__name__))
    from toolkit.strategies.single import Single
    return Single(engine_or_strategy)


def check_class_counts(first, second, what="the pair's models"):
    """InputError when two class counts that are both known (not None) differ."""
    if first is not None and second is not None and first != second:
        raise InputError("{} disagree on the number of classes: {} vs {}".format(
            what, first, second))


def output_spec(engine, output=None):
    """The spec of ``engine``'s output named ``output`` (default: its first output, not counting
    the confidence head's outputs: :func:`engines.confidence_head.scores_output`)."""
    if not engine.outputs:
        raise InputError("the engine has no outputs")
    if output is None:
        return scores_output(engine)
    for spec in engine.outputs:
        if spec.name == output:
            return spec
    raise InputError("the engine has no output '{}'; it has {}".format(
        output, [spec.name for spec in engine.outputs]))


def fits_one_call(engine, count):
    """True when one (unchecked) call of ``engine`` takes a batch of ``count`` samples: within its
    ``min_batch`` .. ``max_batch`` (else :func:`run_chunked` runs it)."""
    return (engine.max_batch is None or count <= engine.max_batch) and (
        count >= (engine.min_batch or 1))


def run_chunked(engine, images, output=None):
    """Run ``engine`` on ``images`` in chunks of at most its ``max_batch`` (padding a chunk up to
    its ``min_batch`` when needed); returns the output ``output`` (default: the first one)."""
    return run_chunked_outputs(engine, images, (output_spec(engine, output).name,))[0]


def run_chunked_outputs(engine, images, names):
    """:func:`run_chunked` for several outputs: a list of arrays, one per name in ``names``."""
    spec_in = engine.input
    if images.dtype != spec_in.dtype:
        images = images.astype(spec_in.dtype)
    total = len(images)
    if total < 1:
        raise InputError("empty batch: at least one sample is needed")
    step = engine.max_batch or total
    min_batch = max(1, int(getattr(engine, "min_batch", 1) or 1))
    parts = [[] for _ in names]
    for start in range(0, total, step):
        chunk = images[start:start + step]
        count = len(chunk)
        if count < min_batch:  # a TensorRT profile whose minimum is above this remainder
            pad = np.repeat(chunk[-1:], min_batch - count, axis=0)
            chunk = np.concatenate([chunk, pad])
        out = engine.infer({spec_in.name: chunk})
        for part, name in zip(parts, names):
            part.append(out[name][:count])
    return [part[0] if len(part) == 1 else np.concatenate(part) for part in parts]


def to_probs(outputs, output_is_probs=False):
    """``(probs, max prob)``: float32 probabilities from an engine's raw output (stable softmax
    unless they already are probabilities) and each row's largest probability."""
    outputs = np.asarray(outputs)
    if outputs.ndim != 2:
        outputs = outputs.reshape(len(outputs), -1)
    if output_is_probs:
        probs = np.ascontiguousarray(outputs, dtype=np.float32)
        return probs, probs.max(axis=1)
    return softmax_and_max(outputs)

