"""Converting autoencoder -> lightweight classifier (CBNet, Mahmud et al., 2024).

The converter engine maps each (hard) image to an easy image of the same class and shape; the
lightweight classifier then classifies the converted batch. A converter and classifier fused into
one ONNX/engine is just ``Single(fused)``.
"""
import numpy as np

from basics.errors import InputError
from toolkit.strategies.base import (
    ClassifyResult,
    Strategy,
    as_strategy,
    combine_identity,
    run_chunked,
)


class Convert(Strategy):
    """``converter`` (an engine, image -> image; its first output is used) then ``classifier``
    (an engine or a strategy), both batched. Counters: ``samples``."""

    kind = "convert"

    def __init__(self, converter, classifier):
        if isinstance(converter, Strategy) or len(getattr(converter, "inputs", ())) != 1:
            raise InputError("the converter must be an engine with one input (image -> image)")
        self.converter = converter
        self.classifier = as_strategy(classifier)
        out_shape = converter.outputs[0].shape if converter.outputs else ()
        in_shape = self.classifier.inputs[0].shape
        if len(out_shape) != len(in_shape) or any(
                a != b and -1 not in (a, b) for a, b in zip(out_shape[1:], in_shape[1:])):
            raise InputError("the converter outputs {} but the classifier takes {}".format(
                list(out_shape[1:]), list(in_shape[1:])))
        self._init_strategy(converter.input.shape, self.classifier.num_classes)
        self.confidence_score = self.classifier.confidence_score

    def _convert(self, images):
        converted = run_chunked(self.converter, images)
        return np.ascontiguousarray(converted, dtype=np.float32)

    def _classify(self, images):
        result = self.classifier.classify(self._convert(images))
        with self._lock:
            self._counters["samples"] += len(images)
        return ClassifyResult(result.labels, result.probs, result.confidence)

    def warmup(self, images):
        self.classifier.warmup(self._convert(np.ascontiguousarray(images, dtype=np.float32)))

    def children(self):
        return (self.converter, self.classifier)

    def identity(self):
        return combine_identity(self.kind, [self.converter.identity(), self.classifier.identity()])

    def __repr__(self):
        return "Convert({}, {!r})".format(type(self.converter).__name__, self.classifier)
