"""The TensorRT runtime (engines/tensorrt_backend.py, engines/cuda_memory.py) against the test
double of TensorRT 8.2 (binding API + pycuda), 8.5 (both APIs, no get_tensor_profile_shape) and
10.x (tensor names, with cuda-python or pycuda)."""
import sys

import numpy as np
import pytest

from basics.errors import EngineCompatibilityError, InputError, MissingDependencyError
from engines.build_config import BuildConfig
from engines.onnxruntime_backend import OnnxRuntimeEngine
from tests.engines.trt_double import install_trt_double

pytest.importorskip("onnx")

# (mode, CUDA binding, cuda-python module layout)
SETUPS = [("8.2", "pycuda", None), ("8.5", "pycuda", None), ("10", "cuda-python", "cudart"),
          ("10", "cuda-python", "bindings"), ("10", "pycuda", None)]


@pytest.fixture(params=SETUPS, ids=["trt8.2-pycuda", "trt8.5-pycuda", "trt10-cuda.cudart",
                                    "trt10-cuda.bindings", "trt10-pycuda"])
def double(request, monkeypatch):
    mode, cuda, layout = request.param
    return install_trt_double(monkeypatch, mode, cuda=cuda, cuda_layout=layout or "cudart")


def _build(onnx_path, **config):
    from engines.tensorrt_build import build_tensorrt
    config.setdefault("max_batch", 16)
    return build_tensorrt(onnx_path, BuildConfig(**config))


def _engine(onnx_path, **config):
    from engines.tensorrt_backend import TensorRTEngine
    engine_bytes, _ = _build(onnx_path, **config)
    return TensorRTEngine(engine_bytes, identity="sha-of-engine")


def test_outputs_match_onnxruntime_at_batches_1_5_and_max(double, cnn_onnx, digits_splits):
    images = digits_splits[2].images
    reference = OnnxRuntimeEngine(cnn_onnx)
    with _engine(cnn_onnx, max_batch=16, opt_batch=8) as engine:
        assert [s.to_dict() for s in engine.inputs] == [
            {"name": "input", "shape": [-1, 1, 8, 8], "dtype": "float32"}]
        assert engine.outputs[0].name == "logits" and engine.outputs[0].shape == (-1, 10)
        assert (engine.min_batch, engine.max_batch) == (1, 16)
        for batch in (1, 5, 16, 5):
            feeds = {"input": images[:batch]}
            got = engine.infer(feeds)["logits"]
            want = reference.infer(feeds)["logits"]
            assert got.shape == (batch, 10)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert double.gpu.counts["launch"] == 4 and double.gpu.counts["sync"] >= 4


def test_batch_above_the_profile_is_a_one_line_input_error(double, cnn_onnx):
    with _engine(cnn_onnx, max_batch=4) as engine:
        too_many = np.zeros((5, 1, 8, 8), np.float32)
        with pytest.raises(InputError, match="above the engine's maximum batch 4"):
            engine.infer({"input": too_many})
        # past the base class's check, TensorRT itself refuses the shape
        with pytest.raises(InputError, match=r"outside the engine's profile \(1, 1, 8, 8\) .. "
                                             r"\(4, 1, 8, 8\)"):
            engine.run_unchecked({"input": too_many})


def test_batch_below_the_profile_minimum(double, cnn_onnx):
    with _engine(cnn_onnx, min_batch=2, opt_batch=4, max_batch=4) as engine:
        assert engine.min_batch == 2
        with pytest.raises(InputError, match="below the engine's minimum batch 2"):
            engine.infer({"input": np.zeros((1, 1, 8, 8), np.float32)})
        assert engine.infer({"input": np.zeros((2, 1, 8, 8), np.float32)})["logits"].shape == (2, 10)


def test_bad_feeds_are_input_errors(double, cnn_onnx):
    with _engine(cnn_onnx) as engine:
        with pytest.raises(InputError, match="must be float32"):
            engine.infer({"input": np.zeros((1, 1, 8, 8), np.float64)})
        with pytest.raises(InputError, match="must have shape Nx1x8x8"):
            engine.infer({"input": np.zeros((1, 1, 8, 9), np.float32)})
        with pytest.raises(InputError, match="engine inputs are"):
            engine.infer({"image": np.zeros((1, 1, 8, 8), np.float32)})


def test_outputs_are_fresh_arrays(double, cnn_onnx, digits_splits):
    images = digits_splits[2].images
    with _engine(cnn_onnx) as engine:
        first = engine.infer({"input": images[:3]})["logits"]
        kept = first.copy()
        second = engine.infer({"input": images[3:6]})["logits"]
        assert not np.shares_memory(first, second)
        np.testing.assert_array_equal(first, kept)  # the second call did not overwrite it
        first[:] = 0
        again = engine.infer({"input": images[:3]})["logits"]
        np.testing.assert_array_equal(again, kept)


def test_buffers_are_allocated_once_and_freed_by_close(double, cnn_onnx):
    engine = _engine(cnn_onnx)
    allocated = double.gpu.counts["malloc"]
    # one device buffer per I/O tensor: input, logits and the confidence head's three outputs
    assert double.gpu.live_allocations() == 5
    for batch in (1, 7, 16):
        engine.infer({"input": np.zeros((batch, 1, 8, 8), np.float32)})
    assert double.gpu.counts["malloc"] == allocated
    engine.close()
    engine.close()  # safe twice
    assert double.gpu.live_allocations() == 0
    assert not double.gpu.pinned  # pycuda: PagelockedHostAllocation.free; cuda-python: unregister
    if double.cuda.__name__ != "pycuda.driver":  # cuda-python destroys its stream
        assert not double.gpu.streams
    with pytest.raises(InputError, match="closed"):
        engine.run_unchecked({"input": np.zeros((1, 1, 8, 8), np.float32)})


def test_pycuda_context_is_pushed_only_while_in_use(monkeypatch, cnn_onnx):
    double = install_trt_double(monkeypatch, "8.2")
    with _engine(cnn_onnx) as engine:
        engine.infer({"input": np.zeros((2, 1, 8, 8), np.float32)})
        assert double.gpu.context_stack() == []
    assert double.gpu.context_stack() == []


def test_identity(double, cnn_onnx):
    from engines.tensorrt_backend import TensorRTEngine
    engine_bytes, _ = _build(cnn_onnx)
    with TensorRTEngine(engine_bytes, identity="abc") as engine:
        assert engine.identity() == "abc"
    with TensorRTEngine(engine_bytes) as engine:
        with pytest.raises(InputError, match="without an identity"):
            engine.identity()


def test_garbage_bytes_are_an_engine_compatibility_error(double):
    from engines.tensorrt_backend import TensorRTEngine
    with pytest.raises(EngineCompatibilityError, match="cannot deserialize.*Magic tag"):
        TensorRTEngine(b"not an engine at all")
    assert double.gpu.live_allocations() == 0


def test_engine_of_another_tensorrt_version_is_refused(monkeypatch, cnn_onnx):
    from engines.tensorrt_backend import TensorRTEngine
    install_trt_double(monkeypatch, "10", version="10.3.0.30")
    engine_bytes, _ = _build(cnn_onnx)
    install_trt_double(monkeypatch, "10")
    with pytest.raises(EngineCompatibilityError, match="expecting library version 10.16.1.11 "
                                                       "got 10.3.0.30.*rebuild"):
        TensorRTEngine(engine_bytes)


def test_runtime_facts_and_availability(double):
    from engines.tensorrt_backend import runtime_facts, tensorrt_available
    facts = runtime_facts()
    expected = {"8.2": ("8.2.1.8", "NVIDIA Tegra X1", "5.3"), "8.5": ("8.5.2.2", "Xavier", "7.2"),
                "10": ("10.16.1.11", "Orin", "8.7")}
    assert (facts["tensorrt_version"], facts["gpu_name"], facts["compute_capability"]) == \
        expected[double.mode]
    assert tensorrt_available()


def test_unavailable_without_tensorrt_or_a_cuda_binding(monkeypatch):
    from engines import cuda_memory
    from engines.tensorrt_backend import tensorrt_available
    install_trt_double(monkeypatch, "8.2")
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    monkeypatch.setitem(sys.modules, "pycuda", None)
    assert cuda_memory.available_binding() is None
    assert not tensorrt_available()
    with pytest.raises(MissingDependencyError, match="neither pycuda nor cuda-python"):
        cuda_memory.open_cuda_memory()
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert not tensorrt_available()


def test_cuda_memory_rejects_unknown_binding(double):
    from engines import cuda_memory
    with pytest.raises(ValueError, match="unknown CUDA binding"):
        cuda_memory.open_cuda_memory("opencl")


def test_cuda_python_errors_are_checked(monkeypatch):
    from engines import cuda_memory
    double = install_trt_double(monkeypatch, "10")
    with cuda_memory.open_cuda_memory() as memory:
        assert memory.binding == "cuda-python"
        with pytest.raises(RuntimeError, match="cudaMemcpyAsync .* failed: cudaErrorInvalidValue"):
            memory.htod_async(0x1234, memory.host_buffer(4, np.float32))  # not a device pointer
    assert double.gpu.live_allocations() == 0 and not double.gpu.pinned


def test_tensorrt_8_5_reads_profiles_without_get_tensor_profile_shape(monkeypatch, cnn_onnx):
    """8.5 has the tensor-name API but not get_tensor_profile_shape: the backend's fallback
    (get_profile_shape(0, name)) runs, and the batch bounds come out right."""
    double = install_trt_double(monkeypatch, "8.5")
    assert not hasattr(double.trt.ICudaEngine, "get_tensor_profile_shape")
    with _engine(cnn_onnx, min_batch=2, max_batch=6) as engine:
        assert (engine.min_batch, engine.max_batch) == (2, 6)
        out = engine.infer({"input": np.zeros((3, 1, 8, 8), np.float32)})
        assert out["logits"].shape == (3, 10)


def test_data_types_map_without_trt_nptype_under_numpy_1_24(monkeypatch, cnn_onnx):
    """TensorRT 8.0 - 8.5's trt.nptype fails when numpy has no np.bool (1.24 - 1.26): the backend
    maps data types from their names instead."""
    double = install_trt_double(monkeypatch, "8.5", numpy_has_bool=False)
    with pytest.raises(AttributeError, match="np.bool"):
        double.trt.nptype(double.trt.DataType.FLOAT)
    with _engine(cnn_onnx) as engine:
        assert engine.inputs[0].dtype == np.float32
        engine.infer({"input": np.zeros((1, 1, 8, 8), np.float32)})


def test_numpy_dtype_maps_every_type_by_name_and_refuses_the_rest():
    from engines.tensorrt_backend import numpy_dtype
    named = lambda name: type("DataType", (), {"name": name})()  # noqa: E731
    for name, expected in (("FLOAT", np.float32), ("HALF", np.float16), ("INT8", np.int8),
                           ("INT32", np.int32), ("INT64", np.int64), ("BOOL", np.bool_),
                           ("UINT8", np.uint8)):
        assert numpy_dtype(named(name), "t") == np.dtype(expected)
    for name in ("BF16", "FP8", "INT4"):
        with pytest.raises(EngineCompatibilityError, match="{} which numpy cannot".format(name)):
            numpy_dtype(named(name), "tensor 'x'")


def test_buffers_of_a_non_primary_context_are_refused(monkeypatch, cnn_onnx):
    """TensorRT runs in the primary context: memory made under pycuda.autoinit (or make_context)
    is an illegal address there; the backend's own buffers (primary context) work."""
    double = install_trt_double(monkeypatch, "8.2")
    driver = sys.modules["pycuda.driver"]
    engine_bytes, _ = _build(cnn_onnx, max_batch=2)
    with _engine(cnn_onnx, max_batch=2) as engine:
        engine.infer({"input": np.zeros((2, 1, 8, 8), np.float32)})
    trt = double.trt
    runtime_engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(engine_bytes)
    context = runtime_engine.create_execution_context()
    autoinit = sys.modules["pycuda.autoinit"]
    autoinit.context  # noqa: B018 - pycuda.autoinit makes and pushes its own context
    try:
        inputs, outputs = driver.mem_alloc(2 * 64 * 4), driver.mem_alloc(2 * 10 * 4)
        stream = driver.Stream()
        assert context.set_binding_shape(0, (2, 1, 8, 8))
        assert context.execute_async_v2([int(inputs), int(outputs)], stream.handle) is False
    finally:
        driver.Context.pop()


def test_backend_auto_on_jetpack_5_1_with_numpy_1_24(monkeypatch, cnn_onnx, tmp_path):
    """TensorRT 8.5.2 + numpy 1.24 (trt.nptype broken): `auto` picks TensorRT, and it works."""
    from engines.build import build_engine, resolve_backend
    from engines.load import load_engine
    install_trt_double(monkeypatch, "8.5", numpy_has_bool=False)
    assert resolve_backend("auto").name == "tensorrt"
    out = str(tmp_path / "m.engine")
    sidecar = build_engine(cnn_onnx, out, BuildConfig(max_batch=4, backend="auto"))
    assert sidecar.backend == "tensorrt" and sidecar.tensorrt_version == "8.5.2.2"
    with load_engine(out) as engine:
        assert engine.infer({"input": np.zeros((4, 1, 8, 8), np.float32)})["logits"].shape == (4, 10)
