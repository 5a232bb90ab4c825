import numpy as np
import pytest

from basics.errors import InputError
from export.parity import (
    ParityReport,
    Tolerance,
    compare,
    load_parity_inputs,
    random_batches,
    user_batches,
)


def test_compare_identical_and_within_bounds():
    ref = np.array([[1.0, -2.0, 0.0]], dtype=np.float32)
    result = compare(ref, ref.copy())
    assert result == {"max_abs_error": 0.0, "max_rel_error": 0.0, "passed": True}
    result = compare(ref, ref + 5e-5)
    assert result["passed"] and result["max_abs_error"] == pytest.approx(5e-5, rel=1e-3)


def test_compare_fails_beyond_absolute_bound():
    ref = np.zeros((2, 3), dtype=np.float32)
    got = ref.copy()
    got[1, 2] = 3e-4
    result = compare(ref, got)
    assert not result["passed"] and result["max_abs_error"] == pytest.approx(3e-4, rel=1e-3)
    assert result["max_rel_error"] == float("inf")  # an all-zero reference has no scale
    result = compare(np.array([2.0, 0.0]), np.array([2.0, 1e-5]))
    assert result["passed"] and result["max_rel_error"] == pytest.approx(5e-6)  # relative to max |ref|


def test_relative_bound_admits_large_values():
    ref = np.array([1000.0, 1.0])
    got = np.array([1000.05, 1.0])
    assert not compare(ref, got, Tolerance(atol=1e-4, rtol=0.0))["passed"]
    result = compare(ref, got, Tolerance(atol=1e-4, rtol=1e-4))
    assert result["passed"] and result["max_rel_error"] == pytest.approx(5e-5, rel=1e-3)


def test_nan_and_shape_handling():
    ref = np.array([np.nan, 1.0])
    both = compare(ref, np.array([np.nan, 1.0]))  # NaN == NaN proves nothing: it fails, named
    assert not both["passed"] and "NaN/Inf in the outputs: 1 from PyTorch, 1 from" in both["note"]
    inf = compare(np.array([np.inf, 1.0]), np.array([np.inf, 1.0]))
    assert not inf["passed"] and "NaN/Inf" in inf["note"]
    one_sided = compare(ref, np.array([0.0, 1.0]))
    assert not one_sided["passed"] and one_sided["max_abs_error"] == float("inf")
    mismatch = compare(np.zeros((2, 3)), np.zeros((3, 2)))
    assert not mismatch["passed"] and "shape" in mismatch["note"]
    assert compare(np.zeros((0, 3)), np.zeros((0, 3)))["passed"]


@pytest.mark.parametrize("atol, rtol", [(-1e-4, 0.0), (float("nan"), 0.0), ("1e-4", 0.0),
                                        (1e-4, float("inf")), (True, 0.0)])
def test_bad_tolerance(atol, rtol):
    with pytest.raises(InputError, match="tolerance must be a finite number"):
        Tolerance(atol, rtol)


def test_tolerance_coerce():
    assert Tolerance.coerce(None).atol == 1e-4
    assert Tolerance.coerce(1e-3).atol == 1e-3 and Tolerance.coerce(1e-3).rtol == 1e-4
    tol = Tolerance(0.0, 0.5)
    assert Tolerance.coerce(tol) is tol


def test_report_summary_and_failure_line():
    report = ParityReport(Tolerance())
    assert not report.passed  # nothing compared is no proof of parity
    report.add("random", 1, "logits", compare(np.ones(3), np.ones(3)))
    report.add("random", 3, "logits", compare(np.ones(3), np.ones(3) + 1e-2))
    assert not report.passed and report.max_abs_error == pytest.approx(1e-2)
    line = report.failure_text()
    assert "'logits'" in line and "batch 3" in line and "\n" not in line
    report.add("user.npz", 64, "logits", compare(np.ones(3), np.ones(3)))
    report.add("user.npz", 10, "logits", compare(np.ones(3), np.ones(3) + 1e-3))
    merged = report.checks[-1]
    assert (merged["samples"], merged["batch"], merged["passed"]) == (74, 64, False)
    assert merged["max_abs_error"] == pytest.approx(1e-3)
    assert any("74 samples" in row for row in report.lines())
    data = report.to_dict()
    assert data["atol"] == 1e-4 and len(data["checks"]) == 3 and data["passed"] is False
    assert any("MISMATCH" in row for row in report.lines())


def test_random_batches():
    dynamic = random_batches((1, 1, 4, 4), True)
    assert [a.shape[0] for _, a in dynamic] == [1, 3]
    assert all(a.dtype == np.float32 for _, a in dynamic)
    static = random_batches((2, 1, 4, 4), False, batches=(1, 3))
    assert [a.shape for _, a in static] == [(2, 1, 4, 4)]
    np.testing.assert_array_equal(random_batches((1, 4), True, seed=3)[0][1],
                                  random_batches((1, 4), True, seed=3)[0][1])


def test_user_batches_chunks_and_pads():
    images = np.arange(5 * 4, dtype=np.float32).reshape(5, 1, 2, 2)
    dynamic = user_batches(images, (1, 1, 2, 2), True)
    assert [a.shape[0] for _, a in dynamic] == [5]
    static = user_batches(images, (2, 1, 2, 2), False)
    assert [a.shape[0] for _, a in static] == [2, 2, 2]
    np.testing.assert_array_equal(static[-1][1][0], images[4])  # the last one padded with itself
    np.testing.assert_array_equal(static[-1][1][1], images[4])
    small = user_batches(images[:1], (4, 1, 2, 2), False)
    assert small[0][1].shape == (4, 1, 2, 2)


@pytest.mark.parametrize("images, words", [
    (np.zeros((3, 1, 4, 4), np.float32), "does not fit the model input"),
    (np.zeros((3, 2, 2), np.float32), "does not fit the model input"),
    (np.zeros((3, 1, 2, 2), np.int64), "must be float"),
    (np.zeros((0, 1, 2, 2), np.float32), "no samples"),
])
def test_user_batches_bad_inputs(images, words):
    with pytest.raises(InputError, match=words):
        user_batches(images, (1, 1, 2, 2), True)


def test_load_parity_inputs(tmp_path):
    images = np.ones((2, 1, 2, 2), np.float32)
    np.savez(str(tmp_path / "a.npz"), images=images)
    np.savez(str(tmp_path / "b.npz"), x=images * 2)
    np.save(str(tmp_path / "c.npy"), images * 3)
    assert load_parity_inputs(str(tmp_path / "a.npz")).sum() == 8
    assert load_parity_inputs(str(tmp_path / "b.npz")).sum() == 16
    assert load_parity_inputs(str(tmp_path / "c.npy")).sum() == 24


def test_load_parity_inputs_errors(tmp_path):
    with pytest.raises(InputError, match="no such parity input file"):
        load_parity_inputs(str(tmp_path / "none.npz"))
    np.savez(str(tmp_path / "wrong.npz"), labels=np.zeros(3))
    with pytest.raises(InputError, match="no 'images'"):
        load_parity_inputs(str(tmp_path / "wrong.npz"))
    (tmp_path / "junk.npz").write_bytes(b"garbage")
    with pytest.raises(InputError, match="not a readable"):
        load_parity_inputs(str(tmp_path / "junk.npz"))
