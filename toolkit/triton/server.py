"""A local ``tritonserver`` process: start it, wait until it is ready, stop it cleanly.

The server runs in a process group of its own, so that stopping it (SIGTERM, then SIGKILL after
``stop_timeout_s``) also ends any Python-backend stub left behind; on Linux it also gets SIGTERM
when the thread that started it dies (start it from a thread that outlives it).
"""
import os
import shutil
import signal
import subprocess
import time

from basics.errors import InputError, ToolkitError
from toolkit.triton import wheel

# read by the strategy model (model.py): folders to put on sys.path before importing the toolkit
TOOLKIT_PATH_VARIABLE = "TOOLKIT_PYTHONPATH"


class ServerConfig(object):
    """How to run Triton on ``repository``: the binary (None: ``tritonserver`` on PATH), ports,
    the address to listen on, the models to load (none: all of them), the backend directory
    (None: Triton's default, or the wheel's), the model environment (a virtualenv whose packages
    the Python backend's stub imports), and where the server's log goes (None: inherited)."""

    def __init__(self, repository, binary=None, http_port=8000, grpc_port=8001, metrics_port=8002,
                 address="0.0.0.0", models=(), backend_dir=None, python_env=None, log_path=None,
                 ready_timeout_s=120.0, stop_timeout_s=30.0):
        self.repository = os.path.abspath(repository)
        self.binary = binary
        self.http_port = int(http_port)
        self.grpc_port = int(grpc_port)
        self.metrics_port = int(metrics_port)
        self.address = address
        self.models = list(models)
        self.backend_dir = backend_dir
        self.python_env = python_env
        self.log_path = log_path
        self.ready_timeout_s = float(ready_timeout_s)
        self.stop_timeout_s = float(stop_timeout_s)

    @property
    def local_host(self):
        return "127.0.0.1" if self.address in ("0.0.0.0", "") else self.address

    @property
    def http_url(self):
        return "http://{}:{}".format(self.local_host, self.http_port)

    @property
    def grpc_url(self):
        return "grpc://{}:{}".format(self.local_host, self.grpc_port)


def find_binary(binary=None):
    """The ``tritonserver`` to run: ``binary`` if given, else the one on PATH."""
    path = binary or shutil.which("tritonserver")
    if not path:
        raise InputError("no tritonserver on PATH; give --tritonserver PATH (Triton's release for "
                         "JetPack or its server container; on x86-64 the nvidia-pytriton wheel "
                         "carries one, see docs/triton.md)")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise InputError("{} is not an executable file".format(path))
    return path


class TritonServer(object):
    """``start()``, ``wait_ready()``, ``stop()``; also a context manager (start + wait, stop)."""

    def __init__(self, config):
        self.config = config
        self.process = None
        self._log = None

    def command(self):
        """``(argv, environment)`` of the server process."""
        config = self.config
        if not os.path.isdir(config.repository):
            raise InputError("no such model repository: {}".format(config.repository))
        binary = find_binary(config.binary)
        env = dict(os.environ)
        backend_dir = config.backend_dir
        library_dirs, version = [], None
        wheel_root = wheel.wheel_dir(binary)
        python_env = config.python_env or (wheel_root and wheel.owning_env(wheel_root))
        if python_env:
            # The stub's Python starts isolated (PYTHONPATH ignored) and finds its prefix from
            # `python3` on PATH: the environment's bin first makes its site-packages the stub's.
            python, _, libdir, version = wheel.env_python(python_env)
            _prepend(env, "PATH", [os.path.dirname(python)])
            if libdir:
                library_dirs.append(libdir)
        if wheel_root is not None:
            wheel_backends, libs = wheel.prepare(wheel_root, version)
            backend_dir = backend_dir or wheel_backends
            library_dirs.append(libs)
        _prepend(env, "LD_LIBRARY_PATH", library_dirs)
        _prepend(env, TOOLKIT_PATH_VARIABLE, [_toolkit_root()])
        argv = [binary, "--model-repository=" + config.repository,
                "--http-address=" + config.address, "--http-port={}".format(config.http_port),
                "--grpc-address=" + config.address, "--grpc-port={}".format(config.grpc_port),
                "--metrics-address=" + config.address,
                "--metrics-port={}".format(config.metrics_port),
                "--exit-timeout-secs={}".format(max(1, int(config.stop_timeout_s) - 5))]
        if backend_dir:
            argv.append("--backend-directory=" + os.path.abspath(backend_dir))
        if config.models:
            argv.append("--model-control-mode=explicit")
            argv.extend("--load-model=" + m for m in config.models)
        return argv, env

    def start(self):
        argv, env = self.command()
        if self.config.log_path:
            self._log = open(self.config.log_path, "ab")
        self.process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                        stdout=self._log, stderr=subprocess.STDOUT if self._log
                                        else None, start_new_session=True,
                                        preexec_fn=_stop_with_parent)
        return self

    def poll(self):
        return None if self.process is None else self.process.poll()

    def wait_ready(self, timeout_s=None, should_stop=None):
        """Poll ``/v2/health/ready`` until it answers 200; ToolkitError (with the log's tail) when
        the server exits first or ``timeout_s`` passes. ``should_stop()``: give up early (False)."""
        import urllib.error
        import urllib.request
        timeout_s = self.config.ready_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        url = self.config.http_url + "/v2/health/ready"
        while time.monotonic() < deadline:
            if should_stop is not None and should_stop():
                return False
            if self.process.poll() is not None:
                raise ToolkitError("tritonserver exited with code {} before it was ready{}".format(
                    self.process.returncode, self._log_tail()))
            try:
                with urllib.request.urlopen(url, timeout=1.0) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise ToolkitError("tritonserver was not ready after {:g} s{}".format(
            timeout_s, self._log_tail()))

    def stop(self):
        """SIGTERM (Triton unloads its models and stops their stubs), SIGKILL to the whole
        process group after ``stop_timeout_s``; returns the server's exit code."""
        if self.process is None:
            return None
        group = self.process.pid
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(self.config.stop_timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(group)
                self.process.wait()
        _kill_group(group)  # a stub that outlived the server (none when Triton stops cleanly)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.process.returncode

    def _log_tail(self, lines=15):
        if not self.config.log_path or not os.path.isfile(self.config.log_path):
            return ""
        with open(self.config.log_path, "rb") as handle:
            tail = handle.read().decode("utf-8", "replace").splitlines()[-lines:]
        return "; log {}:\n{}".format(self.config.log_path, "\n".join(tail))

    def __enter__(self):
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def free_ports(count, host="127.0.0.1"):
    """``count`` distinct TCP ports free on ``host`` now."""
    import socket
    sockets = []
    try:
        for _ in range(count):
            handle = socket.socket()
            handle.bind((host, 0))
            sockets.append(handle)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for handle in sockets:
            handle.close()


def group_members(group):
    """Process ids still in process group ``group`` (Linux ``/proc``), zombies excluded."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/{}/stat".format(entry), "rb") as handle:
                fields = handle.read().decode("utf-8", "replace").rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry))
    return members


def _stop_with_parent():
    """In the child before exec (Linux): SIGTERM when the thread that started it dies, so that a
    killed ``toolkit triton serve`` leaves no server behind. Best effort elsewhere."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _kill_group(group):
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _prepend(env, key, paths):
    paths = [p for p in paths if p]
    if paths:
        env[key] = os.pathsep.join(paths + ([env[key]] if env.get(key) else []))


def _toolkit_root():
    """The folder holding the ``toolkit`` package (for the Python backend's imports)."""
    import toolkit
    return os.path.dirname(os.path.dirname(os.path.abspath(toolkit.__file__)))
