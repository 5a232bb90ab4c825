"""The strategy registry: a strategy declared in one module (here, this test module) is usable in
a spec -- parsed, validated, built, described, estimated and written back -- without an edit
anywhere else."""
import numpy as np
import pytest

from basics.errors import InputError, InternalError
from tests.toolkit.strategies.conftest import linear_image_onnx
from toolkit.strategies import Single, registry
from toolkit.strategies.base import ClassifyResult, Strategy, as_strategy


class Average(Strategy):
    """A toy strategy: the mean of two parts' probabilities (an ensemble of two)."""

    kind = "average"

    def __init__(self, a, b, weight=0.5):
        self.a, self.b, self.weight = as_strategy(a), as_strategy(b), float(weight)
        self._init_strategy(self.a.inputs[0].shape, self.a.num_classes)

    def _classify(self, images):
        probs = (self.weight * self.a.classify(images).probs
                 + (1.0 - self.weight) * self.b.classify(images).probs)
        with self._lock:
            self._counters["samples"] += len(images)
        return ClassifyResult(probs.argmax(axis=1).astype(np.int64), probs, probs.max(axis=1))

    def children(self):
        return (self.a, self.b)


class AverageType(registry.StrategyType):
    """``{type: average, a: NAME, b: NAME, weight: W}``."""

    name = "average"
    strategy_class = Average
    description = "the weighted mean of two parts' probabilities"
    keys = ("a", "b", "weight")
    part_keys = ("a", "b")
    entry_keys = ("a", "b")
    answer_keys = ("a", "b")

    def parse(self, data, read):
        weight = read.get("weight", 0.5)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or \
                not 0.0 <= weight <= 1.0:
            raise read.fail("weight must be a number in [0, 1], got {!r}".format(weight))
        return {"a": read.part("a"), "b": read.part("b"), "weight": float(weight)}

    def build(self, node, parts, context):
        return Average(parts["a"], parts["b"], node.values["weight"])

    def describe(self, node, parts):
        return "average({}, {}, weight {:g})".format(parts["a"], parts["b"], node.values["weight"])

    def energy(self, strategy, expected):
        a, a_text = expected(strategy.a)
        b, b_text = expected(strategy.b)
        return a + b, "{} + {}".format(a_text, b_text)


@pytest.fixture
def average_type():
    registry.register_strategy(AverageType)
    yield registry.strategy_type("average")
    registry.unregister_strategy("average")


@pytest.fixture
def folder(tmp_path):
    rng = np.random.RandomState(0)
    for name in ("a", "b"):
        with open(str(tmp_path / (name + ".onnx")), "wb") as handle:
            handle.write(linear_image_onnx(rng.randn(64, 10).astype(np.float32)))
    return tmp_path


SPEC = """
engines: {a: a.onnx, b: b.onnx}
strategy: {type: average, a: a, b: b, weight: 0.25}
memo: exact
"""


def _write(folder, text):
    path = folder / "average.yaml"
    path.write_text(text)
    return str(path)


def test_a_strategy_declared_in_a_test_module_runs_through_a_spec(average_type, folder,
                                                                  digits_splits):
    from engines.load import load_engine
    from toolkit.deployment import load_spec
    from toolkit.running import run_deployment
    test = digits_splits[2]
    with load_spec(_write(folder, SPEC)) as deployment:
        assert isinstance(deployment.strategy.inner, Average)
        assert deployment.describe() == "average(a, b, weight 0.25) + memo (xxh3_128)"
        report = run_deployment(deployment, test, batch_size=64)
        assert deployment.spec.to_dict()["strategy"] == {"type": "average", "a": "a", "b": "b",
                                                         "weight": 0.25}
    a, b = load_engine(str(folder / "a.onnx")), load_engine(str(folder / "b.onnx"))
    probs = 0.25 * Single(a).classify(test.images).probs + 0.75 * Single(b).classify(
        test.images).probs
    np.testing.assert_array_equal(report.labels, probs.argmax(axis=1))
    assert report.strategy.startswith("average(")


def test_its_energy_formula_is_used(average_type, folder, digits_splits):
    pytest.importorskip("onnx")
    from toolkit.deployment import load_spec
    from toolkit.energy_estimate import estimate_deployment
    from toolkit.running import run_deployment
    with load_spec(_write(folder, SPEC.replace("memo: exact\n", ""))) as deployment:
        run_deployment(deployment, digits_splits[2])
        estimate = estimate_deployment(deployment)
    assert estimate.formula == "E(a) + E(b)"
    assert estimate.value == pytest.approx(estimate.models["a"] + estimate.models["b"])


def test_its_validation_and_the_generic_checks_apply(average_type, folder):
    from toolkit.deployment import load_spec
    with pytest.raises(InputError, match="strategy: weight must be a number in"):
        load_spec(_write(folder, SPEC.replace("0.25", "2")))
    with pytest.raises(InputError, match=r"unknown key\(s\) in strategy \(average\): colour"):
        load_spec(_write(folder, SPEC.replace("weight: 0.25", "colour: red")))
    with pytest.raises(InputError, match=r"strategy \(average\) needs 'b'"):
        load_spec(_write(folder, SPEC.replace("a: a, b: b", "a: a")))


def test_it_is_written_back_through_write_spec(average_type, folder):
    from toolkit.deployment import load_spec
    from toolkit.spec_writing import write_spec
    path = str(folder / "written.yaml")
    write_spec(path, {"engines": {"a": "a.onnx", "b": "b.onnx"},
                      "strategy": {"type": "average", "a": "a", "b": {"type": "single",
                                                                      "engine": "b"}}})
    with load_spec(path) as deployment:
        assert deployment.describe() == "average(a, single(b), weight 0.5)"


def test_unregistered_types_are_refused_and_listed(folder):
    from toolkit.deployment import load_spec
    assert registry.spec_types() == ("single", "cascade", "convert")
    with pytest.raises(InputError, match="unknown strategy type 'average'; use one of single, "
                                         "cascade, convert"):
        load_spec(_write(folder, SPEC))


def test_a_declaration_must_be_consistent():
    class Broken(AverageType):
        name = "broken"
        part_keys = ("a", "c")

    with pytest.raises(InternalError, match="must be among its keys"):
        registry.register_strategy(Broken)

    class Twice(AverageType):
        name = "single"

    with pytest.raises(InternalError, match="registered twice"):
        registry.register_strategy(Twice)
    assert registry.strategy_type("single").strategy_class is Single


def test_every_built_in_strategy_declares_an_energy_formula():
    from toolkit.strategies import Cascade, Convert, Memo
    for cls in (Single, Cascade, Convert, Memo):
        declaration = registry.declaration_for(object.__new__(cls))
        assert declaration is not None and declaration.strategy_class is cls
        assert type(declaration).energy is not registry.StrategyType.energy, cls
