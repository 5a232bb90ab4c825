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
import logging
import os

import numpy as np

from toolkit.errors import InputError
from toolkit.fileio import write_bytes_atomic
from toolkit.strategies import hashing
from toolkit.strategies.base import ClassifyResult, Strategy, as_strategy, combine_identity

LOG = logging.getLogger("toolkit.memo")
MODES = ("exact", "dhash")
ENTRY_OVERHEAD_BYTES = 160  # key, confidence, dict slot and array header, roughly, per entry
_FILE_FORMAT = 1


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
        self._entries = collections.OrderedDict()  # key -> (probs row, confidence)
        self._bytes = 0
        self._hash_cache = None  # (keys list, uint64 array) for hamming search; None = stale
        self._init_strategy(self.inner.inputs[0].shape, self.inner.num_classes)
        self.load_status = "empty"
        if self.config.path and os.path.exists(self.config.path):
            self.load_status = self._load(self.config.path)

    # -- classify ------------------------------------------------------------------------------
    def _classify(self, images):
        if self.config.mode == "exact":
            keys = hashing.exact_keys(images)
        else:
            keys = [int(k) for k in hashing.dhash(images, self.config.invariant)]
        return self._answer(keys, lambda index: images[index])

    def classify_encoded(self, blobs, decode):
        """Classify encoded samples: in ``exact`` mode the file bytes are hashed first and only
        misses are decoded (``decode(blob) -> float32 (C, H, W)``); ``dhash`` needs pixels, so
        there every blob is decoded before hashing."""
        if not len(blobs):
            raise InputError("empty batch: at least one sample is needed")
        if self.config.mode != "exact":
            return self.classify(np.stack([decode(blob) for blob in blobs]))
        keys = [hashing.encoded_key(blob) for blob in blobs]

        def fetch(index):
            images = np.stack([decode(blobs[i]) for i in index])
            images = np.ascontiguousarray(images, dtype=np.float32)
            self.inner.check_feeds({"input": images})
            return images
        return self._answer(keys, fetch)

    def _answer(self, keys, fetch):
        count = len(keys)
        found = self._lookup_all(keys)
        pending = collections.OrderedDict()  # missed key -> positions
        for position, entry in enumerate(found):
            if entry is None:
                pending.setdefault(keys[position], []).append(position)
        repeats = sum(len(positions) - 1 for positions in pending.values())
        if pending:
            result = self.inner.classify(fetch([positions[0] for positions in pending.values()]))
            with self._lock:
                for row, (key, positions) in enumerate(pending.items()):
                    entry = (result.probs[row].copy(), float(result.confidence[row]))
                    self._store(key, entry)
                    for position in positions:
                        found[position] = entry
        probs = np.stack([entry[0] for entry in found])
        confidence = np.array([entry[1] for entry in found], dtype=np.float32)
        misses = len(pending)
        self._count(samples=count, memo_hits=count - misses, memo_misses=misses,
                    memo_batch_repeats=repeats)
        return ClassifyResult(np.argmax(probs, axis=1).astype(np.int64), probs, confidence)

    def _lookup_all(self, keys):
        found = [None] * len(keys)
        with self._lock:
            entries = self._entries
            for position, key in enumerate(keys):
                entry = entries.get(key)
                if entry is not None:
                    entries.move_to_end(key)
                    found[position] = entry
            if self.config.hamming and entries:
                missing = [i for i, entry in enumerate(found) if entry is None]
                if missing:
                    self._near_lookup(keys, missing, found)
        return found

    def _near_lookup(self, keys, missing, found):
        if self._hash_cache is None:
            stored = list(self._entries.keys())
            self._hash_cache = (stored, np.array(stored, dtype=np.uint64))
        stored, array = self._hash_cache
        distances = hashing.hamming(np.array([keys[i] for i in missing], dtype=np.uint64), array)
        nearest = np.argmin(distances, axis=1)
        for row, position in enumerate(missing):
            if distances[row, nearest[row]] <= self.config.hamming:
                key = stored[nearest[row]]
                self._entries.move_to_end(key)
                found[position] = self._entries[key]

    def _store(self, key, entry):
        entries = self._entries
        if key in entries:
            return
        entries[key] = entry
        self._bytes += entry[0].nbytes + ENTRY_OVERHEAD_BYTES
        self._hash_cache = None
        evicted = 0
        while len(entries) > self.config.max_entries or (
                self._bytes > self.config.max_bytes and len(entries) > 1):
            _, old = entries.popitem(last=False)
            self._bytes -= old[0].nbytes + ENTRY_OVERHEAD_BYTES
            evicted += 1
        if self._bytes > self.config.max_bytes:  # one entry larger than the whole budget
            _, old = entries.popitem(last=False)
            self._bytes -= old[0].nbytes + ENTRY_OVERHEAD_BYTES
            evicted += 1
        if evicted:
            self._counters["memo_evictions"] += evicted

    # -- counters ------------------------------------------------------------------------------
    def _counter_names(self):
        return ("samples", "memo_hits", "memo_misses", "memo_batch_repeats", "memo_evictions")

    def stats(self):
        inner = self.inner.stats()
        stats = {("inner_" + key if key == "samples" else key): value
                 for key, value in inner.items()}
        with self._lock:
            stats.update(self._counters)
            stats["memo_entries"] = len(self._entries)
            stats["memo_bytes"] = self._bytes
        stats["memo_hit_rate"] = stats["memo_hits"] / stats["samples"] if stats["samples"] else 0.0
        return stats

    def __len__(self):
        return len(self._entries)

    def clear(self):
        """Forget every stored answer (counters stay)."""
        with self._lock:
            self._entries.clear()
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
            keys = list(self._entries.keys())
            values = list(self._entries.values())
        classes = values[0][0].shape[0] if values else 0
        probs = np.stack([v[0] for v in values]) if values else np.zeros((0, classes), np.float32)
        if self.config.mode == "exact":
            high = np.array([k >> 64 for k in keys], dtype=np.uint64)
            low = np.array([k & 0xFFFFFFFFFFFFFFFF for k in keys], dtype=np.uint64)
        else:
            high = np.zeros(len(keys), dtype=np.uint64)
            low = np.array(keys, dtype=np.uint64)
        buffer = io.BytesIO()
        np.savez(buffer, format=np.array(_FILE_FORMAT), identity=np.array(identity),
                 key_kind=np.array(self.config.key_kind()), key_high=high, key_low=low,
                 probs=probs, confidence=np.array([v[1] for v in values], dtype=np.float32))
        write_bytes_atomic(path, buffer.getvalue())
        return path

    def _load(self, path):
        """Fill the cache from ``path``; on any mismatch start empty and log why (no error)."""
        try:
            identity = self.inner.identity()
        except Exception as exc:  # noqa: BLE001 - engines without identity cannot be matched
            return self._start_empty(path, "the models have no identity ({})".format(exc))
        try:
            with np.load(path, allow_pickle=False) as archive:
                data = {name: archive[name] for name in archive.files}
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
        with self._lock:
            for i in range(len(low)):
                key = (int(high[i]) << 64) | int(low[i]) if self.config.mode == "exact" \
                    else int(low[i])
                self._store(key, (np.array(probs[i], dtype=np.float32), float(confidence[i])))
            self._counters["memo_evictions"] = 0
        return "loaded {} entries from {}".format(len(self._entries), path)

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
            if self.config.path:
                self.save()
        finally:
            Strategy.close(self)

    def __repr__(self):
        return "Memo({!r}, mode={})".format(self.inner, self.config.mode)
