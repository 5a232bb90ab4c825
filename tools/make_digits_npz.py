"""Write calibration/data/digits.npz, the bundled digits the device loads without scikit-learn.

Run once on a host with scikit-learn (``python tools/make_digits_npz.py``); the file is package
data. It holds scikit-learn's ``load_digits()`` exactly: ``images`` uint8 (1797, 8, 8), values
0..16, and ``labels`` uint8 (1797,); tests/calibration/test_digits_npz.py checks it still equals
scikit-learn's.
"""
import io
import os
import sys

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "calibration",
                   "data", "digits.npz")


def digits_arrays():
    """``(images, labels)`` of scikit-learn's bundled digits, as uint8."""
    from sklearn.datasets import load_digits
    raw = load_digits()
    images = raw.images.astype(np.uint8)
    if not np.array_equal(images, raw.images):
        raise ValueError("scikit-learn's digits are not integers 0..16 any more")
    return images, raw.target.astype(np.uint8)


def npz_bytes(images, labels):
    """The compressed .npz of the two arrays (deterministic bytes for the same arrays)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images, labels=labels)
    return buffer.getvalue()


def main(out=OUT):
    images, labels = digits_arrays()
    data = npz_bytes(images, labels)
    with open(out, "wb") as handle:
        handle.write(data)
    print("wrote {} ({} bytes, {} images)".format(out, len(data), len(images)))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
