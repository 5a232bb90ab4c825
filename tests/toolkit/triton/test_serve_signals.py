"""`toolkit triton serve` against the real Triton (the nvidia-pytriton wheel's server): it stops
cleanly on SIGINT/SIGTERM, and follows its parent on SIGKILL, leaving no Python-backend stub
behind. Each case serves its own copy of the ``single`` model (no file shared with another
server).
"""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO_ROOT
from tests.processes import alive, children, exe_name
from tests.toolkit.triton.conftest import ready as _ready, server_config

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_serve_stops_cleanly_on_a_signal_leaving_no_stub(exported, tmp_path, signal_number):
    from tests.toolkit.triton.conftest import triton_env
    from toolkit.triton.server import group_members
    env_dir = triton_env()
    repository = tmp_path / "models"
    shutil.copytree(str(exported / "single"), str(repository / "single"))
    config = server_config(repository, ["single"], tmp_path / "server.log")
    command = [sys.executable, "-m", "toolkit", "triton", "serve", config.repository,
               "--tritonserver", config.binary, "--model", "single",
               "--address", "127.0.0.1", "--http-port", str(config.http_port),
               "--grpc-port", str(config.grpc_port), "--metrics-port", str(config.metrics_port),
               "--log", config.log_path]
    if signal_number == signal.SIGTERM:  # else the default: the wheel's own virtualenv
        command += ["--python-env", env_dir]
    serve = subprocess.Popen(command, cwd=REPO_ROOT, stderr=subprocess.PIPE,
                             start_new_session=True)
    servers = []
    try:
        deadline = time.monotonic() + 90
        while not _ready(config):
            assert serve.poll() is None, serve.stderr.read().decode()
            assert time.monotonic() < deadline, "not ready"
            time.sleep(0.2)
        servers[:] = [pid for pid in children(serve.pid) if exe_name(pid) == "tritonserver"]
        assert len(servers) == 1
        group = servers[0]  # the server leads a process group of its own, with its stubs
        stubs = [pid for pid in group_members(group) if exe_name(pid) == "triton_python_backend_stub"]
        assert stubs, "the model runs in a stub process"
        serve.send_signal(signal_number)
        if signal_number == signal.SIGKILL:  # no clean-up code runs: the server follows its parent
            assert serve.wait(60) == -signal.SIGKILL
            deadline = time.monotonic() + 40
            while group_members(group) and time.monotonic() < deadline:
                time.sleep(0.2)
        else:
            assert serve.wait(60) == 0
            assert b"stopped" in serve.stderr.read()
        assert not [pid for pid in stubs if alive(pid)]
        assert group_members(group) == []
        assert not _ready(config)
    finally:  # on a failure, too, leave no server behind (it leads a process group of its own)
        if serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)
                serve.wait()
        for pid in servers:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
