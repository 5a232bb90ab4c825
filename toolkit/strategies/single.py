"""``Single(engine)``: one model as a strategy (softmax of its logits, chunked to its max batch)."""
import numpy as np

from basics.errors import InputError
from engines.confidence_head import HEAD_OUTPUTS, has_confidence_head, scores_output
from toolkit.strategies.base import (
    ClassifyResult,
    Strategy,
    combine_identity,
    fits_one_call,
    output_spec,
    run_chunked_outputs,
    to_probs,
)
from toolkit.strategies.registry import StrategyType, register_strategy
from toolkit.strategies.scores import softmax_and_max

_INT64 = np.dtype(np.int64)


class Single(Strategy):
    """One engine. ``output`` names the output holding the scores (default: the first);
    ``output_is_probs`` says it already holds probabilities (default: logits, softmaxed here).

    An engine with the confidence head (:mod:`engines.confidence_head`: outputs ``probs``,
    ``confidence``, ``label`` computed in its graph) is read as is when the scores are its first
    output's logits: no softmax on the host. Its answers equal the host's to float32 rounding.
    """

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
        self._input_name = self._input.name
        #: reads the head's outputs (softmax and top-1 computed by the engine)
        self.uses_head = (not self.output_is_probs and has_confidence_head(engine)
                          and spec.name == scores_output(engine).name)
        self._names = HEAD_OUTPUTS if self.uses_head else (self.output,)
        # the hot path: the engine's declared unchecked run (classify() checked the input)
        self._run_unchecked = engine.run_unchecked
        self._init_strategy(engine.input.shape, num_classes)

    def _outputs(self, images):
        """The engine's outputs named ``self._names`` for ``images`` (a list of arrays)."""
        if images.dtype == self._input.dtype and fits_one_call(self.engine, len(images)):
            out = self._run_unchecked({self._input_name: images})
            return [out[name] for name in self._names]
        return run_chunked_outputs(self.engine, images, self._names)

    def _classify(self, images):
        count = len(images)
        if self.uses_head:
            probs, top, labels = self._outputs(images)
            if labels.dtype != _INT64:
                labels = labels.astype(_INT64)
        else:
            outputs = self._outputs(images)[0]
            if not self.output_is_probs and getattr(outputs, "ndim", 0) == 2:
                probs, top = softmax_and_max(outputs)  # logits (N, C)
            else:
                probs, top = to_probs(outputs, self.output_is_probs)
            labels = None
        if self.num_classes is not None and probs.shape[1] != self.num_classes:
            raise InputError("the engine gave {} classes, its spec says {}".format(
                probs.shape[1], self.num_classes))
        with self._lock:
            counters = self._counters
            counters["samples"] += count
            counters["engine_runs"] += count
        if labels is None:
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


@register_strategy
class SingleType(StrategyType):
    """``{type: single, engine: NAME}`` (or just ``NAME``): one engine."""

    name = "single"
    strategy_class = Single
    description = "one engine (softmax of its logits)"
    keys = ("engine",)
    part_keys = ("engine",)
    entry_keys = ("engine",)
    answer_keys = ("engine",)

    def parse(self, data, read):
        return {"engine": read.engine("engine")}

    def build(self, node, parts, context):
        return parts["engine"]  # an engine name is built as Single(engine) with its spec options

    def describe(self, node, parts):
        return "single({})".format(parts["engine"])

    def energy(self, strategy, expected):
        return expected(strategy.engine)  # E(model)
