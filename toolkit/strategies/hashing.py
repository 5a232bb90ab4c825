"""Keys for the memo: exact 128-bit xxh3 hashes and the perceptual 64-bit difference hash (dHash).

- :func:`exact_keys`: xxh3_128 of each sample's raw bytes, seeded by its dtype and shape, as its
  16-byte digest (big-endian: ``int.from_bytes(key, "big")`` is xxh3_128's integer), so the
  same bytes with another dtype/shape never collide by construction.
- :func:`encoded_key`: xxh3_128 of encoded file bytes (a different seed: its own key space).
- :func:`dhash`: grayscale (channel mean), resample to 8 rows x 9 columns (area-weighted triangle
  filter, like PIL's antialiased bilinear), one bit per horizontal neighbour pair (right brighter
  than left by more than 1e-9) = 64 bits. With ``invariant`` the key is the minimum over the hashes of the 8 dihedral
  transforms (rotations by 90 degrees, mirrored or not), so rotated/flipped copies share a key.
  Different images can share a dHash (a false hit): the tests measure how often on digits.
"""
import itertools

import numpy as np

from basics.lazy import lazy_import

_ENCODED_SEED = 0x6A09E667F3BCC908  # any fixed 64-bit value distinct from array seeds
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _xxhash():
    return lazy_import("xxhash", "hashing inputs for the memo")


_SEEDS = {}  # (dtype, sample shape) -> seed
# [xxh3_128_digest] once xxhash is imported (the hot path skips the import call). 16-byte keys:
# hashing, dict lookups and LRU touches all measured faster with bytes than with 128-bit ints
_DIGEST = []


def _digest128():
    if not _DIGEST:
        _DIGEST.append(_xxhash().xxh3_128_digest)
    return _DIGEST[0]


def _seed(dtype, tail):
    """The seed of samples of ``dtype`` and shape ``tail``: xxh3_64 of ``"<dtype>|<shape>"``."""
    seed = _SEEDS.get((dtype, tail))
    if seed is None:
        if len(_SEEDS) > 256:
            _SEEDS.clear()
        header = "{}|{}".format(dtype.str, "x".join(str(d) for d in tail))
        seed = _SEEDS[(dtype, tail)] = _xxhash().xxh3_64_intdigest(header.encode("ascii"))
    return seed


def exact_keys(images):
    """A 16-byte key per sample of ``images`` (N, ...): xxh3_128 of its bytes, dtype and shape."""
    digest = _DIGEST[0] if _DIGEST else _digest128()
    images = np.ascontiguousarray(images)
    seed = _seed(images.dtype, images.shape[1:])
    count = len(images)
    if not count:
        return []
    # each sample's bytes as one opaque item (a void dtype of the sample's size): tolist() gives
    # the bytes objects in one C call, and map() hashes them in C, without a Python loop
    step = images.nbytes // count
    if not step:
        return [digest(b"", seed)] * count
    samples = images.reshape(count, -1).view(np.uint8).view(_void(step)).reshape(count)
    return list(map(digest, samples.tolist(), itertools.repeat(seed, count)))


def exact_key_one(images):
    """:func:`exact_keys` of a C-contiguous batch of one sample, as one key: the array's own
    buffer is hashed (no copy, no per-sample objects)."""
    digest = _DIGEST[0] if _DIGEST else _digest128()
    return digest(images, _seed(images.dtype, images.shape[1:]))


def exact_keyer_one(dtype, shape):
    """``(digest, seed)`` for samples of ``dtype`` and batch shape ``shape`` (N, ...):
    ``digest(batch_of_one, seed) == exact_key_one(batch_of_one)``, for a caller that hashes many
    batches of one of the same shape."""
    return (_DIGEST[0] if _DIGEST else _digest128()), _seed(np.dtype(dtype), tuple(shape[1:]))


_VOIDS = {}  # sample size in bytes -> the void dtype of that size


def _void(size):
    dtype = _VOIDS.get(size)
    if dtype is None:
        if len(_VOIDS) > 64:
            _VOIDS.clear()
        dtype = _VOIDS[size] = np.dtype((np.void, size))
    return dtype


def encoded_key(blob):
    """The 16-byte xxh3_128 key of one encoded sample (file bytes or any contiguous buffer)."""
    return (_DIGEST[0] if _DIGEST else _digest128())(blob, _ENCODED_SEED)


_MATRICES = {}
_TIE_EPS = 1e-9


def _resample_matrix(size_in, size_out):
    """(size_out, size_in) weights of a triangle filter widened to the scale when shrinking."""
    key = (int(size_in), int(size_out))
    matrix = _MATRICES.get(key)
    if matrix is None:
        matrix = _MATRICES[key] = _triangle_weights(*key)
    return matrix


def _triangle_weights(size_in, size_out):
    scale = float(size_in) / size_out
    support = max(scale, 1.0)
    centers = (np.arange(size_out) + 0.5) * scale
    positions = np.arange(size_in) + 0.5
    weights = np.maximum(0.0, 1.0 - np.abs(positions[None, :] - centers[:, None]) / support)
    return weights / weights.sum(axis=1, keepdims=True)


def _thumbnails(gray):
    """Grayscale images (N, H, W) resampled to (N, 8, 9) with two plain 2-D BLAS products for the
    whole batch: (N*H, W) x (W, 9), then (8, H) x (H, N*9)."""
    count, height, width = gray.shape
    rows = _resample_matrix(height, 8)
    cols = _resample_matrix(width, 9)
    narrow = np.dot(np.ascontiguousarray(gray).reshape(count * height, width), cols.T)
    narrow = narrow.reshape(count, height, 9).transpose(1, 0, 2).reshape(height, count * 9)
    return np.dot(rows, narrow).reshape(8, count, 9).transpose(1, 0, 2)


def _hash_thumbnails(small):
    """(N, 8, 9) thumbnails -> uint64 (N,): bit = right neighbour brighter (by more than a hair:
    ties stay 0 despite summation-order noise, so an image hashes the same anywhere in a batch)."""
    bits = (small[:, :, 1:] - small[:, :, :-1]) > _TIE_EPS  # (N, 8, 8)
    packed = np.packbits(bits.reshape(len(small), 64), axis=1)  # (N, 8) uint8, big-endian bits
    return packed.view(">u8").reshape(-1).astype(np.uint64)


def dhash(images, invariant=False):
    """64-bit difference hashes of float images (N, C, H, W) as uint64 (N,)."""
    images = np.asarray(images, dtype=np.float64)
    gray = images.mean(axis=1) if images.ndim == 4 else images
    if not invariant:
        return _hash_thumbnails(_thumbnails(gray))
    count = len(gray)
    if gray.shape[1] == gray.shape[2]:
        # square: the 8 dihedral copies are the 4 flips of the image and of its transpose, and
        # resampling commutes with flips, so 2 thumbnails and their flips give all 8 hashes
        small = _thumbnails(np.concatenate([gray, gray.transpose(0, 2, 1)]))
        flips = np.concatenate([small, small[:, :, ::-1], small[:, ::-1, :], small[:, ::-1, ::-1]])
        return _hash_thumbnails(flips).reshape(8, count).min(axis=0)
    copies = [np.rot90(mirrored, turns, axes=(1, 2))
              for mirrored in (gray, gray[:, :, ::-1]) for turns in range(4)]
    hashes = np.empty((8, count), dtype=np.uint64)
    for shape in sorted({c.shape for c in copies}):
        index = [i for i, c in enumerate(copies) if c.shape == shape]
        stacked = np.concatenate([copies[i] for i in index])
        hashes[index] = _hash_thumbnails(_thumbnails(stacked)).reshape(len(index), count)
    return hashes.min(axis=0)


_FUSED = {}


def _fused_matrix(height, width):
    """(H*W, 64) float64: the linear map from a grayscale image (flattened) to its 64 dHash
    neighbour differences (right minus left on the 8 x 9 thumbnail): :func:`_thumbnails` and the
    differences applied to each basis image, once per shape."""
    key = (int(height), int(width))
    matrix = _FUSED.get(key)
    if matrix is None:
        if len(_FUSED) > 16:
            _FUSED.clear()
        basis = np.eye(height * width).reshape(height * width, height, width)
        small = _thumbnails(basis)
        matrix = (small[:, :, 1:] - small[:, :, :-1]).reshape(height * width, 64)
        matrix = _FUSED[key] = np.ascontiguousarray(matrix)
    return matrix


def dhash_one(images):
    """:func:`dhash` (not invariant) of a batch of one image (1, C, H, W) as a Python int: one
    product of the image with the fused thumbnail-and-difference matrix. The differences equal
    the two-step ones to rounding (~1e-16), far below the 1e-9 tie margin, so the bits agree."""
    image = images[0]
    if image.ndim == 3:
        channels, height, width = image.shape
        if channels == 1:
            gray = image.reshape(height * width).astype(np.float64)
        else:
            gray = image.astype(np.float64).mean(axis=0).reshape(height * width)
    else:
        height, width = image.shape
        gray = image.reshape(height * width).astype(np.float64)
    bits = np.dot(gray, _fused_matrix(height, width)) > _TIE_EPS
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a, b):
    """Bit distance between uint64 arrays ``a`` (N,) and ``b`` (M,) -> uint8/int (N, M)."""
    a = np.asarray(a, dtype=np.uint64).reshape(-1, 1)
    b = np.asarray(b, dtype=np.uint64).reshape(1, -1)
    xor = np.ascontiguousarray(a ^ b)
    return _POPCOUNT[xor.view(np.uint8)].reshape(xor.shape + (8,)).sum(axis=-1, dtype=np.int64)
