"""The TEST DOUBLE itself is strict: misuse the real TensorRT / pycuda / cuda-python would punish
(silently or not) fails here, so the backend tests cannot pass against a lenient double."""
import sys

import numpy as np
import pytest

from tests.engines.trt_double import install_trt_double

pytest.importorskip("onnx")


def _network(trt, onnx_path, flags=None):
    logger = _logger(trt)
    builder = trt.Builder(logger)
    if flags is None:
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    return builder, network, parser, logger


def test_onnx_parser_needs_explicit_batch_on_8_2(monkeypatch, cnn_onnx):
    trt = install_trt_double(monkeypatch, "8.2").trt
    _, _, parser, _ = _network(trt, cnn_onnx, flags=0)
    assert not parser.parse_from_file(cnn_onnx)
    assert "explicit batch" in parser.get_error(0).desc()


def test_dynamic_network_without_profile_does_not_build(monkeypatch, cnn_onnx):
    trt = install_trt_double(monkeypatch, "10").trt
    builder, network, parser, logger = _network(trt, cnn_onnx)
    assert parser.parse_from_file(cnn_onnx)
    assert builder.build_serialized_network(network, builder.create_builder_config()) is None
    assert "no optimization profile" in logger.seen[-1]


def test_logger_subclass_must_call_the_base_init(monkeypatch):
    trt = install_trt_double(monkeypatch, "8.2").trt

    class Quiet(trt.ILogger):
        def __init__(self):  # forgets trt.ILogger.__init__(self)
            self.seen = []

        def log(self, severity, msg):
            self.seen.append(msg)

    with pytest.raises(TypeError, match="__init__\\(\\) must be called"):
        trt.Builder(Quiet())


def test_no_workspace_property_in_10_and_no_pool_in_8_2(monkeypatch):
    trt10 = install_trt_double(monkeypatch, "10").trt
    config = trt10.Builder(trt10.Logger()).create_builder_config()
    with pytest.raises(AttributeError):
        config.max_workspace_size = 1 << 20
    trt8 = install_trt_double(monkeypatch, "8.2").trt
    config8 = trt8.Builder(trt8.Logger()).create_builder_config()
    assert not hasattr(config8, "set_memory_pool_limit") and not hasattr(trt8, "MemoryPoolType")


def test_execution_needs_shapes_and_live_pointers(monkeypatch, cnn_onnx):
    from engines.build_config import BuildConfig
    from engines.tensorrt_build import build_tensorrt
    double = install_trt_double(monkeypatch, "10")
    trt, gpu = double.trt, double.gpu
    engine_bytes, _ = build_tensorrt(cnn_onnx, BuildConfig(max_batch=4))
    engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(engine_bytes)
    context = engine.create_execution_context()
    stream = gpu.new_stream().handle
    inputs, outputs = gpu.malloc(4 * 64 * 4), gpu.malloc(4 * 10 * 4)
    assert context.set_tensor_address("input", inputs)
    assert context.set_tensor_address("logits", outputs)
    assert context.execute_async_v3(stream) is False  # the input shape was never set
    assert not context.set_input_shape("input", (5, 1, 8, 8))  # outside the profile
    assert context.set_input_shape("input", (4, 1, 8, 8))
    assert not context.set_tensor_address("logits", 0x1234)  # not a device pointer
    gpu.free(outputs)
    small = gpu.malloc(4)
    assert context.set_tensor_address("logits", small)
    assert context.execute_async_v3(stream) is False  # 4 bytes cannot hold 4x10 floats


def test_results_arrive_only_after_synchronize(monkeypatch, cnn_onnx):
    from engines import cuda_memory
    from engines.build_config import BuildConfig
    from engines.tensorrt_backend import TensorRTEngine
    from engines.tensorrt_build import build_tensorrt
    install_trt_double(monkeypatch, "8.2")
    engine_bytes, _ = build_tensorrt(cnn_onnx, BuildConfig(max_batch=4))

    class NoSync(cuda_memory.PycudaMemory):
        def synchronize(self):  # a backend that forgot to wait for its stream
            pass

    with TensorRTEngine(engine_bytes, memory=NoSync()) as engine:
        out = engine.infer({"input": np.ones((2, 1, 8, 8), np.float32)})["logits"]
        assert not out.any()  # stale page-locked buffer: still zeros
    with TensorRTEngine(engine_bytes) as engine:
        assert engine.infer({"input": np.ones((2, 1, 8, 8), np.float32)})["logits"].any()


def test_pycuda_needs_a_current_context_and_pinned_memory(monkeypatch):
    driver = install_trt_double(monkeypatch, "8.2").cuda
    driver.init()
    with pytest.raises(driver.LogicError, match="no CUDA context is current"):
        driver.mem_alloc(16)
    context = driver.Device(0).retain_primary_context()
    context.push()
    try:
        allocation = driver.mem_alloc(16)
        stream = driver.Stream()
        with pytest.raises(driver.LogicError, match="not page-locked"):
            driver.memcpy_htod_async(allocation, np.zeros(4, np.float32), stream)
        with pytest.raises(driver.LogicError, match="overruns"):
            driver.memcpy_htod_async(allocation, driver.pagelocked_empty(8, np.float32), stream)
        allocation.free()
        with pytest.raises(driver.LogicError, match="still pushed"):
            context.detach()
    finally:
        driver.Context.pop()
    context.detach()
    with pytest.raises(driver.LogicError, match="detached"):
        context.push()


def test_cudart_returns_error_codes(monkeypatch):
    cudart = install_trt_double(monkeypatch, "10").cuda
    err, pointer = cudart.cudaMalloc(64)
    assert err == cudart.cudaError_t.cudaSuccess
    host = np.zeros(16, np.float32)
    (err,) = cudart.cudaMemcpy(pointer, host.ctypes.data, 64,
                               cudart.cudaMemcpyKind.cudaMemcpyHostToDevice)
    assert err == cudart.cudaError_t.cudaErrorInvalidValue  # host memory not registered
    assert cudart.cudaFree(pointer) == (cudart.cudaError_t.cudaSuccess,)
    assert cudart.cudaFree(pointer) == (cudart.cudaError_t.cudaErrorInvalidDevicePointer,)


def _logger(trt):
    class Recorder(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.seen = []

        def log(self, severity, msg):
            self.seen.append(msg)

    return Recorder()


def test_pycuda_autoinit_makes_and_pushes_a_context_on_first_use(monkeypatch):
    double = install_trt_double(monkeypatch, "8.2")
    import pycuda.autoinit
    import pycuda.driver as driver
    assert double.gpu.context_stack() == []
    context = pycuda.autoinit.context
    assert driver.Context.get_current() is context and pycuda.autoinit.device.name() == \
        "NVIDIA Tegra X1"
    driver.Context.pop()


@pytest.mark.parametrize("mode, fails", [("8.2", True), ("8.5", True), ("10", False)])
def test_nptype_fails_in_8x_under_numpy_without_np_bool(monkeypatch, mode, fails):
    trt = install_trt_double(monkeypatch, mode, numpy_has_bool=False).trt
    if fails:
        with pytest.raises(AttributeError, match="has no attribute 'bool'"):
            trt.nptype(trt.DataType.FLOAT)
    else:
        assert trt.nptype(trt.DataType.FLOAT) is np.float32


def test_an_exception_escaping_the_logger_aborts(monkeypatch, tmp_path):
    from tests.engines.trt_double import TensorRTAbort
    trt = install_trt_double(monkeypatch, "8.2").trt

    class Raising(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)

        def log(self, severity, msg):
            raise ValueError("bad format string")

    with pytest.raises(TensorRTAbort, match="ILogger|Raising.log"):
        trt.Runtime(Raising()).deserialize_cuda_engine(b"not an engine")


def test_pagelocked_arrays_have_their_allocation_as_base(monkeypatch):
    double = install_trt_double(monkeypatch, "8.2")
    driver = double.cuda
    driver.init()
    context = driver.Device(0).retain_primary_context()
    context.push()
    try:
        array = driver.pagelocked_empty((3, 4), np.float32)
        assert array.shape == (3, 4) and isinstance(array.base, driver.PagelockedHostAllocation)
        assert double.gpu.pinned
        array.base.free()
        assert not double.gpu.pinned
    finally:
        driver.Context.pop()
    context.detach()


def test_tensorrt_10_with_pycuda(monkeypatch, cnn_onnx):
    """TensorRT 10's tensor-name API over pycuda's primary context (JetPack 6 with pycuda)."""
    from engines.build_config import BuildConfig
    from engines.tensorrt_backend import TensorRTEngine
    from engines.tensorrt_build import build_tensorrt
    double = install_trt_double(monkeypatch, "10", cuda="pycuda")
    assert "pycuda.driver" in sys.modules and sys.modules["cuda.cudart"] is None
    engine_bytes, _ = build_tensorrt(cnn_onnx, BuildConfig(max_batch=4))
    with TensorRTEngine(engine_bytes) as engine:
        assert engine._memory.binding == "pycuda"
        assert engine.infer({"input": np.zeros((4, 1, 8, 8), np.float32)})["logits"].shape == (4, 10)
    assert double.gpu.live_allocations() == 0 and not double.gpu.pinned
