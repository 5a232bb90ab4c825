"""benchmarks/int8.py: the model it times is the issue's size (at least 10 MMACs per image), and
its timing is interleaved."""
import pytest

from benchmarks import int8 as bench


def test_the_large_model_has_at_least_10_mmacs_and_the_digits_cnn_is_small_cnn():
    pytest.importorskip("torch")
    rows = dict((key, (factory, data)) for _, key, factory, data in bench._models())
    factory, data = rows["large_cnn"]
    assert data == "digits16" and bench.macs_per_image(factory(), (1, 16, 16)) >= 10e6
    factory, data = rows["small_cnn"]
    # SimpleCNN (16, 32) on 8x8: 1*16*9*64 + 16*32*9*16 + 32*10 MACs
    assert data == "digits" and bench.macs_per_image(factory(), (1, 8, 8)) == \
        16 * 9 * 64 + 16 * 32 * 9 * 16 + 32 * 10


def test_interleaved_timing_calls_each_engine_in_turn():
    calls = []

    class Engine(object):
        def __init__(self, name):
            self.name = name

        def infer(self, feeds):
            calls.append(self.name)

    a, b = Engine("a"), Engine("b")
    medians = bench.interleaved_ms([a, b], {}, rounds=4)
    assert len(medians) == 2 and all(m >= 0 for m in medians)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b", "b", "a"]
