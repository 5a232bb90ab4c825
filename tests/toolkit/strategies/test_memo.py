import logging
import threading

import numpy as np
import pytest

from basics.errors import InputError
from tests.toolkit.strategies.conftest import Recorder, linear_image_onnx, logits_engine
from toolkit.strategies import Cascade, Memo, MemoConfig, Single
from toolkit.strategies.memo import ENTRY_OVERHEAD_BYTES
from toolkit.strategies.scores import softmax


def _data(count, classes=4, seed=0):
    return np.random.RandomState(seed).randn(count, 1, 1, classes).astype(np.float32)


def _memo(config=None, classes=4, identity="m", matrix=None):
    recorder = Recorder(logits_engine(classes, matrix=matrix, identity=identity))
    return Memo(Single(recorder), config or MemoConfig()), recorder


def test_hits_return_the_stored_answer_without_running_the_engine():
    memo, recorder = _memo()
    x = _data(10)
    first = memo.classify(x)
    again = memo.classify(x[::-1].copy())
    assert recorder.samples == 10  # the second batch ran nothing
    np.testing.assert_array_equal(again.probs, first.probs[::-1])
    np.testing.assert_array_equal(again.labels, first.labels[::-1])
    stats = memo.stats()
    assert (stats["samples"], stats["memo_hits"], stats["memo_misses"]) == (20, 10, 10)
    assert stats["memo_hit_rate"] == 0.5 and stats["inner_samples"] == 10


def test_misses_run_as_one_batch_and_repeats_within_a_batch_run_once():
    memo, recorder = _memo()
    x = _data(6)
    memo.classify(x[:2])
    batch = np.concatenate([x, x[3:5], x[:1]])  # 2 cached, 4 new of which 2 repeated
    result = memo.classify(batch)
    assert [len(b) for b in recorder.batches] == [2, 4]
    np.testing.assert_array_equal(recorder.batches[1], x[2:6])
    np.testing.assert_allclose(result.probs, softmax(batch.reshape(-1, 4)), rtol=1e-6)
    stats = memo.stats()
    assert stats["memo_misses"] == 6 and stats["memo_batch_repeats"] == 2
    assert stats["memo_hits"] == stats["samples"] - stats["inner_samples"] == 5


def test_a_batch_of_new_samples_runs_whole_and_is_stored():
    memo, recorder = _memo()
    x = _data(5)
    result = memo.classify(x)  # no key stored, none twice: the inner answer is the answer
    np.testing.assert_array_equal(recorder.batches[0], x)
    expected = Single(logits_engine(4)).classify(x)
    np.testing.assert_array_equal(result.probs, expected.probs)
    np.testing.assert_array_equal(result.labels, expected.labels)
    np.testing.assert_array_equal(result.confidence, expected.confidence)
    stats = memo.stats()
    assert (stats["memo_misses"], stats["memo_hits"], stats["memo_entries"]) == (5, 0, 5)
    blobs = [sample.tobytes() for sample in _data(3, seed=1)]
    decoded = []

    def decode(blob):
        decoded.append(blob)
        return np.frombuffer(blob, dtype=np.float32).reshape(1, 1, 4)
    first = memo.classify_encoded(blobs, decode)
    assert decoded == blobs and recorder.samples == 8
    again = memo.classify_encoded(blobs[::-1], decode)
    assert len(decoded) == 3 and recorder.samples == 8
    np.testing.assert_array_equal(again.probs, first.probs[::-1])


def test_same_bytes_with_another_dtype_or_shape_is_not_a_hit():
    from toolkit.strategies.hashing import exact_keys
    x = np.zeros((1, 1, 1, 4), np.float32)
    assert exact_keys(x) != exact_keys(x.reshape(1, 1, 4, 1))
    assert exact_keys(x) != exact_keys(x.view(np.int32))
    assert exact_keys(x) == exact_keys(x.copy())


def test_stored_answers_are_copies():
    memo, _ = _memo()
    x = _data(3)
    result = memo.classify(x)
    keep = result.probs.copy()
    result.probs[:] = -1.0
    np.testing.assert_array_equal(memo.classify(x).probs, keep)
    memo.classify(x).probs[:] = 7.0
    np.testing.assert_array_equal(memo.classify(x).probs, keep)


def test_lru_by_entries_evicts_the_least_recently_used():
    memo, recorder = _memo(MemoConfig(max_entries=3))
    x = _data(4)
    memo.classify(x[:3])
    memo.classify(x[:1])  # touch sample 0: sample 1 is now the oldest
    memo.classify(x[3:4])  # evicts sample 1
    assert len(memo) == 3 and memo.stats()["memo_evictions"] == 1
    ran = recorder.samples
    memo.classify(x[[0, 2, 3]])
    assert recorder.samples == ran  # all still cached
    memo.classify(x[1:2])
    assert recorder.samples == ran + 1  # sample 1 had been evicted


def test_lru_by_bytes_keeps_the_budget():
    entry = 4 * 4 + ENTRY_OVERHEAD_BYTES  # four float32 probabilities
    memo, _ = _memo(MemoConfig(max_bytes=5 * entry))
    memo.classify(_data(12))
    stats = memo.stats()
    assert stats["memo_entries"] == 5 and stats["memo_bytes"] == 5 * entry
    assert stats["memo_evictions"] == 7


def test_memo_is_thread_safe():
    memo, _ = _memo(MemoConfig(max_entries=64))
    pool = _data(100, seed=3)
    reference = softmax(pool.reshape(100, 4))
    errors = []

    def worker(seed):
        rng = np.random.RandomState(seed)
        try:
            for _ in range(30):
                index = rng.randint(0, 100, size=8)
                result = memo.classify(pool[index])
                np.testing.assert_allclose(result.probs, reference[index], rtol=1e-6)
        except Exception as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)
    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stats = memo.stats()
    assert stats["samples"] == 6 * 30 * 8 == stats["memo_hits"] + stats["memo_misses"]
    assert stats["memo_entries"] <= 64
    # two threads may miss the same key at once (both run it, one stores it): >=, not ==
    assert stats["memo_misses"] - stats["memo_evictions"] >= stats["memo_entries"] == 64
    assert stats["memo_bytes"] == 64 * (4 * 4 + ENTRY_OVERHEAD_BYTES)


class _StoresMeanwhile(Single):
    """A model that, on its first call, has the memo store the same samples first: what another
    thread can do while the memo runs its misses outside the lock."""

    def __init__(self, engine):
        Single.__init__(self, engine)
        self.memo, self.pending = None, None

    def _classify(self, images):
        if self.pending is not None:
            pending, self.pending = self.pending, None
            self.memo.classify(pending)
        return Single._classify(self, images)


@pytest.mark.parametrize("batch", [slice(0, 6), [0, 1, 2, 0, 3, 4, 5]])  # all new / with a repeat
def test_keys_stored_meanwhile_are_not_stored_twice(batch):
    inner = _StoresMeanwhile(logits_engine(4))
    memo = Memo(inner, MemoConfig())
    inner.memo = memo
    x = _data(6)
    inner.pending = x[[1, 4]]
    result = memo.classify(x[batch])
    np.testing.assert_allclose(result.probs, softmax(x[batch].reshape(-1, 4)), rtol=1e-6)
    stats = memo.stats()
    assert stats["memo_entries"] == 6
    assert stats["memo_bytes"] == 6 * (4 * 4 + ENTRY_OVERHEAD_BYTES)
    hits = stats["memo_hits"]
    again = memo.classify(x)
    assert memo.stats()["memo_hits"] == hits + 6 and memo.stats()["memo_entries"] == 6
    np.testing.assert_allclose(again.probs, softmax(x.reshape(-1, 4)), rtol=1e-6)
    memo.clear()
    assert len(memo) == 0 and memo.stats()["memo_bytes"] == 0


def test_persistence_round_trip(tmp_path):
    path = str(tmp_path / "memo.npz")
    memo, _ = _memo(MemoConfig(path=path))
    x = _data(5)
    expected = memo.classify(x).probs
    memo.close()  # saves
    again, recorder = _memo(MemoConfig(path=path))
    assert again.load_status.startswith("loaded 5 entries")
    np.testing.assert_array_equal(again.classify(x).probs, expected)
    assert recorder.samples == 0


def test_cache_file_holds_the_xxh3_128_integers(tmp_path):
    """The file format is independent of the in-memory key type: each key as the two 64-bit
    halves of xxh3_128's integer (files written by earlier versions load the same)."""
    import xxhash

    from toolkit.strategies.hashing import _seed
    path = str(tmp_path / "memo.npz")
    memo, _ = _memo(MemoConfig(path=path))
    x = _data(4)
    memo.classify(x)
    memo.save()
    with np.load(path) as archive:
        stored = {(int(h) << 64) | int(l) for h, l in zip(archive["key_high"], archive["key_low"])}
    seed = _seed(x.dtype, x.shape[1:])
    assert stored == {xxhash.xxh3_128_intdigest(row.tobytes(), seed) for row in x}


def test_cache_of_other_models_is_not_used(tmp_path, caplog):
    path = str(tmp_path / "memo.npz")
    memo, _ = _memo(MemoConfig(path=path), identity="model-1")
    memo.classify(_data(5))
    memo.save()
    with caplog.at_level(logging.WARNING, logger="toolkit.memo"):
        other, recorder = _memo(MemoConfig(path=path), identity="model-2")
    assert len(other) == 0 and "other models" in other.load_status
    assert "starting empty" in caplog.text
    other.classify(_data(5))
    assert recorder.samples == 5


def test_cache_with_other_keys_or_damaged_is_not_used(tmp_path):
    path = str(tmp_path / "memo.npz")
    memo, _ = _memo(MemoConfig(path=path))
    memo.classify(_data(3))
    memo.save()
    perceptual, _ = _memo(MemoConfig(mode="dhash", path=path))
    assert len(perceptual) == 0 and "keys are xxh3_128" in perceptual.load_status



@pytest.mark.parametrize("content", [b"not a cache", b"PK\x03\x04 truncated zip", "npz"])
def test_a_file_that_is_no_memo_is_refused_and_kept(tmp_path, content):
    path = tmp_path / "memo.npz"
    if content == "npz":  # any other .npz, e.g. a data set
        np.savez(str(path), images=np.zeros((2, 1, 8, 8), np.float32))
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    with pytest.raises(InputError, match="exists but is not a memo file"):
        _memo(MemoConfig(path=str(path)))
    assert path.read_bytes() == before


def test_encoded_path_decodes_only_the_misses():
    memo, recorder = _memo()
    x = _data(4)
    blobs = [x[i].tobytes() for i in range(4)]
    decoded = []

    def decode(blob):
        decoded.append(blob)
        return np.frombuffer(blob, dtype=np.float32).reshape(1, 1, 4)
    first = memo.classify_encoded(blobs[:3] + blobs[:1], decode)
    assert len(decoded) == 3  # the repeat is decoded once
    second = memo.classify_encoded(blobs, decode)
    assert len(decoded) == 4  # only blob 3 was new
    np.testing.assert_array_equal(second.probs[:3], first.probs[:3])
    assert recorder.samples == 4 and memo.stats()["memo_hits"] == 4


def test_dhash_mode_hits_on_rotated_copies_only_when_invariant():
    image = np.random.RandomState(5).rand(1, 1, 8, 8).astype(np.float32)
    rotated = np.rot90(image, 1, axes=(2, 3)).copy()
    flipped = image[:, :, :, ::-1].copy()
    matrix = np.random.RandomState(6).randn(64, 3).astype(np.float32)
    engine = Recorder(_flat_linear_engine(matrix))
    invariant = Memo(Single(engine), MemoConfig(mode="dhash", invariant=True))
    invariant.classify(image)
    invariant.classify(np.concatenate([rotated, flipped]))
    assert engine.samples == 1 and invariant.stats()["memo_hits"] == 2
    plain = Memo(Single(Recorder(_flat_linear_engine(matrix))), MemoConfig(mode="dhash"))
    plain.classify(image)
    plain.classify(rotated)
    assert plain.stats()["memo_hits"] == 0


def _flat_linear_engine(matrix):
    """(N, 1, 8, 8) -> flatten -> times matrix (64 x K): a 'classifier' of 8x8 images."""
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    return OnnxRuntimeEngine(linear_image_onnx(matrix), identity="flat", threads=1)


def test_dhash_hamming_distance_allows_near_copies():
    base = np.random.RandomState(7).rand(1, 1, 8, 8).astype(np.float32)
    near = base.copy()
    near[0, 0, 0, :2] = near[0, 0, 0, 1::-1]  # swap two pixels: flips one neighbour bit or so
    from toolkit.strategies.hashing import dhash, hamming
    distance = int(hamming(dhash(base), dhash(near))[0, 0])
    assert 1 <= distance <= 3
    matrix = np.random.RandomState(8).randn(64, 3).astype(np.float32)
    exact = Memo(Single(_flat_linear_engine(matrix)), MemoConfig(mode="dhash"))
    tolerant = Memo(Single(_flat_linear_engine(matrix)), MemoConfig(mode="dhash", hamming=3))
    for memo in (exact, tolerant):
        memo.classify(base)
        memo.classify(near)
    assert exact.stats()["memo_hits"] == 0 and tolerant.stats()["memo_hits"] == 1


def test_memo_over_a_cascade_merges_the_counters():
    a, b = logits_engine(4, identity="a"), logits_engine(4, identity="b")
    memo = Memo(Cascade(a, b, 0.6))
    x = _data(8)
    memo.classify(np.concatenate([x, x]))
    stats = memo.stats()
    assert stats["samples"] == 16 and stats["inner_samples"] == 8
    assert "handoffs" in stats and stats["memo_hits"] == 8
    assert memo.identity() != Cascade(a, b, 0.6).identity()


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "fuzzy"}, "memo mode must be one of"),
    ({"max_entries": 0}, "max_entries must be at least 1"),
    ({"max_bytes": 0}, "max_bytes must be positive"),
    ({"mode": "dhash", "hamming": 65}, "hamming distance must be in 0..64"),
    ({"hamming": 2}, "need mode 'dhash'"),
    ({"invariant": True}, "need mode 'dhash'"),
])
def test_bad_memo_settings_are_input_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        MemoConfig(**kwargs)


def test_save_without_a_path_is_an_input_error():
    memo, _ = _memo()
    with pytest.raises(InputError, match="no memo file"):
        memo.save()
