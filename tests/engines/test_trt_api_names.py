"""Every TensorRT / pycuda name the backend and the test double use exists in the real version.

TensorRT cannot run here, so NVIDIA's Python name lists (``shared/trt-api``, see its README) stand
in for it. Three checks, each able to fail in both directions:

1. the double's tables (what it exposes) against the lists: the binding-API mode against
   TensorRT 8.0.1 *and* 8.2.1 (the Jetson Nano's two releases), the tensor-name mode against
   10.16, the pycuda table against pycuda 2022.1;
2. a trace of every public name the backend touched while building, calibrating and running a
   real model through the double in both modes, against the same lists;
3. a static scan of the backend's source for ``trt.X.Y`` and ``driver.X`` chains.
"""
import ast
import os
import warnings

import numpy as np
import pytest

from tests.conftest import REPO_ROOT, TRT_API_DIR
from tests.engines.trt_double import TRACE, install_trt_double
from tests.engines.trt_double.api_tables import CUDART, PYCUDA, TRT
from tests.engines.trt_double.strict import RUNTIME_NAMES

BACKEND_FILES = ("engines/tensorrt_backend.py", "engines/tensorrt_build.py",
                 "engines/cuda_memory.py", "engines/tensorrt_calibrator.py",
                 "engines/tensorrt_progress.py", "calibration/trt_calibrator.py")
LIST_FILES = {"8.0": "extra/trt-8.0.txt", "8.2": "trt-8.2.txt", "10": "trt-10.txt",
              "pycuda": "extra/pycuda-2022.1-cuda10.2.txt"}
# which lists a name of each traced family must be in
REQUIRED = {"trt-8.2": ("8.0", "8.2"), "trt-10": ("10",), "pycuda": ("pycuda",)}
# no list of 8.5 is bundled: a name of the 8.5 mode must be in 8.2's or in 10.16's
EITHER = {"trt-8.5": ("8.2", "10")}


def _load(name):
    with open(os.path.join(TRT_API_DIR, LIST_FILES[name])) as handle:
        return frozenset(line.strip() for line in handle
                         if line.strip() and not line.startswith("#"))


@pytest.fixture(scope="module")
def lists():
    if not os.path.isdir(TRT_API_DIR):
        pytest.skip("the TensorRT/pycuda name lists are not here ({}: the shared/trt-api folder "
                    "next to the repository)".format(TRT_API_DIR))
    return {name: _load(name) for name in LIST_FILES}


def _qualified(key, member):
    return "{}.{}".format(key, member) if key else member


def check_names(names, versions, lists):
    """The names (``Class.member``) missing from any of the lists of ``versions``."""
    problems = []
    for name in sorted(names):
        if name.rsplit(".", 1)[-1] in RUNTIME_NAMES and "." in name:
            continue  # pybind11's own enum members (name, value) are not in the lists
        for version in versions:
            if name not in lists[version]:
                problems.append("{} is not in TensorRT/pycuda {}".format(name, version))
    return problems


def check_table(table, versions, lists):
    return check_names([_qualified(k, m) for k, members in table.items() for m in members],
                       versions, lists)


def check_records(records, lists):
    """Problems with traced ``(family, name, by_double)`` records."""
    problems = []
    for family, name, _ in sorted(records):
        if family == "cudart":
            if name.split(".")[0] not in CUDART[""] and name not in CUDART[""]:
                problems.append("cuda-python name {} is not in the verified table".format(name))
            continue
        if family == "pycuda" and name.startswith("pycuda."):
            if name not in ("pycuda.driver", "pycuda.autoinit"):
                problems.append("pycuda package name {} is unknown".format(name))
            continue
        if family in EITHER:
            if not any(name in lists[v] or name.rsplit(".", 1)[-1] in RUNTIME_NAMES
                       for v in EITHER[family]):
                problems.append("{} is in neither TensorRT {} ({})".format(
                    name, " nor ".join(EITHER[family]), family))
            continue
        problems.extend("{} ({})".format(p, family)
                        for p in check_names([name], REQUIRED[family], lists))
    return problems


def scan_source(text, lists, filename="<source>"):
    """Problems with ``trt.X.Y`` / ``driver.X.Y`` chains (and ``getattr/hasattr(trt.X, "Y")``)
    in Python source ``text``: each TensorRT chain must exist in 8.0 and 8.2, or in 10.16; each
    pycuda chain in pycuda 2022.1."""
    binding_api = lists["8.0"] & lists["8.2"]
    problems = []
    for chain, line in _chains(ast.parse(text, filename)):
        root, name = chain[0], ".".join(chain[1:])
        if root == "trt":
            if name not in binding_api and name not in lists["10"]:
                problems.append("{}:{}: trt.{} is in neither TensorRT 8.0+8.2 nor 10.16".format(
                    filename, line, name))
        elif "driver." + name not in lists["pycuda"]:
            problems.append("{}:{}: pycuda.driver.{} is not in pycuda 2022.1".format(
                filename, line, name))
    return problems


def _literal(node):
    """The value of a string literal node (``ast.Str`` on Python 3.6/3.7), else None."""
    if isinstance(node, ast.Constant):
        return node.value
    return getattr(node, "s", None) if type(node).__name__ == "Str" else None


def _chains(tree):
    """``(["trt", "BuilderFlag", "FP16"], line)`` for each outermost attribute chain rooted at
    ``trt``, ``driver`` or ``self._driver``."""
    found = []
    inner = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in inner:
            parts, current = [], node
            while isinstance(current, ast.Attribute):
                inner.add(id(current.value))
                parts.insert(0, current.attr)
                current = current.value
            if isinstance(current, ast.Name) and current.id in ("trt", "driver"):
                found.append(([current.id if current.id == "trt" else "driver"] + parts,
                              node.lineno))
            elif isinstance(current, ast.Name) and current.id == "self" and parts[:1] == [
                    "_driver"]:
                found.append((["driver"] + parts[1:], node.lineno))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                "getattr", "hasattr") and len(node.args) >= 2 and isinstance(
                    _literal(node.args[1]), str):
            base = node.args[0]
            parts = []
            while isinstance(base, ast.Attribute):
                parts.insert(0, base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id == "trt":
                found.append((["trt"] + parts + [_literal(node.args[1])], node.lineno))
    return [(chain, line) for chain, line in found if len(chain) > 1]


# -- 1. the double exposes real names only ---------------------------------------------------
def test_binding_mode_exposes_only_names_of_tensorrt_8_0_and_8_2(lists):
    assert check_table(TRT["8.2"], ("8.0", "8.2"), lists) == []


def test_tensor_mode_exposes_only_names_of_tensorrt_10(lists):
    assert check_table(TRT["10"], ("10",), lists) == []


def test_8_5_mode_exposes_only_names_of_8_2_or_10_and_lacks_what_8_5_lacks(lists):
    names = [("trt-8.5", _qualified(k, m), False) for k, members in TRT["8.5"].items()
             for m in members]
    assert check_records(names, lists) == []
    assert "get_tensor_profile_shape" not in TRT["8.5"]["ICudaEngine"]
    assert {"num_io_tensors", "num_bindings", "get_profile_shape"} <= TRT["8.5"]["ICudaEngine"]
    assert "INT64" not in TRT["8.5"]["DataType"] and "IProgressMonitor" not in TRT["8.5"][""]


def test_pycuda_double_exposes_only_names_of_pycuda_2022_1(lists):
    assert check_table(PYCUDA, ("pycuda",), lists) == []


@pytest.mark.parametrize("mode", ["8.2", "10"])
def test_double_refuses_every_name_of_the_other_generation(monkeypatch, mode):
    double = install_trt_double(monkeypatch, mode)
    other = TRT["10" if mode == "8.2" else "8.2"]
    refused = 0
    for key, members in other.items():
        for member in members - TRT[mode].get(key, frozenset()):
            owner = double.trt
            if key:
                if key.split(".")[0] not in TRT[mode][""]:
                    continue  # the whole class is absent: checked at module level
                for part in key.split("."):
                    owner = getattr(owner, part)
            assert not hasattr(owner, member), "{} mode exposes {}".format(
                mode, _qualified(key, member))
            refused += 1
    assert refused >= 8


# -- 2. what the backend touched while running -------------------------------------------------
@pytest.fixture(scope="module")
def traced_records(cnn_onnx, digits_splits, tmp_path_factory):
    """Build fp32/fp16/int8 (calibrated, then from the cache), run and close, in both modes."""
    from calibration.trt_calibrator import calibrate_to_cache
    from engines.build_config import BuildConfig
    from engines.tensorrt_backend import (
        TensorRTEngine,
        runtime_facts,
        tensorrt_available,
    )
    from engines.tensorrt_build import build_tensorrt
    monkeypatch = pytest.MonkeyPatch()
    TRACE.clear()
    from tests.engines.test_tensorrt_build import _save_qdq_model
    folder = tmp_path_factory.mktemp("trace")
    qdq = str(folder / "qdq.onnx")
    _save_qdq_model(qdq)
    images = digits_splits[2].images
    try:
        for mode, layout in (("8.2", "cudart"), ("8.5", "cudart"), ("10", "cudart"),
                             ("10", "bindings"), ("10", "pycuda")):
            if layout == "pycuda":
                install_trt_double(monkeypatch, mode, cuda="pycuda")
            else:
                install_trt_double(monkeypatch, mode, cuda_layout=layout)
            assert tensorrt_available() and runtime_facts()["tensorrt_version"]
            cache = str(folder / "{}-{}.cache".format(mode, layout))
            calibrate_to_cache(cnn_onnx, images, cache, batch_size=8, max_batches=2)
            for precision in ("fp32", "fp16", "int8"):
                config = BuildConfig(precision=precision, max_batch=8, calibration_cache=(
                    cache if precision == "int8" else None))
                engine_bytes, _ = build_tensorrt(cnn_onnx, config, progress=[].append)
                with TensorRTEngine(engine_bytes) as engine:
                    for batch in (1, 8):
                        engine.infer({"input": images[:batch]})
            build_tensorrt(qdq, BuildConfig(precision="int8", max_batch=4))  # explicit INT8
    finally:
        monkeypatch.undo()
    records = set(TRACE.records)
    TRACE.clear()
    return records


def test_backend_touches_only_names_of_the_exercised_versions(traced_records, lists):
    assert check_records(traced_records, lists) == []


def test_the_trace_covers_both_generations(traced_records):
    names = set((family, name) for family, name, _ in traced_records)
    for expected in [("trt-8.2", "ICudaEngine.num_bindings"),
                     ("trt-8.2", "IExecutionContext.execute_async_v2"),
                     ("trt-8.2", "IBuilderConfig.max_workspace_size"),
                     ("trt-8.2", "IInt8EntropyCalibrator2.get_batch"),
                     ("trt-10", "ICudaEngine.num_io_tensors"),
                     ("trt-10", "IExecutionContext.execute_async_v3"),
                     ("trt-10", "IBuilderConfig.set_memory_pool_limit"),
                     ("trt-10", "MemoryPoolType.WORKSPACE"),
                     ("trt-10", "LayerType.QUANTIZE"), ("trt-8.2", "ILayer.type"),
                     ("trt-10", "IBuilderConfig.progress_monitor"),
                     ("trt-10", "IProgressMonitor.phase_start"),
                     ("trt-8.5", "ICudaEngine.num_io_tensors"),
                     ("trt-8.5", "ICudaEngine.get_profile_shape"),
                     ("pycuda", "driver.memcpy_htod_async"),
                     ("pycuda", "driver.Device.retain_primary_context"),
                     ("cudart", "cudaMemcpyAsync")]:
        assert expected in names, expected


# -- 3. static scan ----------------------------------------------------------------------------
def test_backend_source_uses_real_trt_and_pycuda_names(lists):
    problems, chains = [], 0
    for relative in BACKEND_FILES:
        with open(os.path.join(REPO_ROOT, relative)) as handle:
            text = handle.read()
        chains += len(_chains(ast.parse(text)))
        problems.extend(scan_source(text, lists, relative))
    assert problems == []
    assert chains >= 15  # the scan did find the backend's trt./driver. chains


# -- the checkers themselves can fail ---------------------------------------------------------
def test_checkers_catch_wrong_names(lists):
    assert check_records({("trt-10", "ICudaEngine.num_bindings", False)}, lists) == [
        "ICudaEngine.num_bindings is not in TensorRT/pycuda 10 (trt-10)"]
    assert check_records({("trt-8.2", "IExecutionContext.execute_async_v3", False)}, lists)
    # in 8.2 but not in 8.0 (JetPack 4.6): the binding mode must not use it
    assert check_records({("trt-8.2", "ILogger.Severity", False)}, lists) == [
        "ILogger.Severity is not in TensorRT/pycuda 8.0 (trt-8.2)"]
    assert check_records({("pycuda", "driver.Stream.destroy", False)}, lists)
    assert check_records({("cudart", "cudaLaunchMagic", False)}, lists)
    assert check_table({"ICudaEngine": ["num_io_tensors"]}, ("8.0", "8.2"), lists)
    source = ("x = trt.MemoryPoolType.WORKSPACE\ny = trt.BuilderFlag.FP61\n"
              "z = getattr(trt.NetworkDefinitionCreationFlag, 'EXPLICIT_BATCH', None)\n"
              "w = hasattr(trt, 'Nonsense')\nv = self._driver.memcpy_htod_sync\n")
    assert scan_source(source, lists) == [
        "<source>:2: trt.BuilderFlag.FP61 is in neither TensorRT 8.0+8.2 nor 10.16",
        "<source>:4: trt.Nonsense is in neither TensorRT 8.0+8.2 nor 10.16",
        "<source>:5: pycuda.driver.memcpy_htod_sync is not in pycuda 2022.1"]


@pytest.mark.parametrize("mode, name", [("10", "num_bindings"), ("8.2", "num_io_tensors")])
def test_a_backend_touching_the_other_generation_fails_on_the_double(monkeypatch, cnn_onnx,
                                                                     mode, name):
    from engines.build_config import BuildConfig
    from engines.tensorrt_build import build_tensorrt
    double = install_trt_double(monkeypatch, mode)
    engine_bytes, _ = build_tensorrt(cnn_onnx, BuildConfig(max_batch=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runtime = double.trt.Runtime(double.trt.Logger(double.trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(engine_bytes)
    with pytest.raises(AttributeError, match="not in the trt-{} API".format(mode)):
        getattr(engine, name)
    with pytest.raises(AttributeError):
        engine._io  # the double's internals are not reachable from outside it
    from engines.tensorrt_backend import numpy_dtype  # never trt.nptype (np.bool in <= 8.5)
    assert numpy_dtype(double.trt.DataType.FLOAT, "x") == np.float32
