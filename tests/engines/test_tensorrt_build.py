"""Building TensorRT engines (engines/tensorrt_build.py) against the test double of TensorRT 8.2
and 10.x: profile, workspace, precision checks, INT8 with a calibration cache, parse errors."""
import os
import types

import numpy as np
import pytest

from basics.errors import EngineCompatibilityError, InputError
from engines.build_config import BuildConfig
from tests.engines.trt_double import engine_header, install_trt_double

onnx = pytest.importorskip("onnx")

MODES = ("8.2", "8.5", "10")
# the flag that makes TensorRT obey layer.precision (the confidence head's FP32), per mode
OBEY = {"8.2": "STRICT_TYPES", "8.5": "OBEY_PRECISION_CONSTRAINTS",
        "10": "OBEY_PRECISION_CONSTRAINTS"}


@pytest.fixture(params=MODES, ids=["trt8.2", "trt8.5", "trt10"])
def mode(request):
    return request.param


def _build(onnx_path, trt=None, calibrator=None, **config):
    from engines.tensorrt_build import build_tensorrt
    config.setdefault("max_batch", 8)
    return build_tensorrt(onnx_path, BuildConfig(**config), trt=trt, calibrator=calibrator)


def test_fp32_build_facts(monkeypatch, mode, cnn_onnx):
    install_trt_double(monkeypatch, mode)
    engine_bytes, facts = _build(cnn_onnx, min_batch=2, opt_batch=4, max_batch=8,
                                 workspace_mb=64)
    expected = {"8.2": ("8.2.1.8", "NVIDIA Tegra X1", "5.3"), "8.5": ("8.5.2.2", "Xavier", "7.2"),
                "10": ("10.16.1.11", "Orin", "8.7")}
    assert (facts["tensorrt_version"], facts["gpu_name"], facts["compute_capability"]) == \
        expected[mode]
    assert facts["platform_has_fast_fp16"] is True and facts["platform_has_fast_int8"] is True
    assert facts["inputs"] == [{"name": "input", "shape": [-1, 1, 8, 8], "dtype": "float32"}]
    # the confidence head by default; ArgMax's INT64 is INT32 on TensorRT 8.x (no INT64)
    assert facts["outputs"] == [
        {"name": "logits", "shape": [-1, 10], "dtype": "float32"},
        {"name": "probs", "shape": [-1, 10], "dtype": "float32"},
        {"name": "confidence", "shape": [-1], "dtype": "float32"},
        {"name": "label", "shape": [-1], "dtype": "int64" if mode == "10" else "int32"}]
    assert facts["profile"] == {"min_batch": 2, "opt_batch": 4, "max_batch": 8}
    header = engine_header(engine_bytes)
    assert header["profile"] == {"input": [[2, 1, 8, 8], [4, 1, 8, 8], [8, 1, 8, 8]]}
    assert header["workspace"] == 64 << 20  # max_workspace_size (8.2) / memory pool (10)
    assert header["flags"] == []


def test_fp16_sets_the_flag(monkeypatch, mode, cnn_onnx):
    install_trt_double(monkeypatch, mode)
    engine_bytes, _ = _build(cnn_onnx, precision="fp16")
    assert engine_header(engine_bytes)["flags"] == sorted(["FP16", OBEY[mode]])  # the head's FP32


def test_fp16_on_a_gpu_without_fast_fp16(monkeypatch, mode, cnn_onnx):
    install_trt_double(monkeypatch, mode, fast_fp16=False, fast_int8=False, gpu_name="Old GPU",
                       cc=(3, 7))
    with pytest.raises(InputError, match=r"this GPU \(Old GPU, compute capability 3.7\) has no "
                                         r"fast FP16; it supports fp32: build with --precision "
                                         r"fp32"):
        _build(cnn_onnx, precision="fp16")


def test_int8_on_a_nano_like_gpu_says_use_fp16(monkeypatch, cnn_onnx):
    install_trt_double(monkeypatch, "8.2", fast_int8=False)  # Tegra X1: FP16 yes, INT8 no
    with pytest.raises(InputError, match=r"NVIDIA Tegra X1, compute capability 5.3\) has no fast "
                                         r"INT8; it supports fp32, fp16: build with --precision "
                                         r"fp16"):
        _build(cnn_onnx, precision="int8", calibration_cache="unused.cache")


def test_int8_needs_a_cache_or_qdq(monkeypatch, mode, cnn_onnx):
    install_trt_double(monkeypatch, mode)
    with pytest.raises(InputError, match="needs a calibration cache .*`toolkit calibrate "
                                         "MODEL.onnx --data DATA -o FILE`.* has neither"):
        _build(cnn_onnx, precision="int8")


def test_int8_with_a_missing_or_bad_cache(monkeypatch, mode, cnn_onnx, tmp_path):
    install_trt_double(monkeypatch, mode)
    with pytest.raises(InputError, match="no such calibration cache"):
        _build(cnn_onnx, precision="int8", calibration_cache=str(tmp_path / "none.cache"))
    bad = tmp_path / "bad.cache"
    bad.write_bytes(b"hello\n")
    with pytest.raises(InputError, match="not a TensorRT calibration cache"):
        _build(cnn_onnx, precision="int8", calibration_cache=str(bad))


def test_int8_with_a_calibration_cache(monkeypatch, mode, cnn_onnx, digits_splits,
                                       tmp_path):
    from calibration.trt_calibrator import calibrate_to_cache
    double = install_trt_double(monkeypatch, mode)
    cache = str(tmp_path / "model.cache")
    calibrate_to_cache(cnn_onnx, digits_splits[0].images, cache, batch_size=16,
                       max_batches=4)
    sizes = (double.gpu.counts["htod"], double.gpu.live_allocations())
    engine_bytes, facts = _build(cnn_onnx, precision="int8", calibration_cache=cache)
    header = engine_header(engine_bytes)
    assert header["flags"] == sorted(["FP16", "INT8", OBEY[mode]])
    with open(cache) as handle:
        lines = handle.read().splitlines()
    assert header["int8_scales"] == dict(line.split(": ") for line in lines[1:])
    assert any("calibration cache model.cache (TRT-" in note for note in facts["notes"])
    assert (double.gpu.counts["htod"], double.gpu.live_allocations()) == sizes  # no data needed
    if mode == "10":
        assert any("deprecated from TensorRT 10.1" in note for note in facts["notes"])
    from engines.tensorrt_backend import TensorRTEngine
    with TensorRTEngine(engine_bytes) as engine:
        assert engine.infer({"input": digits_splits[2].images[:3]})["logits"].shape == (3, 10)


def test_cache_of_another_tensorrt_version_is_rejected(monkeypatch, cnn_onnx,
                                                       digits_splits, tmp_path):
    from calibration.trt_calibrator import calibrate_to_cache
    install_trt_double(monkeypatch, "8.2")
    cache = str(tmp_path / "nano.cache")
    calibrate_to_cache(cnn_onnx, digits_splits[0].images, cache, batch_size=8, max_batches=2)
    install_trt_double(monkeypatch, "10")
    with pytest.raises(InputError, match="TensorRT 10.16.1.11 rejected the calibration cache "
                                         ".*nano.cache .*calibrate again on this device"):
        _build(cnn_onnx, precision="int8", calibration_cache=cache)


def test_int8_from_qdq_nodes_needs_no_cache(monkeypatch, mode, tmp_path):
    install_trt_double(monkeypatch, mode)
    path = str(tmp_path / "qdq.onnx")
    _save_qdq_model(path)
    engine_bytes, facts = _build(path, precision="int8")
    assert "INT8" in engine_header(engine_bytes)["flags"]
    assert any("Q/DQ" in note for note in facts["notes"])


def test_parse_errors_list_the_parser_messages(monkeypatch, mode, tmp_path):
    install_trt_double(monkeypatch, mode)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07garbage")
    with pytest.raises(InputError, match="cannot parse .*garbage.onnx: node -1: Failed to parse"):
        _build(str(garbage))
    custom = str(tmp_path / "custom.onnx")
    _save_custom_op_model(custom)
    with pytest.raises(InputError, match=r"node 0: No importer registered for op: "
                                         r"acme::Sparkle; node 1: No importer registered for op: "
                                         r"acme::Glitter"):
        _build(custom)


def test_missing_onnx_file(monkeypatch, mode, tmp_path):
    install_trt_double(monkeypatch, mode)
    with pytest.raises(InputError, match="no such ONNX file"):
        _build(str(tmp_path / "nope.onnx"))


@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript:DeprecationWarning")
def test_static_batch_must_match_the_profile(monkeypatch, mode, trained_small_cnn, tmp_path):
    import torch
    install_trt_double(monkeypatch, mode)
    path = str(tmp_path / "static.onnx")
    torch.onnx.export(trained_small_cnn, (torch.zeros(1, 1, 8, 8),), path, dynamo=False,
                      opset_version=13, input_names=["input"], output_names=["logits"])
    with pytest.raises(InputError, match="fixed batch of 1, but the profile asks for 1..8"):
        _build(path, max_batch=8)
    engine_bytes, facts = _build(path, min_batch=1, opt_batch=1, max_batch=1)
    assert facts["profile"] is None  # nothing dynamic: no optimization profile
    from engines.tensorrt_backend import TensorRTEngine
    with TensorRTEngine(engine_bytes) as engine:
        assert (engine.min_batch, engine.max_batch) == (1, 1)
        assert engine.infer({"input": np.ones((1, 1, 8, 8), np.float32)})["logits"].shape == (1, 10)


def test_other_dynamic_axes_are_refused(monkeypatch, mode, tmp_path):
    install_trt_double(monkeypatch, mode)
    path = str(tmp_path / "dynamic_hw.onnx")
    _save_relu_model(path, ["N", 1, "H", 8])
    with pytest.raises(InputError, match="dynamic axes besides the batch \\(Nx1xNx8\\)"):
        _build(path)


def test_tensorrt_11_without_precision_flags(cnn_onnx):
    from engines.tensorrt_build import _check_precision
    trt11 = types.SimpleNamespace(__version__="11.1.0", BuilderFlag=types.SimpleNamespace())
    with pytest.raises(InputError, match="TensorRT 11.1.0 has no FP16 builder flag .*precision "
                                         "must live in the ONNX model"):
        _check_precision(trt11, "fp16", {"fp16": None, "int8": None},
                         {"gpu_name": "Thor", "compute_capability": "11.0"})


def test_build_engine_and_load_engine_on_the_double(monkeypatch, mode, cnn_onnx,
                                                    digits_splits, tmp_path):
    """engines.build / engines.load (the callers) with backend tensorrt, end to end."""
    from engines.build import build_engine
    from engines.load import load_engine
    install_trt_double(monkeypatch, mode)
    path = str(tmp_path / "model.engine")
    sidecar = build_engine(cnn_onnx, path, BuildConfig(max_batch=8, backend="tensorrt"))
    assert sidecar.backend == "tensorrt" and sidecar.tensorrt_version.startswith(mode)
    images = digits_splits[2].images[:8]
    with load_engine(path) as engine, load_engine(cnn_onnx) as reference:
        assert engine.max_batch == 8 and engine.identity() == sidecar.engine_sha256
        np.testing.assert_allclose(engine.infer({"input": images})["logits"],
                                   reference.infer({"input": images})["logits"], atol=1e-5)
    install_trt_double(monkeypatch, mode, gpu_name="Another GPU")
    with pytest.raises(EngineCompatibilityError, match="built for GPU .* but this machine has GPU "
                                                       "Another GPU"):
        load_engine(path)
    assert os.path.isfile(path + ".json")


def _save_relu_model(path, dims):
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["logits"])], "relu",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, dims)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def _save_custom_op_model(path):
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node("Sparkle", ["input"], ["mid"], domain="acme"),
         helper.make_node("Glitter", ["mid"], ["logits"], domain="acme")], "custom",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid("acme", 1)])
    onnx.save(model, path)


def _save_qdq_model(path):
    from onnx import TensorProto, helper
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [], [0.05])
    zero = helper.make_tensor("zero", TensorProto.INT8, [], [0])
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["input", "scale", "zero"], ["q"]),
         helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["dq"]),
         helper.make_node("Relu", ["dq"], ["logits"])], "qdq",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4])],
        initializer=[scale, zero])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_a_refused_optimization_profile_is_an_error(monkeypatch, mode, cnn_onnx):
    """add_optimization_profile answers -1 for a profile TensorRT refuses (here opt > max)."""
    install_trt_double(monkeypatch, mode)
    config = BuildConfig(max_batch=8)
    config.opt_batch = 16
    from engines.tensorrt_build import build_tensorrt
    with pytest.raises(InputError, match="TensorRT refused the optimization profile batch 1..16..8"):
        build_tensorrt(cnn_onnx, config)


def test_serialized_engine_has_no_len_in_tensorrt(monkeypatch, mode, cnn_onnx):
    """IHostMemory has nbytes and the buffer protocol, not len(): the backend copies it whole."""
    double = install_trt_double(monkeypatch, mode)
    from engines.tensorrt_build import build_tensorrt
    original = double.trt.Builder.build_serialized_network
    seen = []

    def spy(self, network, config):
        result = original(self, network, config)
        seen.append(result)
        return result
    monkeypatch.setattr(type.__getattribute__(double.trt.Builder, "__mro__")[1],
                        "build_serialized_network", spy)
    engine_bytes, _ = build_tensorrt(cnn_onnx, BuildConfig(max_batch=2))
    with pytest.raises(TypeError):
        len(seen[0])
    assert len(engine_bytes) == seen[0].nbytes


def test_progress_reports_the_build(monkeypatch, mode, cnn_onnx):
    """10.x: TensorRT's progress monitor; 8.x: a first line, the builder's INFO log, the end."""
    install_trt_double(monkeypatch, mode)
    from engines.tensorrt_build import build_tensorrt
    lines = []
    build_tensorrt(cnn_onnx, BuildConfig(max_batch=2), progress=lines.append)
    assert lines[-1].startswith("TensorRT build finished in ")
    if mode == "10":
        assert "(progress monitor)" in lines[0]
        assert "Building engine (2 steps)" in lines and "  Timing tactics (2 steps)" in lines
        assert "Building engine done" in lines
    else:
        assert "no progress monitor in this version" in lines[0]
        assert any(line.startswith("TensorRT: [MemUsageChange]") for line in lines)
    from engines.tensorrt_backend import get_logger
    import tensorrt
    assert get_logger(tensorrt).listener is None  # restored after the build


def test_progress_ticks_while_a_long_build_runs():
    from engines.tensorrt_progress import _tick
    import threading
    lines, stop = [], threading.Event()
    ticker = threading.Thread(target=_tick, args=(stop, 0.0, 0.01, lines.append))
    ticker.start()
    while not lines:
        stop.wait(0.01)
    stop.set()
    ticker.join()
    assert lines[0].startswith("building ... ") and lines[0].endswith(" s")
