import numpy as np
import pytest

from basics.errors import InputError
from tests.toolkit.strategies.conftest import Recorder, logits_engine
from toolkit.strategies import Cascade, Single
from toolkit.strategies.scores import SCORES, confidence, softmax


def _reference(first, second, images, threshold, score, post_check):
    """Per-sample loop, written from the paper's description."""
    labels, probs = [], []
    for image in images:
        p_a = softmax(first.infer({"input": image[None]})[first.outputs[0].name])[0]
        c_a = confidence(p_a[None], score)[0]
        answer = p_a
        if float(c_a) < threshold:
            p_b = softmax(second.infer({"input": image[None]})[second.outputs[0].name])[0]
            c_b = confidence(p_b[None], score)[0]
            answer = p_b if (not post_check or c_b >= c_a) else p_a
        probs.append(answer)
        labels.append(int(np.argmax(answer)))
    return np.array(labels), np.array(probs)


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("post_check", [False, True])
def test_cascade_equals_a_per_sample_reference_loop(small_cnn_onnx, tiny_cnn_onnx, digits_splits,
                                                    ort_engine, score, post_check):
    first, second = ort_engine(tiny_cnn_onnx, max_batch=32), ort_engine(small_cnn_onnx)
    images = digits_splits[1].images[:120]
    conf = confidence(Single(first).classify(images).probs, score)
    threshold = float(np.median(conf))  # about half the samples go to B
    cascade = Cascade(first, second, threshold, score=score, post_check=post_check)
    result = cascade.classify(images)
    labels, probs = _reference(first, second, images, threshold, score, post_check)
    np.testing.assert_array_equal(result.labels, labels)
    np.testing.assert_allclose(result.probs, probs, rtol=1e-4, atol=1e-5)
    stats = cascade.stats()
    assert stats["samples"] == 120
    assert stats["handoffs"] == int(np.count_nonzero(conf.astype(np.float64) < threshold))
    assert 0 < stats["handoff_rate"] < 1


def test_handoff_batch_contains_exactly_the_low_confidence_samples():
    first = Recorder(logits_engine(3, identity="a"))
    second = Recorder(logits_engine(3, matrix=np.eye(3)[::-1] * 4, identity="b"))
    x = np.random.RandomState(1).randn(40, 1, 1, 3).astype(np.float32)
    conf = softmax(x.reshape(40, 3)).max(axis=1)
    cascade = Cascade(first, second, threshold=0.6)
    result = cascade.classify(x)
    low = np.flatnonzero(conf < 0.6)
    assert len(second.batches) == 1  # one gathered batch, not one call per sample
    np.testing.assert_array_equal(second.batches[0], x[low])
    np.testing.assert_array_equal(cascade.last_handoff_index, low)
    b_probs = softmax(x[low].reshape(-1, 3) @ (np.eye(3)[::-1] * 4))
    np.testing.assert_allclose(result.probs[low], b_probs, rtol=1e-5)
    high = np.setdiff1d(np.arange(40), low)
    np.testing.assert_allclose(result.probs[high], softmax(x[high].reshape(-1, 3)), rtol=1e-5)


def test_post_check_picks_the_more_confident_of_the_two():
    # A is unsure on both samples; B is more sure on sample 0 and less sure on sample 1
    a_logits = np.array([[1.0, 0.8, 0.0], [0.0, 1.0, 0.9]], dtype=np.float32)
    b_matrix = np.array([[0, 0, 5], [0, 0, 0], [0, 0, 0]], dtype=np.float32)  # logits [0, 0, 5*x0]
    x = a_logits.reshape(2, 1, 1, 3)
    first, second = logits_engine(3, identity="a"), logits_engine(3, matrix=b_matrix, identity="b")
    p_a, p_b = softmax(a_logits), softmax(a_logits @ b_matrix)
    assert p_b[0].max() > p_a[0].max() and p_b[1].max() < p_a[1].max()
    checked = Cascade(first, second, threshold=0.99, post_check=True).classify(x)
    np.testing.assert_allclose(checked.probs, [p_b[0], p_a[1]], rtol=1e-5)
    plain = Cascade(first, second, threshold=0.99).classify(x)
    np.testing.assert_allclose(plain.probs, p_b, rtol=1e-5)
    cascade = Cascade(first, second, threshold=0.99, post_check=True)
    cascade.classify(x)
    assert cascade.stats()["post_check_kept_first"] == 1


def test_threshold_zero_never_runs_the_second_model():
    second = Recorder(logits_engine(3, identity="b"))
    cascade = Cascade(logits_engine(3, identity="a"), second, threshold=0.0)
    cascade.classify(np.random.RandomState(0).randn(9, 1, 1, 3).astype(np.float32))
    assert second.batches == [] and cascade.stats()["handoffs"] == 0


def test_cascades_nest_and_combine_identities():
    a, b, c = (logits_engine(3, identity=name) for name in "abc")
    inner = Cascade(a, b, 0.5)
    outer = Cascade(inner, c, 0.7, score="margin")
    x = np.random.RandomState(2).randn(20, 1, 1, 3).astype(np.float32)
    assert outer.classify(x).probs.shape == (20, 3)
    assert outer.stats()["samples"] == 20 and inner.stats()["samples"] == 20
    assert outer.identity() != Cascade(inner, c, 0.71, score="margin").identity()
    assert outer.identity() == Cascade(Cascade(a, b, 0.5), c, 0.7, score="margin").identity()


@pytest.mark.parametrize("threshold", [-0.1, 1.5, "high", None])
def test_threshold_out_of_range_is_an_input_error(threshold):
    with pytest.raises(InputError, match="threshold must be"):
        Cascade(logits_engine(3, identity="a"), logits_engine(3, identity="b"), threshold)


def test_models_with_different_class_counts_are_refused():
    with pytest.raises(InputError, match="number of classes: 3 vs 4"):
        Cascade(logits_engine(3, identity="a"), logits_engine(4, identity="b"), 0.5)


def test_unknown_score_is_refused():
    with pytest.raises(InputError, match="score must be one of"):
        Cascade(logits_engine(3, identity="a"), logits_engine(3, identity="b"), 0.5, score="x")


class _UndeclaredClasses(Recorder):
    """An engine whose output does not declare its class count (known only when it runs)."""

    def __init__(self, engine):
        from engines.base import TensorSpec
        super().__init__(engine)
        spec = engine.outputs[0]
        self.outputs = (TensorSpec(spec.name, (-1, -1), spec.dtype),)


@pytest.mark.parametrize("batch", [1, 4])
def test_a_class_count_found_to_differ_while_running_is_a_one_line_error(batch):
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    from tests.toolkit.strategies.conftest import linear_image_onnx
    rng = np.random.RandomState(0)
    first, second = (_UndeclaredClasses(OnnxRuntimeEngine(linear_image_onnx(
        rng.randn(64, classes).astype(np.float32)), threads=1)) for classes in (4, 3))
    cascade = Cascade(first, second, 1.0)  # every sample goes to B
    images = rng.rand(batch, 1, 8, 8).astype(np.float32)
    with pytest.raises(InputError, match="disagree on the number of classes: 4 vs 3"):
        cascade.classify(images)
