"""Memoization: identical inputs get the stored answer without running any engine.

Keys (see :mod:`toolkit.strategies.hashing`):

- ``exact``: xxh3_128 of each sample's raw bytes (+ dtype/shape). Through
  :meth:`Memo.classify_encoded` the *encoded* file bytes are hashed before decoding, so a hit also
  skips decoding and preprocessing;
- ``dhash``: the paper's perceptual 64-bit difference hash, optionally invariant to the 8
  rotations/flips, a hit when equal or within ``hamming`` bits. Different images can share a
  hash (a false hit returns another image's answer); measure that risk on your data first.

The cache is an LRU bounded by entries and by bytes, thread-safe, stores copies, and can persist
to a file keyed by the inner strategy's identity (a cache from other models is never used).
Misses of one batch run as one batch on the inner strategy; duplicates within a batch run once.
"""
import collections
import io
import itertools
import logging
import os

import numpy as np

from basics.errors import InputError
from basics.fileio import write_bytes_atomic
from toolkit.strategies import hashing
from toolkit.strategies.hashing import exact_keyer_one
from toolkit.strategies.base import (
    ClassifyResult,
    Strategy,
    as_strategy,
    combine_identity,
)
from toolkit.strategies.registry import StrategyType, register_strategy

LOG = logging.getLogger("toolkit.memo")
MODES = ("exact", "dhash")
ENTRY_OVERHEAD_BYTES = 160  # key, confidence, dict slot and array header, roughly, per entry
_FILE_FORMAT = 1
_MISSING = -1  # the slot of a key not stored
_FLOAT32 = np.dtype(np.float32)
_NDARRAY = np.ndarray
_INT64 = np.dtype(np.int64)


class MemoConfig(object):
    """Memo settings.

    ``mode``: ``exact`` or ``dhash``; ``max_entries`` / ``max_bytes``: LRU bounds (``max_bytes``
    counts stored probabilities plus :data:`ENTRY_OVERHEAD_BYTES` per entry); ``hamming``: dHash
    hit distance in bits (0 = equal hashes); ``invariant``: dHash over rotations/flips;
    ``path``: cache file loaded at start (if present) and written by ``save()``/``close()``.
    """

    def __init__(self, mode="exact", max_entries=100000, max_bytes=64 << 20, hamming=0,
                 invariant=False, path=None):
        if mode not in MODES:
            raise InputError("memo mode must be one of {}, got '{}'".format(", ".join(MODES), mode))
        if int(max_entries) < 1:
            raise InputError("memo max_entries must be at least 1, got {}".format(max_entries))
        if int(max_bytes) < 1:
            raise InputError("memo max_bytes must be positive, got {}".format(max_bytes))
        if not 0 <= int(hamming) <= 64:
            raise InputError("memo hamming distance must be in 0..64, got {}".format(hamming))
        if mode == "exact" and (hamming or invariant):
            raise InputError("memo 'hamming' and 'invariant' need mode 'dhash' (perceptual)")
        self.mode = mode
        self.max_entries = int(max_entries)
        self.max_bytes = int(max_bytes)
        self.hamming = int(hamming)
        self.invariant = bool(invariant)
        self.path = None if path is None else os.fspath(path)

    def key_kind(self):
        """What the keys are: files from another key kind are never mixed in."""
        if self.mode == "exact":
            return "xxh3_128"
        return "dhash64-invariant" if self.invariant else "dhash64"

    def to_dict(self):
        return {"mode": self.mode, "max_entries": self.max_entries, "max_bytes": self.max_bytes,
                "hamming": self.hamming, "invariant": self.invariant, "path": self.path}

    def __repr__(self):
        return "MemoConfig({})".format(", ".join(
            "{}={!r}".format(k, v) for k, v in sorted(self.to_dict().items())))


class Memo(Strategy):
    """Wrap ``inner`` (a strategy or an engine) with a bounded answer cache.

    Counters: ``samples``, ``memo_hits`` (samples answered without running an engine on them:
    cache hits plus repeats within one batch), ``memo_misses``, ``memo_batch_repeats``,
    ``memo_evictions``, ``memo_hit_rate``, ``memo_entries``, ``memo_bytes``; the inner strategy's
    counters are merged in (its ``samples`` as ``inner_samples``).
    """

    kind = "memo"

    def __init__(self, inner, config=None):
        self.inner = as_strategy(inner)
        self.config = config or MemoConfig()
        self.confidence_score = self.inner.confidence_score
        self._exact = self.config.mode == "exact"
        # (digest, seed) of the latest batch-of-one shape and dtype
        self._keyer, self._keyer_shape, self._keyer_dtype = None, None, None
        # the store: one row per slot of preallocated arrays (grown by doubling up to the bound),
        # and an LRU of key -> slot (oldest first); freed slots are reused
        self._slots = collections.OrderedDict()
        self._probs = None  # float32 (capacity, classes), allocated at the first answer
        self._conf = np.zeros(0, dtype=np.float32)
        self._labels = np.zeros(0, dtype=np.int64)  # arg-max of each stored row (hits skip it)
        self._free = []
        self._bytes = 0
        self._hash_cache = None  # (keys list, uint64 array) for hamming search; None = stale
        self._generation = 0  # bumped by every store and clear: keys found absent stay absent
        self._init_strategy(self.inner.inputs[0].shape, self.inner.num_classes)
        # the shortest path of classify(): a lone sample of the input shape, in exact mode
        tail = tuple(self.inputs[0].shape[1:])
        self._one_shape = None
        if self._exact and -1 not in tail and (self.min_batch or 1) <= 1:
            self._one_shape = (1,) + tail
            self._one_keyer = exact_keyer_one(_FLOAT32, self._one_shape)
        self.load_status = "empty"
        if self.config.path and os.path.exists(self.config.path):
            self.load_status = self._load(self.config.path)
        self._saved_generation = self._generation  # close() writes only what changed

    # -- classify ------------------------------------------------------------------------------
    def classify(self, images, check=True):
        """:meth:`Strategy.classify`. In ``exact`` mode a C-contiguous float32 batch of one sample
        of the input shape (the call at batch 1) is hashed and answered at once: it passes every
        check already, and the answer is the same."""
        if (type(images) is _NDARRAY and images.shape == self._one_shape
                and images.dtype is _FLOAT32 and images.flags.c_contiguous):
            digest, seed = self._one_keyer
            return self._answer_one(digest(images, seed), images)
        return Strategy.classify(self, images, check)

    def _classify(self, images):
        if len(images) == 1:  # no per-sample lists, no gathers: the batch of one is the sample
            if self._exact:
                shape = images.shape
                if shape != self._keyer_shape or images.dtype is not self._keyer_dtype:
                    self._keyer = exact_keyer_one(images.dtype, shape)
                    self._keyer_shape, self._keyer_dtype = shape, images.dtype
                digest, seed = self._keyer
                try:  # the array's own buffer: C-contiguous (checked, or promised unchecked)
                    key = digest(images, seed)
                except (BufferError, ValueError, TypeError):  # not contiguous after all
                    key = hashing.exact_keys(images)[0]
            elif self.config.invariant:
                key = hashing.dhash(images, True).item(0)
            else:
                key = hashing.dhash_one(images)
            return self._answer_one(key, images)
        if self._exact:
            keys = hashing.exact_keys(images)
        else:
            keys = hashing.dhash(images, self.config.invariant).tolist()
        return self._answer(keys, lambda index: images if index is None else
                            images.take(index, axis=0))

    def classify_encoded(self, blobs, decode):
        """Classify encoded samples: in ``exact`` mode the file bytes are hashed first and only
        misses are decoded (``decode(blob) -> float32 (C, H, W)``); ``dhash`` needs pixels, so
        there every blob is decoded before hashing."""
        if not len(blobs):
            raise InputError("empty batch: at least one sample is needed")
        if self.config.mode != "exact":
            return self.classify(np.stack([decode(blob) for blob in blobs]))
        encoded_key = hashing.encoded_key
        keys = [encoded_key(blob) for blob in blobs]

        def fetch(index):
            picked = blobs if index is None else [blobs[i] for i in index]
            images = np.stack([decode(blob) for blob in picked])
            images = np.ascontiguousarray(images, dtype=np.float32)
            self.inner.check_feeds({"input": images})
            return images
        return self._answer(keys, fetch)

    def _answer(self, keys, fetch):
        count = len(keys)
        with self._lock:
            slots, found = self._lookup_all(keys)
            generation = self._generation
            if found == count:  # every sample a hit: one gather per array, nothing else
                index = np.array(slots, dtype=np.intp)
                counters = self._counters
                counters["samples"] += count
                counters["memo_hits"] += count
                return ClassifyResult(self._labels.take(index), self._probs.take(index, axis=0),
                                      self._conf.take(index))
            all_new = not found and len(set(keys)) == count
            if not all_new:
                missed = list(itertools.compress(keys, map(_MISSING.__eq__, slots)))
                slots = np.array(slots, dtype=np.intp)
                hits = count - len(missed)
                if hits:
                    # every position gathered now (a miss reads some valid row, -1 being the
                    # last, overwritten below): once the lock is released the hits' slots may be
                    # reused
                    probs = self._probs.take(slots, axis=0)
                    confidence = self._conf.take(slots)
                    labels = self._labels.take(slots)
        if all_new:  # every sample new (and none twice): no gathers, no scatters
            return self._answer_all_new(keys, fetch, generation)
        miss_positions = (slots < 0).nonzero()[0]
        # the first occurrence of each missed key: its row in the inner batch
        first = {}
        rows = list(map(first.setdefault, missed, range(len(missed))))
        if len(first) == len(missed):  # no repeats within the batch (the common case)
            fetched, fetched_keys, miss_rows = miss_positions, missed, None
        else:
            unique = np.fromiter(first.values(), dtype=np.intp, count=len(first))
            fetched, fetched_keys = miss_positions.take(unique), list(first)
            rank = np.empty(len(missed), dtype=np.intp)
            rank[unique] = np.arange(len(unique), dtype=np.intp)
            miss_rows = rank.take(rows)  # each missed position -> its key's row
        misses = len(fetched)
        # both fetches give a checked, contiguous float32 batch (the memo input is the inner one)
        result = self.inner.classify(fetch(fetched), False)
        new_probs = np.asarray(result.probs, dtype=np.float32)
        new_conf = np.asarray(result.confidence, dtype=np.float32)
        new_labels = np.asarray(result.labels, dtype=np.int64)  # the arg-max of its probs
        # (no hits and no repeats went to _answer_all_new)
        if not hits:  # repeats only: every position reads its key's row
            probs = new_probs.take(miss_rows, axis=0)
            confidence, labels = new_conf.take(miss_rows), new_labels.take(miss_rows)
        else:
            if probs.shape[1] != new_probs.shape[1]:
                _class_mismatch(new_probs.shape[1], probs.shape[1])
            if miss_rows is None:
                probs[miss_positions] = new_probs
                confidence[miss_positions] = new_conf
                labels[miss_positions] = new_labels
            else:
                probs[miss_positions] = new_probs.take(miss_rows, axis=0)
                confidence[miss_positions] = new_conf.take(miss_rows)
                labels[miss_positions] = new_labels.take(miss_rows)
        with self._lock:
            self._store_rows(fetched_keys, new_probs, new_conf, new_labels, unique=True,
                             absent_since=generation)
            counters = self._counters
            counters["samples"] += count
            counters["memo_hits"] += count - misses
            counters["memo_misses"] += misses
            counters["memo_batch_repeats"] += count - hits - misses
        return ClassifyResult(labels, probs, confidence)

    def _answer_one(self, key, images):
        """``_answer`` for a batch of one sample: the same answers, counters and store."""
        with self._lock:
            entries = self._slots
            slot = entries.get(key)
            if slot is not None:
                entries.move_to_end(key)
            elif self.config.hamming and entries:
                slots = [_MISSING]
                self._near_lookup([key], [0], slots)
                if slots[0] != _MISSING:
                    slot = slots[0]
            if slot is not None:
                counters = self._counters
                counters["samples"] += 1
                counters["memo_hits"] += 1
                end = slot + 1
                return ClassifyResult(self._labels[slot:end].copy(),
                                      self._probs[slot:end].copy(), self._conf[slot:end].copy())
            generation = self._generation
        result = self.inner.classify(images, False)
        probs = result.probs
        confidence = result.confidence
        labels = result.labels
        if probs.dtype != _FLOAT32:
            probs = probs.astype(np.float32)
        if confidence.dtype != _FLOAT32:
            confidence = confidence.astype(np.float32)
        if labels.dtype != _INT64:
            labels = labels.astype(np.int64)
        with self._lock:
            self._store_one(key, probs, confidence, labels, generation)
            counters = self._counters
            counters["samples"] += 1
            counters["memo_misses"] += 1
        # the store holds copies, and an engine's (so a strategy's) answer is its caller's own
        # fresh arrays: they are the answer as they are
        return ClassifyResult(labels, probs, confidence)

    def _store_one(self, key, probs, confidence, labels, absent_since):
        """``_store_rows([key], ...)`` for one new key; the common case (room, a free slot, the
        same number of classes) without lists or fancy indexing. Call with the lock held."""
        store = self._probs
        free = self._free
        entry_bytes = (store.shape[1] * 4 + ENTRY_OVERHEAD_BYTES) if store is not None else 0
        if (store is None or not free or store.shape[1] != probs.shape[1]
                or absent_since != self._generation
                or len(self._slots) >= self.config.max_entries
                or self._bytes + entry_bytes > self.config.max_bytes):
            self._store_rows([key], probs, confidence, labels, unique=True,
                             absent_since=absent_since)
            return
        self._generation += 1
        slot = free.pop()
        self._slots[key] = slot
        self._bytes += entry_bytes
        self._hash_cache = None
        store[slot] = probs  # (1, C) into a row: numpy drops the leading 1
        self._conf[slot:slot + 1] = confidence
        self._labels[slot:slot + 1] = labels

    def _answer_all_new(self, keys, fetch, generation):
        """``_answer`` when no key is stored (at ``generation``) and none repeats: the inner
        answer is the answer."""
        count = len(keys)
        result = self.inner.classify(fetch(None), False)
        probs = np.asarray(result.probs, dtype=np.float32)
        confidence = np.asarray(result.confidence, dtype=np.float32)
        labels = np.asarray(result.labels, dtype=np.int64)
        with self._lock:
            self._store_rows(keys, probs, confidence, labels, unique=True,
                             absent_since=generation)
            counters = self._counters
            counters["samples"] += count
            counters["memo_misses"] += count
        return ClassifyResult(labels, probs.copy(), confidence.copy())

    def _lookup_all(self, keys):
        """``(slots, found)``: the slot of each key (-1: not stored), touching each found key in
        the LRU, in order, and how many were found. Call with the lock held."""
        entries = self._slots
        count = len(keys)
        slots = list(map(entries.get, keys, itertools.repeat(-1, count)))
        touch = entries.move_to_end
        missing = slots.count(-1)
        if not missing:
            collections.deque(map(touch, keys), 0)  # every key found: touch them all, in C
            return slots, count
        if missing < count:  # the found keys only, in order (still in C: by slot != -1)
            collections.deque(map(touch, itertools.compress(keys, map(_MISSING.__ne__, slots))),
                              0)
        if self.config.hamming and entries:
            self._near_lookup(keys, [i for i, slot in enumerate(slots) if slot < 0], slots)
            missing = slots.count(-1)
        return slots, count - missing

    def _near_lookup(self, keys, missing, slots):
        if self._hash_cache is None:
            stored = list(self._slots.keys())
            self._hash_cache = (stored, np.array(stored, dtype=np.uint64))
        stored, array = self._hash_cache
        distances = hashing.hamming(np.array([keys[i] for i in missing], dtype=np.uint64), array)
        nearest = np.argmin(distances, axis=1)
        for row, position in enumerate(missing):
            if distances[row, nearest[row]] <= self.config.hamming:
                key = stored[nearest[row]]
                self._slots.move_to_end(key)
                slots[position] = self._slots[key]

    def _store_rows(self, keys, probs, confidence, labels=None, unique=False, absent_since=None):
        """Store ``keys[i]`` -> row ``i`` of ``probs``/``confidence`` (and ``labels``, their
        arg-max, computed when not given); a key already stored keeps its answer. Evicts the least
        recently used beyond the bounds. ``unique``: the caller knows ``keys`` has no repeats;
        ``absent_since``: the generation at which the caller found none of them stored (no store
        since means none is stored now). Call with the lock held."""
        count = len(keys)
        if not count:
            return
        known_absent = absent_since is not None and absent_since == self._generation
        self._generation += 1
        classes = probs.shape[1]
        if self._probs is None or (not self._slots and self._probs.shape[1] != classes):
            self._probs = np.zeros((0, classes), dtype=np.float32)
            self._conf = np.zeros(0, dtype=np.float32)
            self._labels = np.zeros(0, dtype=np.int64)
            self._free = []
        elif self._probs.shape[1] != classes:
            _class_mismatch(classes, self._probs.shape[1])
        if labels is None:
            labels = probs.argmax(axis=1)
        entry_bytes = classes * 4 + ENTRY_OVERHEAD_BYTES
        entries, free = self._slots, self._free
        max_entries, max_bytes = self.config.max_entries, self.config.max_bytes
        if (unique and len(free) >= count and len(entries) + count <= max_entries
                and self._bytes + count * entry_bytes <= max_bytes
                and (known_absent or not any(map(entries.__contains__, keys)))):
            # the common case: new keys, room for all of them, free slots at hand. The same
            # slots as the loop below would take (free.pop() order), all at once
            taken = free[-count:]
            del free[-count:]
            taken.reverse()
            entries.update(zip(keys, taken))
            self._bytes += count * entry_bytes
            self._hash_cache = None
            slots = np.array(taken, dtype=np.intp)
            self._probs[slots] = probs
            self._conf[slots] = confidence
            self._labels[slots] = labels
            return
        written = {}  # slot -> row, the last write to a slot wins
        evicted = 0
        for row, key in enumerate(keys):
            if key in entries:
                continue
            size, used = len(entries) + 1, self._bytes + entry_bytes
            while size > max_entries or (used > max_bytes and size > 1):
                _, slot = entries.popitem(last=False)  # the least recently used
                free.append(slot)
                size, used = size - 1, used - entry_bytes
                evicted += 1
            if used > max_bytes:  # one entry larger than the whole budget: not kept
                evicted += 1
                continue
            if not free:
                self._grow(entry_bytes)
            slot = free.pop()
            entries[key] = slot
            self._bytes = used
            written[slot] = row
        if written:
            self._hash_cache = None
            slots = np.fromiter(written.keys(), dtype=np.intp, count=len(written))
            rows = np.fromiter(written.values(), dtype=np.intp, count=len(written))
            self._probs[slots] = probs[rows]
            self._conf[slots] = confidence[rows]
            self._labels[slots] = labels[rows]
        if evicted:
            self._counters["memo_evictions"] += evicted

    def _grow(self, entry_bytes):
        """Double the store's capacity (at most the most entries the bounds allow)."""
        capacity = len(self._probs)
        bound = max(1, min(self.config.max_entries, self.config.max_bytes // entry_bytes))
        grown = max(capacity + 1, min(max(2 * capacity, 64), bound))
        probs = np.zeros((grown, self._probs.shape[1]), dtype=np.float32)
        probs[:capacity] = self._probs
        conf = np.zeros(grown, dtype=np.float32)
        conf[:capacity] = self._conf
        labels = np.zeros(grown, dtype=np.int64)
        labels[:capacity] = self._labels
        self._probs, self._conf, self._labels = probs, conf, labels
        self._free.extend(range(grown - 1, capacity - 1, -1))  # pop() hands out the lowest first

    # -- counters ------------------------------------------------------------------------------
    def _counter_names(self):
        return ("samples", "memo_hits", "memo_misses", "memo_batch_repeats", "memo_evictions")

    def stats(self):
        inner = self.inner.stats()
        stats = {("inner_" + key if key == "samples" else key): value
                 for key, value in inner.items()}
        with self._lock:
            stats.update(self._counters)
            stats["memo_entries"] = len(self._slots)
            stats["memo_bytes"] = self._bytes
        stats["memo_hit_rate"] = stats["memo_hits"] / stats["samples"] if stats["samples"] else 0.0
        return stats

    def __len__(self):
        return len(self._slots)

    def clear(self):
        """Forget every stored answer (counters stay)."""
        with self._lock:
            self._generation += 1
            self._slots.clear()
            self._free = list(range(len(self._conf) - 1, -1, -1))
            self._bytes = 0
            self._hash_cache = None

    def children(self):
        return (self.inner,)

    def identity(self):
        return combine_identity(self.kind, [self.inner.identity()], {"keys": self.config.key_kind(),
                                                                     "hamming": self.config.hamming})

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path=None):
        """Write the cache to ``path`` (default: the config's) atomically; returns the path."""
        path = path or self.config.path
        if not path:
            raise InputError("no memo file given (set memo 'path' or pass one to save())")
        identity = self.inner.identity()
        with self._lock:
            keys = list(self._slots.keys())
            slots = np.fromiter(self._slots.values(), dtype=np.intp, count=len(keys))
            classes = self._probs.shape[1] if self._probs is not None else 0
            probs = self._probs[slots] if keys else np.zeros((0, classes), np.float32)
            confidence = self._conf[slots]
        if self.config.mode == "exact":  # 16-byte keys, stored as the 128-bit integers
            numbers = [int.from_bytes(k, "big") for k in keys]
            high = np.array([k >> 64 for k in numbers], dtype=np.uint64)
            low = np.array([k & 0xFFFFFFFFFFFFFFFF for k in numbers], dtype=np.uint64)
        else:
            high = np.zeros(len(keys), dtype=np.uint64)
            low = np.array(keys, dtype=np.uint64)
        buffer = io.BytesIO()
        np.savez(buffer, format=np.array(_FILE_FORMAT), identity=np.array(identity),
                 key_kind=np.array(self.config.key_kind()), key_high=high, key_low=low,
                 probs=probs, confidence=confidence)
        write_bytes_atomic(path, buffer.getvalue())
        self._saved_generation = self._generation
        return path

    def _load(self, path):
        """Fill the cache from ``path``; on a memo of other models or keys start empty and log
        why. A file that is no memo at all (a model, the spec, other data) is an InputError: it
        would be overwritten on close."""
        try:
            with np.load(path, allow_pickle=False) as archive:
                data = {name: archive[name] for name in archive.files}
            if "format" not in data or "identity" not in data:
                raise ValueError("no memo arrays in it")
        except Exception as exc:  # noqa: BLE001 - numpy raises many kinds
            raise InputError("memo file {} exists but is not a memo file ({}); it would be "
                             "overwritten: delete it or give the memo another 'file'".format(
                                 path, str(exc).splitlines()[0] if str(exc) else
                                 type(exc).__name__)) from None
        try:
            identity = self.inner.identity()
        except Exception as exc:  # noqa: BLE001 - engines without identity cannot be matched
            return self._start_empty(path, "the models have no identity ({})".format(exc))
        try:
            if int(data["format"]) != _FILE_FORMAT:
                return self._start_empty(path, "unknown file format {}".format(int(data["format"])))
            if str(data["identity"]) != identity:
                return self._start_empty(path, "it was made by other models")
            if str(data["key_kind"]) != self.config.key_kind():
                return self._start_empty(path, "its keys are {}, this memo uses {}".format(
                    data["key_kind"], self.config.key_kind()))
            high, low = data["key_high"], data["key_low"]
            probs, confidence = data["probs"], data["confidence"]
        except Exception as exc:  # noqa: BLE001 - a damaged cache is only a lost cache
            return self._start_empty(path, "it is unreadable ({})".format(
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
        if self.config.mode == "exact":
            keys = [((h << 64) | l).to_bytes(16, "big")
                    for h, l in zip(high.tolist(), low.tolist())]
        else:
            keys = low.tolist()
        with self._lock:
            if keys:
                self._store_rows(keys, np.asarray(probs, dtype=np.float32).reshape(len(keys), -1),
                                 np.asarray(confidence, dtype=np.float32).reshape(-1))
            self._counters["memo_evictions"] = 0
        return "loaded {} entries from {}".format(len(self._slots), path)

    def _start_empty(self, path, why):
        message = "memo file {} not used, starting empty: {}".format(path, why)
        LOG.warning(message)
        return message

    def close(self):
        """Save to the config's path (if any), then close the inner strategy."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        try:
            if self.config.path and self._generation != self._saved_generation:
                self.save()  # a run that stored nothing (e.g. failed early) writes nothing
        finally:
            Strategy.close(self)

    def __repr__(self):
        return "Memo({!r}, mode={})".format(self.inner, self.config.mode)


@register_strategy
class MemoType(StrategyType):
    """The spec's top-level ``memo:`` section (``off``, ``exact``, ``dhash`` or a mapping of
    ``mode``, ``max_entries``, ``max_mb``, ``hamming``, ``invariant``, ``file``): a memo around
    the whole strategy."""

    name = "memo"
    strategy_class = Memo
    description = "identical inputs get the stored answer (exact hash or perceptual dHash)"
    section = "memo"
    keys = ("mode", "max_entries", "max_mb", "hamming", "invariant", "file")

    def parse_section(self, data, read):
        if data is None or data is False or data == "off":
            return None
        if isinstance(data, str):
            data = {"mode": data}
        if not isinstance(data, dict):
            raise InputError("memo must be off, exact, dhash or a mapping")
        no_unknown = read.no_unknown
        no_unknown(data, self.keys, "memo")
        if data.get("mode", "exact") == "off":
            return None
        path = data.get("file")
        if path is not None:
            path = read.path(path, "memo 'file'")
        max_mb = data.get("max_mb", 64)
        if isinstance(max_mb, bool) or not isinstance(max_mb, (int, float)) or not max_mb > 0:
            raise InputError("memo max_mb must be a positive number, got {!r}".format(max_mb))
        return MemoConfig(mode=data.get("mode", "exact"),
                          max_entries=read.integer(data.get("max_entries", 100000),
                                                   "memo max_entries", 1),
                          max_bytes=int(max_mb * (1 << 20)),
                          hamming=read.integer(data.get("hamming", 0), "memo hamming", 0),
                          invariant=read.as_boolean(data.get("invariant", False),
                                                    "memo invariant"),
                          path=path)

    def wrap(self, inner, config):
        return Memo(inner, config)

    def describe_section(self, config):
        return " + memo ({})".format(config.key_kind())

    def energy(self, strategy, expected):
        rate = strategy.stats().get("memo_hit_rate", 0.0)  # (1 - hit rate) x E(inner)
        value, text = expected(strategy.inner)
        return (1.0 - rate) * value, "(1 - {:.3f}) x [{}]".format(rate, text)


def _class_mismatch(given, held):
    raise InputError("the inner strategy gave {} classes, the memo holds {}".format(given, held))
