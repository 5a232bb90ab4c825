"""One contract every Engine backend must pass, run for each registered backend (like
torch2trt's per-module tests): built through the registry, loaded through ``load_engine``,
constructed with its metadata and batch bounds, and behaving the same on the same model.

TensorRT runs through the test double (tests/engines/trt_double/), labelled as such: these are
not on-device results.
"""
import shutil

import numpy as np
import pytest

from basics.errors import InputError
from engines.backends import backend_names, get_backend
from engines.build import build_engine
from engines.build_config import BuildConfig
from engines.load import load_engine
from engines.model_metadata import ModelMetadata, sidecar_path
from engines.onnxruntime_backend import OnnxRuntimeEngine
from tests.engines.trt_double import install_trt_double

pytest.importorskip("onnx")

# (backend, how it is made available here): every registered backend must appear
SETUPS = [("onnxruntime", None), ("tensorrt", "8.2 double"), ("tensorrt", "10 double")]


def test_every_registered_backend_is_covered():
    assert sorted(set(name for name, _ in SETUPS)) == sorted(backend_names())


@pytest.fixture(params=SETUPS, ids=["onnxruntime", "tensorrt8.2-double", "tensorrt10-double"])
def backend(request, monkeypatch):
    name, setup = request.param
    if setup is not None:
        install_trt_double(monkeypatch, setup.split()[0])
    return get_backend(name)


@pytest.fixture
def model(tmp_path, small_cnn_onnx):
    """The small CNN with a metadata sidecar (class names), as `toolkit export` writes it."""
    path = str(tmp_path / "m.onnx")
    shutil.copy(small_cnn_onnx, path)
    ModelMetadata(class_names=["digit {}".format(i) for i in range(10)]).save(sidecar_path(path))
    return path


def test_the_backend_is_available_and_builds_and_loads(backend, model, tmp_path, digits_splits):
    assert backend.available()
    engine_path = str(tmp_path / "m.engine")
    sidecar = build_engine(model, engine_path, BuildConfig(max_batch=8, min_batch=1,
                                                           backend=backend.name))
    assert sidecar.backend == backend.name
    info = backend.info()
    assert info["installed"] and info["usable"]
    images = digits_splits[2].images
    reference = OnnxRuntimeEngine(model)
    with load_engine(engine_path) as engine:
        # constructed with its metadata and batch bounds (nothing set after construction)
        assert engine.metadata is not None
        assert engine.metadata.class_names[3] == "digit 3"
        assert (engine.min_batch, engine.max_batch) == (1, 8)
        assert engine.identity() == sidecar.engine_sha256
        assert [s.name for s in engine.inputs] == ["input"]
        assert engine.outputs[0].shape[1:] == (10,)
        for batch in (1, 5, 8):
            feeds = {"input": images[:batch]}
            first = engine.infer(feeds)["logits"]
            second = engine.infer(feeds)["logits"]
            assert first.shape == (batch, 10) and first.dtype == np.float32
            assert first is not second and not np.shares_memory(first, second)  # fresh arrays
            np.testing.assert_allclose(first, reference.infer(feeds)["logits"], rtol=1e-5,
                                       atol=1e-5)
        with pytest.raises(InputError, match="above the engine's maximum batch 8"):
            engine.infer({"input": images[:9]})
        with pytest.raises(InputError, match="must have shape"):
            engine.infer({"input": np.zeros((2, 1, 4, 4), np.float32)})
    reference.close()


def test_the_sidecar_names_the_backend_that_loads_it(backend, model, tmp_path):
    engine_path = str(tmp_path / "m.engine")
    build_engine(model, engine_path, BuildConfig(max_batch=4, backend=backend.name))
    with load_engine(engine_path) as engine:
        module = type(engine).__module__
    assert module == {"onnxruntime": "engines.onnxruntime_backend",
                      "tensorrt": "engines.tensorrt_backend"}[backend.name]
