"""Deployments to export, and a real Triton server (the nvidia-pytriton wheel's, x86-64) to serve
them on 127.0.0.1.

The server comes from the Triton test environment ``.venv-triton`` (``make triton-env``: the wheel,
numpy < 2, onnxruntime; or ``TOOLKIT_TRITON_ENV``). Without it the server tests skip with one line
saying why, except where ``TOOLKIT_REQUIRE_TRITON=1`` (``make test`` on x86-64): then they fail,
so CI never passes them vacuously.
"""
import os
import shutil

import numpy as np
import pytest

from tests.toolkit.strategies.conftest import linear_image_onnx

SPECS = {
    "single": "engines: {small: small.onnx}\nstrategy: {type: single, engine: small}\n",
    "cascade": "engines: {linear: linear.onnx, small: small.onnx}\n"
               "strategy: {type: cascade, first: linear, second: small, threshold: 0.9, "
               "score: margin}\n",
    "memo": "engines: {linear: linear.onnx, small: small.onnx}\n"
            "strategy: {type: cascade, first: linear, second: small, threshold: 0.9, "
            "score: margin}\nmemo: {mode: exact, max_entries: 1000}\n",
}


@pytest.fixture(scope="session")
def spec_folder(tmp_path_factory, small_cnn_onnx):
    """A folder with the trained small CNN, a linear 8x8 model and the three specs
    (``single.yaml``, ``cascade.yaml``, ``memo.yaml``)."""
    pytest.importorskip("onnxruntime")
    folder = tmp_path_factory.mktemp("triton-specs")
    shutil.copy(small_cnn_onnx, str(folder / "small.onnx"))
    shutil.copy(small_cnn_onnx + ".json", str(folder / "small.onnx.json"))
    matrix = np.random.RandomState(0).randn(64, 10).astype(np.float32)
    (folder / "linear.onnx").write_bytes(linear_image_onnx(matrix))
    for name, text in SPECS.items():
        (folder / "{}.yaml".format(name)).write_text(text)
    return folder


def triton_env():
    """The Triton test environment's folder, or skip (fail where it is required) saying why."""
    from toolkit.triton import wheel
    env_dir = wheel.testing_env_dir()
    reason = wheel.unavailable_reason(env_dir)
    if reason:
        if os.environ.get("TOOLKIT_REQUIRE_TRITON") == "1":
            pytest.fail("TOOLKIT_REQUIRE_TRITON=1 but " + reason)
        pytest.skip(reason)
    return env_dir


def server_config(repository, models, log_path):
    """A :class:`ServerConfig` for the wheel's server on 127.0.0.1 at free ports."""
    from toolkit.triton import wheel
    from toolkit.triton.server import ServerConfig, free_ports
    env = triton_env()
    http, grpc, metrics = free_ports(3)
    return ServerConfig(str(repository), binary=wheel.find_in_env(env), http_port=http,
                        grpc_port=grpc, metrics_port=metrics, address="127.0.0.1", models=models,
                        python_env=env, log_path=str(log_path), ready_timeout_s=90,
                        stop_timeout_s=20)


@pytest.fixture(scope="session")
def exported(spec_folder, tmp_path_factory):
    """One model repository with the three deployments (models ``single``, ``cascade``,
    ``memo``; no engine models: this Triton has no onnxruntime backend)."""
    from toolkit.triton.export import ExportOptions, export_repository
    root = tmp_path_factory.mktemp("triton-repo") / "models"
    parts = []
    for name in SPECS:
        part = tmp_path_factory.mktemp("part") / "repo"
        export_repository(str(spec_folder / "{}.yaml".format(name)), str(part),
                          ExportOptions(engine_models=False))
        parts.append(part)
    root.mkdir()
    for name, part in zip(SPECS, parts):
        shutil.move(str(part / name), str(root / name))
    return root


@pytest.fixture(scope="module")
def _module_server(exported, tmp_path_factory):
    """The wheel's tritonserver serving ``exported`` (module-wide; stopped at the end)."""
    from toolkit.triton.server import TritonServer
    config = server_config(exported, sorted(SPECS), tmp_path_factory.mktemp("log") / "server.log")
    with TritonServer(config) as running:
        yield running


@pytest.fixture
def server(_module_server):
    """The module's server, checked alive before each test: one that died since fails the test
    with its exit code and log tail (the test before it, or Triton, broke it)."""
    if _module_server.poll() is not None:
        pytest.fail("the module's tritonserver exited with code {} before this test; its log "
                    "ends:\n{}".format(_module_server.poll(),
                                        _tail(_module_server.config.log_path)))
    return _module_server


def ready(config):
    """True when the server at ``config`` answers ``/v2/health/ready`` with 200."""
    import urllib.request
    try:
        with urllib.request.urlopen(config.http_url + "/v2/health/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _tail(path, lines=30):
    try:
        with open(path, "rb") as handle:
            return "\n".join(handle.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError as error:
        return str(error)
