"""Converting autoencoder -> lightweight classifier (CBNet, Mahmud et al., 2024).

The converter engine maps each (hard) image to an easy image of the same class and shape; the
lightweight classifier then classifies the converted batch. A converter and classifier fused into
one ONNX/engine is just ``Single(fused)``.
"""
import numpy as np

from basics.errors import InputError
from toolkit.strategies.base import (
    Strategy,
    as_strategy,
    combine_identity,
    fits_one_call,
    run_chunked,
)
from toolkit.strategies.registry import StrategyType, register_strategy

_FLOAT32 = np.dtype(np.float32)


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
        self._converter_input = converter.input.name
        self._converter_dtype = converter.input.dtype
        self._converted_name = converter.outputs[0].name
        self._run_converter = converter.run_unchecked
        self._check_converted = (-1 in tuple(out_shape[1:]) + tuple(in_shape[1:])
                                 or converter.outputs[0].dtype != _FLOAT32)
        self.confidence_score = self.classifier.confidence_score

    def _convert(self, images):
        """The converted batch (float32, C-contiguous). ``images`` has been checked against this
        strategy's input, which is the converter's: one batch that fits its bounds runs unchecked."""
        if images.dtype == self._converter_dtype and fits_one_call(self.converter, len(images)):
            converted = self._run_converter({self._converter_input: images})[self._converted_name]
        else:
            converted = run_chunked(self.converter, images)
        if converted.dtype != _FLOAT32 or not converted.flags.c_contiguous:
            converted = np.ascontiguousarray(converted, dtype=np.float32)
        return converted

    def _classify(self, images):
        converted = self._convert(images)
        # checked against the classifier's input only when the converter's output shape does
        # not already say it fits (a dynamic axis besides the batch)
        result = self.classifier.classify(converted, self._check_converted)
        with self._lock:
            self._counters["samples"] += len(images)
        return result

    def warmup(self, images):
        self.classifier.warmup(self._convert(np.ascontiguousarray(images, dtype=np.float32)))

    def children(self):
        return (self.converter, self.classifier)

    def identity(self):
        return combine_identity(self.kind, [self.converter.identity(), self.classifier.identity()])

    def __repr__(self):
        return "Convert({}, {!r})".format(type(self.converter).__name__, self.classifier)


@register_strategy
class ConvertType(StrategyType):
    """``{type: convert, converter: ENGINE, classifier: NAME or strategy}``."""

    name = "convert"
    strategy_class = Convert
    description = "converting autoencoder, then a lightweight classifier (CBNet)"
    keys = ("converter", "classifier")
    engine_keys = ("converter",)
    part_keys = ("classifier",)
    entry_keys = ("converter",)
    answer_keys = ("classifier",)

    def parse(self, data, read):
        return {"converter": read.engine("converter"), "classifier": read.part("classifier")}

    def build(self, node, parts, context):
        return Convert(parts["converter"], parts["classifier"])

    def describe(self, node, parts):
        return "convert({} -> {})".format(parts["converter"], parts["classifier"])

    def energy(self, strategy, expected):
        converter, converter_text = expected(strategy.converter)  # E(converter) + E(classifier)
        classifier, classifier_text = expected(strategy.classifier)
        return converter + classifier, "{} + {}".format(converter_text, classifier_text)
