"""The ONNX Runtime backend: loading from a path or bytes, providers, threads, outputs, errors.

Also home of the tiny hand-made ONNX models (``onnx.helper``, no torch) other engine tests use.
"""
import numpy as np
import pytest

from basics.errors import InputError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from engines.onnxruntime_backend import (  # noqa: E402
    OnnxRuntimeEngine,
    available_providers,
    resolve_providers,
)


def _save(graph, path, opset=13):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    onnx.save(model, str(path))
    return str(path)


def write_scale_model(path, batch="N", sample_shape=(1, 4, 4), scale=2.0, dtype=TensorProto.FLOAT):
    """input (batch, *sample_shape) -> input * scale -> 'out'."""
    shape = [batch] + list(sample_shape)
    factor = helper.make_tensor("scale", dtype, [], [scale])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["input", "scale"], ["out"])], "scale",
        [helper.make_tensor_value_info("input", dtype, shape)],
        [helper.make_tensor_value_info("out", dtype, shape)], [factor])
    return _save(graph, path)


def write_reshape_model(path):
    """input (N, 4) -> Reshape to (1, 4): runs at batch 1 only (a classic export bug)."""
    target = helper.make_tensor("target", TensorProto.INT64, [2], [1, 4])
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["input", "target"], ["out"])], "reshape",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])], [target])
    return _save(graph, path)


def write_qdq_model(path):
    """input (N, 4) -> QuantizeLinear -> DequantizeLinear -> 'out' (an INT8 Q/DQ model)."""
    scale = helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])
    zero = helper.make_tensor("z", TensorProto.INT8, [], [0])
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["input", "s", "z"], ["q"]),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["out"])], "qdq",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 4])], [scale, zero])
    return _save(graph, path)


def write_checker_failing_model(path):
    """Parses as ONNX, but a node reads a tensor nothing produces: onnx.checker rejects it."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["input", "nowhere"], ["out"])], "broken",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 4])])
    return _save(graph, path)


def test_loads_from_path_and_bytes_alike(tmp_path):
    path = write_scale_model(tmp_path / "m.onnx")
    x = np.arange(32, dtype=np.float32).reshape(2, 1, 4, 4)
    with OnnxRuntimeEngine(path) as from_path, OnnxRuntimeEngine(open(path, "rb").read()) as raw:
        for engine in (from_path, raw):
            assert [s.to_dict() for s in engine.inputs] == [
                {"name": "input", "shape": [-1, 1, 4, 4], "dtype": "float32"}]
            assert engine.outputs[0].name == "out"
            np.testing.assert_array_equal(engine.infer({"input": x})["out"], 2 * x)
            assert engine.providers == ["CPUExecutionProvider"]


def test_outputs_are_fresh_arrays(tmp_path):
    engine = OnnxRuntimeEngine(write_scale_model(tmp_path / "m.onnx"))
    x = np.ones((1, 1, 4, 4), np.float32)
    first = engine.infer({"input": x})["out"]
    second = engine.infer({"input": 3 * x})["out"]
    assert first is not second
    np.testing.assert_array_equal(first, 2.0)


def test_threads_and_batch_bounds(tmp_path):
    engine = OnnxRuntimeEngine(write_scale_model(tmp_path / "m.onnx"), threads=1, max_batch=2,
                               min_batch=1)
    assert engine.threads == 1
    with pytest.raises(InputError, match="above the engine's maximum batch 2"):
        engine.infer({"input": np.ones((3, 1, 4, 4), np.float32)})
    with pytest.raises(InputError, match="threads must be 0"):
        OnnxRuntimeEngine(write_scale_model(tmp_path / "m2.onnx"), threads=-1)


def test_closed_engine_and_identity(tmp_path):
    engine = OnnxRuntimeEngine(write_scale_model(tmp_path / "m.onnx"), identity="abc")
    assert engine.identity() == "abc"
    engine.close()
    engine.close()  # twice is fine
    with pytest.raises(InputError, match="closed"):
        engine.infer({"input": np.ones((1, 1, 4, 4), np.float32)})
    with pytest.raises(InputError, match="without an identity"):
        OnnxRuntimeEngine(write_scale_model(tmp_path / "m2.onnx")).identity()


def test_run_unchecked_still_fails_cleanly_on_bad_feeds(tmp_path):
    engine = OnnxRuntimeEngine(write_scale_model(tmp_path / "m.onnx"))
    with pytest.raises(InputError, match="onnxruntime failed to run the model"):
        engine.run_unchecked({"other": np.ones((1, 1, 4, 4), np.float32)})
    with pytest.raises(InputError, match="onnxruntime failed to run the model"):
        engine.run_unchecked({"input": np.ones((1, 1, 4, 5), np.float32)})


def test_model_that_fails_at_run_time_is_an_input_error(tmp_path, capfd):
    engine = OnnxRuntimeEngine(write_reshape_model(tmp_path / "r.onnx"))
    engine.infer({"input": np.ones((1, 4), np.float32)})
    with pytest.raises(InputError) as info:
        engine.infer({"input": np.ones((3, 4), np.float32)})
    assert "onnxruntime failed to run the model" in str(info.value)
    assert "\n" not in str(info.value)
    # ONNX Runtime's own logger stays quiet: no red "[E:onnxruntime ...]" line on top of ours
    assert "onnxruntime" not in capfd.readouterr().err


def test_unloadable_model_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="onnxruntime cannot load the model"):
        OnnxRuntimeEngine(b"not an onnx model")
    with pytest.raises(InputError, match="no such ONNX file"):
        OnnxRuntimeEngine(str(tmp_path / "missing.onnx"))


def test_providers():
    have = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert resolve_providers(None, have) == ["CPUExecutionProvider"]
    assert resolve_providers("cuda,cpu", have) == have
    assert resolve_providers(["auto"], have) == have
    assert resolve_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(InputError, match="lacks TensorrtExecutionProvider"):
        resolve_providers(["tensorrt"], have)
    assert "CPUExecutionProvider" in available_providers()


def test_missing_provider_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="onnxruntime here lacks"):
        OnnxRuntimeEngine(write_scale_model(tmp_path / "m.onnx"), providers=["nope"])


def test_private_run_is_feature_detected_with_the_public_run_as_fallback(tmp_path):
    from engines.onnxruntime_backend import _fast_run
    path = write_scale_model(tmp_path / "m.onnx")
    engine = OnnxRuntimeEngine(path)
    x = np.ones((2, 1, 4, 4), np.float32)
    expected = engine.infer({"input": x})["out"]

    class NoPrivate(object):  # an onnxruntime without the private C++ session
        def __init__(self, session):
            self.run = session.run
    public = NoPrivate(engine.session)
    assert _fast_run(public, ["CPUExecutionProvider"]) == public.run
    assert _fast_run(engine.session, ["CUDAExecutionProvider", "CPUExecutionProvider"]) == \
        engine.session.run
    # a private run whose arguments changed (TypeError): the engine switches to the public run
    calls = []

    def changed(*args):
        calls.append(args)
        raise TypeError("run(): incompatible function arguments")
    engine._session_run = changed
    np.testing.assert_array_equal(engine.infer({"input": x})["out"], expected)
    np.testing.assert_array_equal(engine.run_unchecked({"input": x})["out"], expected)
    assert len(calls) == 1 and engine._session_run == engine.session.run
    # the public run's own TypeError is not swallowed
    with pytest.raises(Exception):
        engine.run_unchecked({"input": [[1.0]]})


def test_the_private_run_gives_the_public_runs_answers(tmp_path):
    path = write_scale_model(tmp_path / "m.onnx")
    engine = OnnxRuntimeEngine(path)
    x = np.random.RandomState(0).rand(3, 1, 4, 4).astype(np.float32)
    assert engine._session_run != engine.session.run  # this onnxruntime has the private run
    np.testing.assert_array_equal(engine.infer({"input": x})["out"],
                                  engine.session.run(["out"], {"input": x})[0])
