import numpy as np
import pytest

from basics.errors import InputError
from toolkit.strategies.scores import SCORES, confidence, softmax


def test_softmax_is_stable_and_normalized():
    logits = np.array([[1000.0, 999.0, -1000.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    probs = softmax(logits)
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probs[0, :2], [1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1))],
                               rtol=1e-5)
    np.testing.assert_allclose(probs[1], 1.0 / 3, rtol=1e-6)


def test_scores_match_their_definitions(rng):
    probs = softmax(rng.randn(50, 7).astype(np.float32) * 3)
    top = np.sort(probs, axis=1)
    np.testing.assert_allclose(confidence(probs, "max_softmax"), top[:, -1])
    np.testing.assert_allclose(confidence(probs, "margin"), top[:, -1] - top[:, -2], atol=1e-7)
    entropy = -(probs * np.log(probs)).sum(axis=1)
    np.testing.assert_allclose(confidence(probs, "entropy"), 1 - entropy / np.log(7), atol=1e-6)


@pytest.mark.parametrize("score", SCORES)
def test_scores_span_zero_to_one(score):
    probs = np.array([[1.0, 0.0, 0.0], [1 / 3.0, 1 / 3.0, 1 / 3.0]], dtype=np.float32)
    conf = confidence(probs, score)
    assert conf[0] == pytest.approx(1.0, abs=1e-6)
    assert conf[1] == pytest.approx(1 / 3.0 if score == "max_softmax" else 0.0, abs=1e-6)
    assert conf.dtype == np.float32


def test_unknown_score_is_an_input_error():
    with pytest.raises(InputError, match="score must be one of"):
        confidence(np.ones((1, 2), np.float32) / 2, "vibes")


def test_confidence_needs_two_dimensions():
    with pytest.raises(InputError, match="2-D"):
        confidence(np.ones(3, np.float32), "max_softmax")


def test_softmax_and_max_gives_the_exact_row_maximum(rng):
    from toolkit.strategies.scores import softmax_and_max
    logits = (rng.randn(500, 10) * 20).astype(np.float32)
    probs, top = softmax_and_max(logits)
    np.testing.assert_array_equal(top, probs.max(axis=1))
    np.testing.assert_array_equal(probs, softmax(logits))
