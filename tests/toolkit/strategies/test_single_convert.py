import numpy as np
import pytest

from basics.errors import InputError
from engines.base import Engine, TensorSpec
from tests.toolkit.strategies.conftest import Recorder, logits_engine
from toolkit.strategies import Convert, Single
from toolkit.strategies.scores import softmax


def test_single_softmaxes_the_model_and_chunks_to_max_batch(small_cnn_onnx, digits_splits,
                                                           ort_engine):
    images = digits_splits[1].images[:45]
    whole = ort_engine(small_cnn_onnx)
    logits = whole.infer({"input": images})["logits"]
    recorder = Recorder(ort_engine(small_cnn_onnx, max_batch=16))
    single = Single(recorder)
    result = single.classify(images)
    assert [len(b) for b in recorder.batches] == [16, 16, 13]
    np.testing.assert_allclose(result.probs, softmax(logits), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result.labels, np.argmax(logits, axis=1))
    np.testing.assert_allclose(result.confidence, result.probs.max(axis=1))
    assert single.stats()["samples"] == 45
    assert single.num_classes == 10


def test_single_is_an_engine_with_input_and_probs():
    single = Single(logits_engine(3, identity="x"))
    assert [s.name for s in single.inputs] == ["input"]
    assert [s.name for s in single.outputs] == ["probs"]
    x = np.array([[[[0.0, 5.0, 0.0]]]], dtype=np.float32)
    probs = single.infer({"input": x})["probs"]
    assert probs.shape == (1, 3) and np.argmax(probs) == 1
    with pytest.raises(InputError, match="must have shape"):
        single.infer({"input": np.zeros((1, 1, 1, 4), np.float32)})


def test_single_with_probability_output_is_not_softmaxed_again():
    x = np.array([[[[0.2, 0.7, 0.1]]]], dtype=np.float32)
    result = Single(logits_engine(3, identity="p"), output_is_probs=True).classify(x)
    np.testing.assert_allclose(result.probs, [[0.2, 0.7, 0.1]])


class _MinBatchTwo(Engine):
    """An engine whose batch profile starts at 2 (like a TensorRT profile min=2)."""

    def __init__(self):
        self.inputs = (TensorSpec("input", (-1, 1, 1, 2), np.float32),)
        self.outputs = (TensorSpec("logits", (-1, 2), np.float32),)
        self.min_batch, self.max_batch = 2, 4

    def _run(self, feeds):
        return {"logits": feeds["input"].reshape(-1, 2) * 1.0}

    def identity(self):
        return "min2"


def test_chunks_below_the_minimum_batch_are_padded():
    x = np.arange(10, dtype=np.float32).reshape(5, 1, 1, 2)
    result = Single(_MinBatchTwo()).classify(x)
    assert result.probs.shape == (5, 2)
    np.testing.assert_allclose(result.probs, softmax(x.reshape(5, 2)), rtol=1e-6)


def test_single_rejects_multi_input_engines_and_unknown_outputs():
    engine = _MinBatchTwo()
    engine.inputs = engine.inputs * 2
    with pytest.raises(InputError, match="exactly one input"):
        Single(engine)
    with pytest.raises(InputError, match="no output 'nope'"):
        Single(_MinBatchTwo(), output="nope")


def test_convert_runs_the_converter_then_the_classifier():
    converter = Recorder(logits_engine(4, shape=(1, 1, 4), negate=True, identity="neg",
                                       max_batch=3))
    classifier = Recorder(logits_engine(4, identity="cls"))
    strategy = Convert(converter, classifier)
    x = np.random.RandomState(0).randn(7, 1, 1, 4).astype(np.float32)
    result = strategy.classify(x)
    np.testing.assert_allclose(result.probs, softmax(-x.reshape(7, 4)), rtol=1e-6)
    assert [len(b) for b in converter.batches] == [3, 3, 1]
    assert [len(b) for b in classifier.batches] == [7]
    np.testing.assert_allclose(classifier.batches[0], -x)
    assert strategy.stats()["samples"] == 7
    assert len(strategy.identity()) == 64


def test_convert_rejects_a_converter_whose_output_does_not_fit_the_classifier():
    converter = logits_engine(4, shape=(1, 2, 4), identity="c")
    with pytest.raises(InputError, match="converter outputs"):
        Convert(converter, logits_engine(4, identity="d"))
