"""The cheap hot paths give what the plain computation gives: reused confidences equal the score
recomputed from the answer, and the memo's slot store behaves like a plain LRU of copies."""
import collections

import numpy as np
import pytest

from tests.toolkit.strategies.conftest import Recorder, logits_engine
from toolkit.errors import InputError
from toolkit.strategies import Cascade, Memo, MemoConfig, Single
from toolkit.strategies.memo import ENTRY_OVERHEAD_BYTES
from toolkit.strategies.scores import SCORES, confidence, softmax


def _data(count, classes=4, seed=0):
    return np.random.RandomState(seed).randn(count, 1, 1, classes).astype(np.float32)


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("post_check", [False, True])
@pytest.mark.parametrize("nested", [False, True])
def test_cascade_confidence_and_labels_match_its_answer(score, post_check, nested):
    first = logits_engine(4, matrix=np.eye(4, dtype=np.float32) * 0.5, identity="a")
    second = logits_engine(4, matrix=np.eye(4, dtype=np.float32) * 3.0, identity="b")
    inner = Cascade(first, second, 0.5, score="margin") if nested else Single(first)
    images = _data(64, seed=1)
    threshold = float(np.median(confidence(inner.classify(images).probs, score)))
    cascade = Cascade(inner, second, threshold, score=score, post_check=post_check)
    result = cascade.classify(images)
    assert 0 < cascade.stats()["handoffs"] < 64
    np.testing.assert_array_equal(result.confidence, confidence(result.probs, score))
    np.testing.assert_array_equal(result.labels, np.argmax(result.probs, axis=1))
    assert result.labels.dtype == np.int64 and result.confidence.dtype == np.float32


def test_single_confidence_is_the_largest_probability():
    result = Single(logits_engine(5)).classify(_data(33, classes=5, seed=2) * 20)
    np.testing.assert_array_equal(result.confidence, result.probs.max(axis=1))
    np.testing.assert_array_equal(result.labels, np.argmax(result.probs, axis=1))


class _ReferenceLru(object):
    """The memo's contract, written plainly: key -> row, oldest first, bounded by entries."""

    def __init__(self, max_entries):
        self.entries = collections.OrderedDict()
        self.max_entries = max_entries

    def batch(self, keys):
        """Which keys of one batch run (misses, first occurrence), updating the LRU like the memo:
        all lookups first, then the misses stored in order."""
        missed = []
        for key in keys:
            if key in self.entries:
                self.entries.move_to_end(key)
            elif key not in missed:
                missed.append(key)
        for key in missed:
            self.entries[key] = True
            while len(self.entries) > self.max_entries:
                self.entries.popitem(last=False)
        return missed


@pytest.mark.parametrize("max_entries", [1, 7, 100])
def test_memo_store_behaves_like_a_plain_lru_across_growth_and_reuse(max_entries):
    pool = _data(150, seed=4)
    reference_probs = softmax(pool.reshape(150, 4))
    recorder = Recorder(logits_engine(4, identity="m"))
    memo = Memo(Single(recorder), MemoConfig(max_entries=max_entries))
    lru = _ReferenceLru(max_entries)
    rng = np.random.RandomState(5)
    for _ in range(60):
        index = rng.randint(0, 150, size=rng.randint(1, 40))
        ran_before = recorder.samples
        result = memo.classify(pool[index])
        missed = lru.batch(index.tolist())
        assert recorder.samples - ran_before == len(missed)
        np.testing.assert_allclose(result.probs, reference_probs[index], rtol=1e-6)
        np.testing.assert_array_equal(result.labels, np.argmax(result.probs, axis=1))
        assert len(memo) == len(lru.entries)
    stats = memo.stats()
    assert stats["memo_bytes"] == len(lru.entries) * (4 * 4 + ENTRY_OVERHEAD_BYTES)
    assert stats["memo_hits"] + stats["memo_misses"] == stats["samples"]


def test_memo_save_and_load_keep_the_lru_order(tmp_path):
    path = str(tmp_path / "memo.npz")
    memo = Memo(Single(logits_engine(4, identity="m")), MemoConfig(path=path, max_entries=3))
    x = _data(3)
    memo.classify(x)
    memo.classify(x[:1])  # sample 0 is now the newest, sample 1 the oldest
    memo.save()
    recorder = Recorder(logits_engine(4, identity="m"))
    again = Memo(Single(recorder), MemoConfig(path=path, max_entries=3))
    again.classify(_data(1, seed=9))  # evicts the oldest: sample 1
    again.classify(x[[0, 2]])
    assert recorder.samples == 1
    again.classify(x[1:2])
    assert recorder.samples == 2


def test_memo_rejects_an_inner_answer_with_another_class_count():
    memo = Memo(Single(logits_engine(4, identity="m")))
    memo.classify(_data(2))
    with pytest.raises(InputError, match="the memo holds 4"):
        memo._store_rows([12345], np.zeros((1, 3), np.float32), np.zeros(1, np.float32))


@pytest.mark.parametrize("threshold", [0.0, 1.0, 0.1, 0.5, 1.0 / 3, 0.6720000001, 0.9999999])
def test_float32_threshold_bound_compares_like_float64(threshold):
    from toolkit.strategies.cascade import float32_bound
    bound = float32_bound(threshold)
    centre = np.float32(threshold)
    values = [centre]
    for direction in (np.float32(-np.inf), np.float32(np.inf)):
        value = centre
        for _ in range(4):
            value = np.nextafter(value, direction)
            values.append(value)
    values = np.array(values + [np.float32(np.nan)], dtype=np.float32)
    np.testing.assert_array_equal(values < bound, values.astype(np.float64) < threshold)
