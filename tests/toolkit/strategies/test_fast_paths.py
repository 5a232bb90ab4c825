"""The cheap hot paths give what the plain computation gives: reused confidences equal the score
recomputed from the answer, and the memo's slot store behaves like a plain LRU of copies."""
import collections

import numpy as np
import pytest

from basics.errors import InputError
from tests.toolkit.strategies.conftest import Recorder, logits_engine
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


def _reference_softmax(logits):
    """The plain broadcasting softmax the flat fast path must match bit for bit."""
    logits = np.asarray(logits, dtype=np.float32)
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    total = shifted.sum(axis=1, keepdims=True)
    return shifted / total, (1.0 / total).reshape(-1).astype(np.float32)


@pytest.mark.parametrize("shape", [(1, 1), (1, 10), (32, 10), (7, 3), (64, 1000)])
def test_flat_softmax_equals_the_broadcasting_one_bit_for_bit(shape):
    from toolkit.strategies.scores import softmax_and_max
    rng = np.random.RandomState(shape[0] * 7 + shape[1])
    logits = (rng.randn(*shape) * 30).astype(np.float32)
    logits[0, 0] = logits[0, -1]  # a tie
    probs, top = softmax_and_max(logits)
    expected, expected_top = _reference_softmax(logits)
    np.testing.assert_array_equal(probs, expected)
    np.testing.assert_array_equal(top, expected_top)
    np.testing.assert_array_equal(top, probs.max(axis=1))
    assert probs.dtype == np.float32 and probs.flags.c_contiguous


def test_flat_softmax_keeps_nan_and_inf_rows_like_the_broadcasting_one():
    from toolkit.strategies.scores import softmax_and_max
    logits = np.array([[1, np.nan, 2], [np.inf, 0, 1], [-np.inf, 0, 1], [3, 3, 3]], np.float32)
    with np.errstate(invalid="ignore"):
        probs, top = softmax_and_max(logits)
        expected, expected_top = _reference_softmax(logits)
    np.testing.assert_array_equal(probs, expected)
    np.testing.assert_array_equal(top, expected_top)


@pytest.mark.parametrize("classes", [1, 2, 10])
def test_margin_equals_top_two_difference(classes):
    probs = softmax(np.random.RandomState(classes).randn(50, classes).astype(np.float32) * 3)
    ordered = np.sort(probs, axis=1)
    expected = (ordered[:, -1] - ordered[:, -2]) if classes > 1 else np.ones(50, np.float32)
    margin = confidence(probs, "margin")
    np.testing.assert_array_equal(margin, expected.astype(np.float32))
    assert margin.dtype == np.float32 and margin.flags.owndata
    # lists and float64 arrays give the same scores as float32 arrays
    np.testing.assert_array_equal(confidence(probs.astype(np.float64), "margin"), margin)
    np.testing.assert_array_equal(confidence(probs.tolist(), "margin"), margin)


def test_exact_keys_hash_each_samples_raw_bytes():
    import xxhash

    from toolkit.strategies.hashing import _seed, exact_keys
    rng = np.random.RandomState(3)
    for images in (rng.rand(32, 1, 8, 8).astype(np.float32), rng.rand(5, 3).astype(np.float64),
                   (rng.rand(4, 2, 3) * 255).astype(np.uint8), rng.rand(6, 4, 4)[:, ::2],
                   np.zeros((3, 2), np.float32)):
        contiguous = np.ascontiguousarray(images)
        seed = _seed(contiguous.dtype, contiguous.shape[1:])
        expected = [xxhash.xxh3_128_intdigest(row.tobytes(), seed) for row in contiguous]
        assert [int.from_bytes(k, "big") for k in exact_keys(images)] == expected
    assert exact_keys(np.zeros((0, 4), np.float32)) == []


class _Plain(object):
    """The memo's answers written plainly: run every sample, no cache."""

    def __init__(self, engine):
        self.single = Single(engine)

    def classify(self, images):
        return self.single.classify(images)


@pytest.mark.parametrize("max_entries", [3, 20, 1000])
def test_memo_answers_equal_plain_answers_with_hits_repeats_and_evictions(max_entries):
    pool = _data(40, seed=6)
    engine = logits_engine(4, matrix=np.eye(4, dtype=np.float32) * 2.0, identity="m")
    inner = Cascade(Single(engine), Single(logits_engine(4, identity="b")), 0.3, score="margin")
    memo = Memo(inner, MemoConfig(max_entries=max_entries))
    plain = Cascade(Single(engine), Single(logits_engine(4, identity="b")), 0.3, score="margin")
    rng = np.random.RandomState(7)
    kinds = set()
    for step in range(80):
        index = rng.randint(0, 40, size=rng.randint(1, 33))
        if step % 10 == 0:
            index = np.repeat(index[:3], 4)  # repeats only (no hit) at the start of a cycle
            memo.clear()
        before = memo.stats()
        result = memo.classify(pool[index])
        expected = plain.classify(pool[index])
        np.testing.assert_array_equal(result.probs, expected.probs)
        np.testing.assert_array_equal(result.labels, expected.labels)
        np.testing.assert_array_equal(result.confidence, expected.confidence)
        assert result.labels.dtype == np.int64 and result.probs.dtype == np.float32
        after = memo.stats()
        hits = after["memo_hits"] - before["memo_hits"]
        repeats = after["memo_batch_repeats"] - before["memo_batch_repeats"]
        misses = after["memo_misses"] - before["memo_misses"]
        assert hits + misses == len(index) and misses <= len(set(index.tolist()))
        kinds.add((hits > repeats, repeats > 0, misses > 0))
        # the result owns its arrays: writing to it leaves the cache alone
        result.probs[:] = -1
        result.labels[:] = -1
        result.confidence[:] = -1
    assert (True, True, True) in kinds and (False, True, True) in kinds
    assert (True, False, False) in kinds or max_entries < 40
    if max_entries < 40:
        assert memo.stats()["memo_evictions"] > 0


def test_entropy_score_equals_the_clipped_formula_bit_for_bit():
    from toolkit.strategies.scores import confidence, softmax
    rng = np.random.RandomState(11)
    probs = softmax((rng.randn(200, 10) * 4).astype(np.float32))
    probs[0] = np.eye(10, dtype=np.float32)[3]  # one-hot: log(0) clipped
    probs[1] = 0.1  # uniform: score 0
    probs[2, :] = 0.0
    probs[2, 0] = 1.0000001  # a shade above 1, as user-given probabilities can be
    probs[3, 0] = np.nan
    clipped = np.clip(probs, 1e-12, 1.0)
    entropy = -(probs * np.log(clipped)).sum(axis=1)
    expected = np.clip(1.0 - entropy / np.log(10), 0.0, 1.0).astype(np.float32)
    got = confidence(probs, "entropy")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)  # NaN where the reference is NaN


# -- batches of one and the declared unchecked paths -------------------------------------------
def _scaled_engine(classes, scale, identity, head=False):
    """Logits = input x ``scale`` (a diagonal: exact at any batch size), optionally with the
    confidence head in the graph."""
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    from tests.toolkit.strategies.conftest import logits_onnx
    return OnnxRuntimeEngine(logits_onnx(classes, np.eye(classes, dtype=np.float32) * scale),
                             identity=identity, threads=1, confidence_head=head)


def _assert_same(result, expected):
    np.testing.assert_array_equal(result.probs, expected.probs)
    np.testing.assert_array_equal(result.labels, expected.labels)
    np.testing.assert_array_equal(result.confidence, expected.confidence)
    assert result.labels.dtype == np.int64 and result.probs.dtype == np.float32
    assert result.confidence.dtype == np.float32


@pytest.mark.parametrize("head", [False, True])
@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("post_check", [False, True])
def test_cascade_batch_of_one_equals_its_row_of_the_batch(head, score, post_check):
    first = _scaled_engine(4, 0.5, "a", head)
    second = _scaled_engine(4, 3.0, "b", head)
    images = _data(48, seed=12)
    images[5] = images[6]  # equal scores: ties at the threshold and in the post-check
    threshold = float(np.median(confidence(Single(first).classify(images).probs, score)))
    batch = Cascade(first, second, threshold, score=score, post_check=post_check)
    one = Cascade(first, second, threshold, score=score, post_check=post_check)
    whole = batch.classify(images)
    handed = set(batch.last_handoff_index.tolist())
    assert 0 < len(handed) < 48
    for i in range(48):
        result = one.classify(images[i:i + 1])
        _assert_same(result, whole.take([i]))
        assert one.last_handoff_index.tolist() == ([0] if i in handed else [])
    stats, expected = one.stats(), batch.stats()
    for name in ("samples", "handoffs", "post_check_kept_first"):
        assert stats[name] == expected[name]


def test_cascade_batch_of_one_at_threshold_edges_and_nan():
    from toolkit.strategies.base import ClassifyResult
    for threshold in (0.0, 1.0, 0.25):
        first, second = _scaled_engine(4, 0.0, "a"), _scaled_engine(4, 1.0, "b")  # A: 0.25 each
        one = Cascade(first, second, threshold).classify(_data(1))
        batch = Cascade(first, second, threshold).classify(np.repeat(_data(1), 3, axis=0))
        _assert_same(one, batch.take([0]))
    cascade = Cascade(_scaled_engine(4, 1.0, "a"), _scaled_engine(4, 1.0, "b"), 0.9)
    result_a = ClassifyResult(np.zeros(1, np.int64), np.full((1, 4), np.nan, np.float32),
                              np.full(1, np.nan, np.float32))
    # a NaN confidence is not below any threshold, in floats as in arrays
    assert cascade._classify_one(_data(1), result_a, result_a.confidence) is result_a


@pytest.mark.parametrize("mode,hamming", [("exact", 0), ("dhash", 0), ("dhash", 3)])
def test_memo_batches_of_one_equal_batched_answers_with_hits_misses_and_evictions(mode, hamming):
    pool = (np.random.RandomState(13).rand(30, 1, 8, 8) > 0.5).astype(np.float32)
    matrix = np.random.RandomState(14).randn(64, 10).astype(np.float32)
    from tests.toolkit.strategies.conftest import linear_image_onnx
    from engines.onnxruntime_backend import OnnxRuntimeEngine

    def memo():
        engine = OnnxRuntimeEngine(linear_image_onnx(matrix), identity="m", threads=1)
        recorder = Recorder(engine)
        return Memo(Single(recorder), MemoConfig(mode, max_entries=12, hamming=hamming)), recorder
    ones, ones_recorder = memo()
    batched, batched_recorder = memo()
    rng = np.random.RandomState(15)
    for step in range(40):
        index = rng.randint(0, 30, size=rng.randint(1, 6))
        if step % 3 == 0:
            index = index[:1]
        # the same stream: one memo takes each sample alone, the other one batch at a time when
        # the batch has one sample (both paths then run), else sample by sample through the
        # general path on batches of one ... of the same samples in a batch
        for i in index:
            result = ones.classify(pool[i:i + 1])
            expected = batched.classify(pool[[i, i]])  # the general path (a repeat in the batch)
            _assert_same(result, expected.take([0]))
    a, b = ones.stats(), batched.stats()
    assert a["memo_hits"] > 0 and a["memo_misses"] > 0 and a["memo_evictions"] > 0
    assert a["memo_misses"] == b["memo_misses"] and len(ones) == len(batched)
    assert ones_recorder.samples == batched_recorder.samples


def test_memo_batch_of_one_result_owns_its_arrays():
    memo = Memo(Single(_scaled_engine(4, 1.0, "m")))
    x = _data(1)
    first = memo.classify(x)
    first.probs[:] = -1
    first.confidence[:] = -1
    first.labels[:] = -1
    hit = memo.classify(x)
    assert memo.stats()["memo_hits"] == 1
    assert (hit.probs >= 0).all() and (hit.confidence > 0).all() and (hit.labels >= 0).all()
    hit.probs[:] = -2
    np.testing.assert_array_equal(memo.classify(x).probs, softmax(x.reshape(1, 4)))


def test_exact_key_one_equals_exact_keys():
    from toolkit.strategies.hashing import exact_key_one, exact_keys
    rng = np.random.RandomState(16)
    for sample in (rng.rand(1, 1, 8, 8).astype(np.float32), rng.rand(1, 3).astype(np.float64),
                   np.zeros((1, 2), np.float32)):
        assert exact_key_one(sample) == exact_keys(sample)[0]


def test_single_reads_the_head_and_agrees_with_the_host_softmax():
    from engines.confidence_head import has_confidence_head
    head, plain = _scaled_engine(5, 7.0, "h", head=True), _scaled_engine(5, 7.0, "p")
    assert has_confidence_head(head) and not has_confidence_head(plain)
    with_head, on_host = Single(head), Single(plain)
    assert with_head.uses_head and not on_host.uses_head
    images = _data(64, classes=5, seed=17)
    got, expected = with_head.classify(images), on_host.classify(images)
    np.testing.assert_array_equal(got.labels, expected.labels)
    np.testing.assert_allclose(got.probs, expected.probs, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.confidence, expected.confidence, rtol=1e-5)
    np.testing.assert_array_equal(got.confidence, got.probs.max(axis=1))
    # the logits stay an output of the engine
    np.testing.assert_array_equal(head.infer({"input": images})["logits"],
                                  plain.infer({"input": images})["logits"])
    assert Single(head, output="logits").uses_head  # naming the head's source: the same scores
    assert not Single(head, output_is_probs=True).uses_head
    # chunked (max_batch) and unchunked give the same answers through the head
    head.max_batch = 7
    _assert_same(Single(head).classify(images), got)


def test_unchecked_paths_give_the_checked_answers():
    engine = _scaled_engine(4, 2.0, "u")
    images = _data(9, seed=18)
    np.testing.assert_array_equal(engine.infer({"input": images}, check=False)["logits"],
                                  engine.infer({"input": images})["logits"])
    engine.max_batch = 4  # the check refuses 9; the unchecked path trusts the caller
    with pytest.raises(InputError, match="maximum batch"):
        engine.infer({"input": images})
    assert engine.infer({"input": images}, check=False)["logits"].shape == (9, 4)
    engine.max_batch = None
    for strategy in (Single(engine), Cascade(engine, _scaled_engine(4, 1.0, "v"), 0.4),
                     Memo(Single(engine))):
        _assert_same(strategy.classify(images, check=False), strategy.classify(images))


def test_memo_batch_of_one_unchecked_and_not_contiguous_hashes_its_values():
    memo = Memo(Single(_scaled_engine(4, 1.0, "m")))
    wide = _data(1, classes=8)
    strided = wide[:, :, :, ::2]  # the same values as a contiguous copy
    contiguous = np.ascontiguousarray(strided)
    memo.classify(contiguous)
    memo.classify(strided, check=False)  # a broken promise still finds the same key
    assert memo.stats()["memo_hits"] == 1


def test_memo_shortest_path_takes_only_what_the_general_path_accepts_unchanged():
    memo = Memo(Single(_scaled_engine(4, 1.0, "m")))
    x = _data(1)
    memo.classify(x)
    for other in (x.astype(np.float64), x.astype(">f4"), np.asfortranarray(x.reshape(1, 4))
                  .reshape(x.shape), x.copy()):
        assert memo.classify(other).probs.tolist() == memo.classify(x).probs.tolist()
    assert memo.stats()["memo_misses"] == 1
    for bad in (x.reshape(1, 4), x[:, :, :, :2], np.zeros((0,) + x.shape[1:], np.float32)):
        with pytest.raises(InputError):
            memo.classify(bad)


def test_exact_keyer_one_equals_exact_key_one_and_follows_shape_changes():
    from toolkit.strategies.hashing import exact_key_one, exact_keyer_one
    rng = np.random.RandomState(19)
    a, b = rng.rand(1, 1, 2, 2).astype(np.float32), rng.rand(1, 4).astype(np.float32)
    digest, seed = exact_keyer_one(a.dtype, a.shape)
    assert digest(a, seed) == exact_key_one(a)
    memo = Memo(Single(_scaled_engine(4, 1.0, "m")))
    same_bytes = a.reshape(1, 1, 1, 4)  # the same bytes in the memo's shape
    memo.classify(same_bytes)  # the shortest path (a contiguous float32 sample)
    assert memo._keyer_shape is None
    memo.classify(same_bytes.astype(np.float64))  # converted, then the keyer of its shape
    assert memo._keyer_shape == (1, 1, 1, 4)
    memo.classify(same_bytes.copy())
    assert memo.stats()["memo_hits"] == 2
    assert exact_key_one(b) != exact_key_one(same_bytes)  # same bytes, other shape: other key
