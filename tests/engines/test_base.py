"""The Engine interface: feed checks (fast path and full check), TensorSpec, parse_shape."""
import numpy as np
import pytest

from basics.errors import InputError
from engines.base import Engine, TensorSpec, parse_shape


class Doubler(Engine):
    """A pure-numpy engine: output = 2 * input."""

    def __init__(self, shape=(-1, 1, 4, 4), dtype=np.float32, max_batch=8, min_batch=1):
        self.inputs = (TensorSpec("input", shape, dtype),)
        self.outputs = (TensorSpec("out", shape, dtype),)
        self.max_batch = max_batch
        self.min_batch = min_batch
        self.closed = 0

    def _run(self, feeds):
        return {"out": feeds["input"] * 2}

    def close(self):
        self.closed += 1


class TwoInputs(Doubler):
    def __init__(self):
        super().__init__()
        self.inputs = (TensorSpec("a", (-1, 3), np.float32), TensorSpec("b", (-1, 2), np.int64))

    def _run(self, feeds):
        return {"out": feeds["a"]}


def _x(batch=2, dtype=np.float32, shape=(1, 4, 4)):
    return np.ones((batch,) + shape, dtype=dtype)


def test_infer_accepts_any_batch_within_the_profile():
    engine = Doubler(max_batch=8)
    for batch in (1, 3, 8):
        out = engine.infer({"input": _x(batch)})
        assert out["out"].shape == (batch, 1, 4, 4)
        np.testing.assert_array_equal(out["out"], 2.0)


@pytest.mark.parametrize("feeds, message", [
    ({"wrong": _x()}, "engine inputs are ['input'], got ['wrong']"),
    ({"input": _x(), "extra": _x()}, "got ['extra', 'input']"),
    ({"input": _x(dtype=np.float64)}, "input 'input' must be float32, got float64"),
    ({"input": _x(shape=(1, 4, 5))}, "must have shape Nx1x4x4, got 2x1x4x5"),
    ({"input": np.ones((2, 16), np.float32)}, "must have shape Nx1x4x4, got 2x16"),
    ({"input": _x(9)}, "batch 9 is above the engine's maximum batch 8"),
    ({"input": _x(0)}, "empty batch"),
    ({"input": [[1.0]]}, "must be a numpy array, got list"),
])
def test_bad_feeds_are_one_line_input_errors(feeds, message):
    with pytest.raises(InputError) as info:
        Doubler().infer(feeds)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_feeds_must_be_a_dict():
    with pytest.raises(InputError, match="feeds must be a dict"):
        Doubler().infer([_x()])


def test_batch_below_the_profile_minimum():
    engine = Doubler(min_batch=4)
    with pytest.raises(InputError, match="batch 2 is below the engine's minimum batch 4"):
        engine.infer({"input": _x(2)})
    assert engine.infer({"input": _x(4)})["out"].shape[0] == 4


def test_check_follows_changes_of_the_batch_bounds_and_inputs():
    engine = Doubler(max_batch=8)
    engine.infer({"input": _x(8)})
    engine.max_batch = 4
    with pytest.raises(InputError, match="maximum batch 4"):
        engine.infer({"input": _x(8)})
    engine.max_batch = None  # no limit
    engine.infer({"input": _x(50)})
    engine.inputs = (TensorSpec("input", (-1, 2), np.float32),)
    with pytest.raises(InputError, match="must have shape Nx2"):
        engine.infer({"input": _x(2)})


def test_equal_but_not_identical_dtype_takes_the_full_check_and_passes():
    engine = Doubler()
    array = _x().view(np.dtype(np.float32).newbyteorder("="))
    engine.infer({"input": array})
    big_endian = _x().astype(np.dtype(np.float32).newbyteorder(">"))
    with pytest.raises(InputError, match="must be float32"):
        engine.infer({"input": big_endian})


def test_fixed_batch_and_multiple_inputs_use_the_full_check():
    fixed = Doubler(shape=(2, 1, 4, 4), max_batch=None)
    fixed.infer({"input": _x(2)})
    with pytest.raises(InputError, match="must have shape 2x1x4x4, got 3x1x4x4"):
        fixed.infer({"input": _x(3)})
    two = TwoInputs()
    two.infer({"a": np.zeros((2, 3), np.float32), "b": np.zeros((2, 2), np.int64)})
    with pytest.raises(InputError, match="disagree on the batch size: 2 vs 3"):
        two.infer({"a": np.zeros((2, 3), np.float32), "b": np.zeros((3, 2), np.int64)})


def test_input_property_and_context_manager():
    with Doubler() as engine:
        assert engine.input.name == "input"
    assert engine.closed == 1
    with pytest.raises(InputError, match="has 2 inputs"):
        TwoInputs().input
    assert Engine.metadata is None


def test_tensor_spec_round_trip_equality_and_hash():
    spec = TensorSpec("x", [-1, 3], "float16")
    assert TensorSpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict() == {"name": "x", "shape": [-1, 3], "dtype": "float16"}
    assert spec != TensorSpec("x", [-1, 3], "float32")
    assert len({spec, TensorSpec("x", (-1, 3), np.float16)}) == 1


@pytest.mark.parametrize("text, dims", [("1x3x32x32", (1, 3, 32, 32)), ("4,8", (4, 8)), ("7", (7,))])
def test_parse_shape(text, dims):
    assert parse_shape(text) == dims


@pytest.mark.parametrize("text", ["", "1xax3", "0x3", "-1x4"])
def test_parse_shape_rejects_bad_text(text):
    with pytest.raises(InputError, match="shape must look like"):
        parse_shape(text)
