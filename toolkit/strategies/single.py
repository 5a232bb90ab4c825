"""``Single(engine)``: one model as a strategy (softmax of its logits, chunked to its max batch)."""
import numpy as np

from basics.errors import InputError
from toolkit.strategies.base import (
    ClassifyResult,
    Strategy,
    combine_identity,
    output_spec,
    run_chunked,
    to_probs,
)
from toolkit.strategies.scores import softmax_and_max

_INT64 = np.dtype(np.int64)


class Single(Strategy):
    """One engine. ``output`` names the output holding the scores (default: the first);
    ``output_is_probs`` says it already holds probabilities (default: logits, softmaxed here)."""

    kind = "single"
    confidence_score = "max_softmax"

    def __init__(self, engine, output_is_probs=False, output=None):
        if len(engine.inputs) != 1:
            raise InputError("a strategy engine must have exactly one input, this one has {}".format(
                len(engine.inputs)))
        spec = output_spec(engine, output)
        shape = spec.shape
        num_classes = shape[-1] if len(shape) >= 2 and shape[-1] > 0 else None
        self.engine = engine
        self.output = spec.name
        self.output_is_probs = bool(output_is_probs)
        self._input = engine.input
        # the hot path: one call without a second feed check (classify() checked the shape)
        self._unchecked = getattr(engine, "run_unchecked", None)
        self._init_strategy(engine.input.shape, num_classes)

    def _outputs(self, images):
        engine, count = self.engine, len(images)
        if self._unchecked is not None and images.dtype == self._input.dtype and (
                engine.max_batch is None or count <= engine.max_batch) and (
                count >= (engine.min_batch or 1)):
            return self._unchecked({self._input.name: images})[self.output]
        return run_chunked(engine, images, self.output)

    def _classify(self, images):
        outputs = self._outputs(images)
        if not self.output_is_probs and getattr(outputs, "ndim", 0) == 2:
            probs, top = softmax_and_max(outputs)  # the common case: logits (N, C)
        else:
            probs, top = to_probs(outputs, self.output_is_probs)
        if self.num_classes is not None and probs.shape[1] != self.num_classes:
            raise InputError("the engine gave {} classes, its spec says {}".format(
                probs.shape[1], self.num_classes))
        count = len(images)
        with self._lock:
            counters = self._counters
            counters["samples"] += count
            counters["engine_runs"] += count
        labels = probs.argmax(axis=1)
        if labels.dtype != _INT64:
            labels = labels.astype(_INT64)
        return ClassifyResult(labels, probs, top)

    def _counter_names(self):
        return ("samples", "engine_runs")

    def warmup(self, images):
        self._outputs(np.ascontiguousarray(images, dtype=np.float32))

    def children(self):
        return (self.engine,)

    def identity(self):
        return combine_identity(self.kind, [self.engine.identity()],
                                {"output": self.output, "output_is_probs": self.output_is_probs})

    def __repr__(self):
        return "Single({})".format(type(self.engine).__name__)
