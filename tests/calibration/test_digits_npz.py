"""The bundled digits ship as calibration/data/digits.npz and load with numpy alone."""
import os
import subprocess
import sys

import numpy as np
import pytest

from calibration import datasets
from tests.conftest import REPO_ROOT


def test_the_npz_equals_scikit_learns_digits():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    raw = sklearn_datasets.load_digits()
    images, labels = datasets.load_bundled_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert np.array_equal(images, raw.images) and np.array_equal(labels, raw.target)
    variant = datasets.load_digits_variant("digits")
    assert np.allclose(variant.images[:, 0], raw.images / 16.0)


def test_the_script_writes_the_same_file(tmp_path):
    pytest.importorskip("sklearn")
    sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))
    try:
        import make_digits_npz
    finally:
        sys.path.pop(0)
    out = str(tmp_path / "digits.npz")
    make_digits_npz.main(out)
    fresh, shipped = np.load(out), np.load(datasets.DIGITS_NPZ)
    for key in ("images", "labels"):
        assert np.array_equal(fresh[key], shipped[key])


def test_digits_load_without_scikit_learn():
    """In a fresh interpreter where importing sklearn or scipy fails, as on the device."""
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('sklearn', 'scipy'):\n"
            "            raise ImportError('blocked: ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "from calibration.datasets import load_digits_variant\n"
            "d = load_digits_variant('digits')\n"
            "print(len(d), d.images.shape[1:], sorted(set(d.labels.tolist())) == list(range(10)))\n"
            "print('sklearn' in sys.modules, 'scipy' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    assert out.returncode == 0, out.stdout
    assert out.stdout.split("\n")[:2] == ["1797 (1, 8, 8) True", "False False"]


def test_a_missing_npz_is_a_one_line_error(tmp_path):
    from basics.errors import InputError
    with pytest.raises(InputError, match="cannot be read"):
        datasets.load_bundled_digits(str(tmp_path / "none.npz"))
