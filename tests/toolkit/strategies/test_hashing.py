import numpy as np
import pytest

from toolkit.strategies import Memo, MemoConfig, Single
from toolkit.strategies.hashing import (
    _resample_matrix,
    dhash,
    encoded_key,
    exact_keys,
    hamming,
)


def test_dhash_is_64_neighbour_bits_of_the_9x8_thumbnail():
    # a 9-column, 8-row image needs no resampling: bit (r, c) = pixel[r, c+1] > pixel[r, c]
    image = np.random.RandomState(0).rand(1, 1, 8, 9)
    bits = (image[0, 0, :, 1:] > image[0, 0, :, :-1]).reshape(-1)
    expected = int("".join("1" if b else "0" for b in bits), 2)
    assert int(dhash(image)[0]) == expected
    np.testing.assert_allclose(_resample_matrix(9, 9), np.eye(9))


@pytest.mark.parametrize("shape", [(1, 3, 12, 12), (2, 1, 8, 8), (3, 1, 10, 14)])
def test_invariant_dhash_is_the_same_for_all_eight_dihedral_copies(shape):
    image = np.random.RandomState(1).rand(*shape)
    copies = [np.rot90(m, k, axes=(2, 3)) for m in (image, image[:, :, :, ::-1]) for k in range(4)]
    hashes = {tuple(dhash(np.ascontiguousarray(c), invariant=True)) for c in copies}
    assert len(hashes) == 1
    assert len({tuple(dhash(np.ascontiguousarray(c))) for c in copies}) > 1
    # the minimum over the 8 plain hashes, computed one copy at a time
    plain = np.stack([dhash(np.ascontiguousarray(c)) for c in copies])
    np.testing.assert_array_equal(dhash(image, invariant=True), plain.min(axis=0))


def test_a_hash_does_not_depend_on_the_batch_it_is_in():
    pytest.importorskip("scipy")  # digits16 (not on the device)
    from calibration.datasets import load_digits_variant
    images = load_digits_variant("digits16").images[:300]
    for invariant in (False, True):
        whole = dhash(images, invariant)
        one_by_one = np.concatenate([dhash(images[i:i + 1], invariant) for i in range(300)])
        np.testing.assert_array_equal(whole, one_by_one)


def test_hamming_counts_differing_bits():
    a = np.array([0, 0xFF, 2 ** 64 - 1], dtype=np.uint64)
    np.testing.assert_array_equal(hamming(a, a[:2]), [[0, 8], [8, 0], [64, 56]])


def test_encoded_and_array_keys_live_in_separate_spaces():
    x = np.zeros((1, 4), np.uint8)
    assert encoded_key(x[0].tobytes()) not in exact_keys(x)
    assert encoded_key(b"abc") == encoded_key(bytearray(b"abc"))


def _false_hits(images, keys):
    """Images whose key equals an earlier, different image's key (a wrong memo hit)."""
    exact = exact_keys(images)
    first, false = {}, []
    for index, (key, identity) in enumerate(zip(keys, exact)):
        if key in first and first[key][0] != identity:
            false.append((first[key][1], index))
        first.setdefault(key, (identity, index))
    return false


@pytest.mark.parametrize("invariant", [False, True])
def test_dhash_false_hit_rate_on_digits_is_measured_and_the_memo_reports_it(
        small_cnn_onnx, ort_engine, invariant):
    """Report, don't hide: on the 8x8 digits, distinct images share a dHash. The memo in dhash
    mode then answers those images with another image's answer; this test measures how often and
    checks that the memo's hit count is exactly that number (the 8x8 digits have no duplicates)."""
    from calibration.datasets import load_digits_variant
    data = load_digits_variant("digits")
    keys = [int(k) for k in dhash(data.images, invariant=invariant)]
    false = _false_hits(data.images, keys)
    assert len(set(exact_keys(data.images))) == len(data)  # no real duplicates in digits
    wrong_label = sum(data.labels[a] != data.labels[b] for a, b in false)
    print("\ndHash{} on digits: {} of {} images ({:.2%}) falsely hit, {} with another label".format(
        " (invariant)" if invariant else "", len(false), len(data), len(false) / len(data),
        wrong_label))
    memo = Memo(Single(ort_engine(small_cnn_onnx)), MemoConfig(mode="dhash", invariant=invariant))
    memo.classify(data.images)
    assert memo.stats()["memo_hits"] == len(false)
    exact = Memo(Single(ort_engine(small_cnn_onnx)), MemoConfig(mode="exact"))
    exact.classify(data.images)
    assert exact.stats()["memo_hits"] == 0


@pytest.mark.parametrize("variant", ["digits", "digits16", "digits-hard"])
def test_dhash_of_one_image_equals_the_batch_hash(variant):
    if variant != "digits":
        pytest.importorskip("scipy")  # digits16 / digits-hard (not on the device)
    from calibration.datasets import load_digits_variant
    from toolkit.strategies.hashing import dhash, dhash_one
    images = load_digits_variant(variant).images[:400]
    expected = dhash(images).tolist()
    assert [dhash_one(images[i:i + 1]) for i in range(len(images))] == expected


def test_dhash_of_one_image_equals_the_batch_hash_on_colour_and_odd_shapes():
    from toolkit.strategies.hashing import dhash, dhash_one
    rng = np.random.RandomState(21)
    for shape in ((40, 3, 32, 32), (40, 1, 12, 20), (40, 2, 9, 9), (40, 7, 7)):
        images = rng.rand(*shape).astype(np.float32)
        images[:10] = np.round(images[:10] * 3) / 3  # flat areas: ties between neighbours
        assert [dhash_one(images[i:i + 1]) for i in range(40)] == dhash(images).tolist()
