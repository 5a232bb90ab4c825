"""calibration.datasets.hard_redraws: more digits-hard draws of one split's base digits."""
import numpy as np
import pytest

from basics.errors import InputError
from calibration.datasets import hard_redraws, harden, load_dataset


def _corr(a, b):
    a = a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(axis=1, keepdims=True)
    b = b.reshape(len(b), -1) - b.reshape(len(b), -1).mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


@pytest.mark.parametrize("part", ["val", "test"])
def test_redraws_are_new_draws_of_the_same_base_digits(part):
    pytest.importorskip("scipy")  # digits16 / digits-hard (not on the device)
    original = load_dataset("digits-hard:" + part)
    base = load_dataset("digits16:" + part)
    draws = hard_redraws(part, 2)
    assert [d.name for d in draws] == ["digits-hard:{}:redraw1".format(part),
                                       "digits-hard:{}:redraw2".format(part)]
    for k, draw in enumerate(draws, 1):
        assert draw.images.shape == original.images.shape and draw.images.dtype == np.float32
        np.testing.assert_array_equal(draw.labels, original.labels)
        np.testing.assert_array_equal(draw.images, harden(base.images, seed=1000 + k))
        assert 0.0 <= draw.images.min() and draw.images.max() <= 1.0
        # a new random transform: not the split's own draw, not the other redraw ...
        assert not np.allclose(draw.images, original.images)
        # ... of the same digit: sample i looks more like base digit i than like another one
        same = _corr(draw.images, base.images)
        other = _corr(draw.images, np.roll(base.images, 1, axis=0))
        assert np.median(same) > np.median(other) + 0.1
        # ... and as hard as the split's own draw (same transform ranges)
        assert abs(np.median(same) - np.median(_corr(original.images, base.images))) < 0.03
    assert not np.allclose(draws[0].images, draws[1].images)
    again = hard_redraws(part, 1)[0]  # deterministic
    np.testing.assert_array_equal(again.images, draws[0].images)


def test_no_redraws_and_bad_arguments():
    assert hard_redraws("val", 0) == []
    with pytest.raises(InputError, match="unknown split 'dev'"):
        hard_redraws("dev", 1)
    with pytest.raises(InputError, match="must be >= 0"):
        hard_redraws("test", -1)
