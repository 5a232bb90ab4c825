"""Running the ``tritonserver`` that ships inside the ``nvidia-pytriton`` wheel (x86-64).

That wheel carries Triton with the Python backend, one backend stub per Python version
(``python_backend_stubs/3.X``) and its shared libraries (``nvidia_pytriton.libs``). To run it:
the stub for the model environment's Python is copied into ``backends/python/`` and the libraries
go on ``LD_LIBRARY_PATH``. Its Python backend needs numpy < 2 in the model environment.
"""
import glob
import os
import platform
import shutil
import subprocess
import sys

from basics.errors import InputError

STUB = "triton_python_backend_stub"
ENV_VARIABLE = "TOOLKIT_TRITON_ENV"  # the test environment, default .venv-triton in the checkout


def testing_env_dir():
    """The environment with the wheel that the tests and benchmarks use (``make triton-env``)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.environ.get(ENV_VARIABLE) or os.path.join(root, ".venv-triton")


def unavailable_reason(env_dir):
    """Why the wheel's server cannot run here with ``env_dir`` (one line), or None."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return "the nvidia-pytriton wheel (Triton for the tests) is x86-64 only; this is {}".format(
            platform.machine())
    if not (3, 8) <= sys.version_info[:2] <= (3, 13):
        return "the nvidia-pytriton 0.7.0 wheel has Python backend stubs for Python 3.8-3.13 only"
    if find_in_env(env_dir) is None:
        return "no Triton test environment at {} (run `make triton-env`)".format(env_dir)
    try:
        import tritonclient.grpc  # noqa: F401
        import tritonclient.http  # noqa: F401
    except ImportError:
        return "tritonclient is not installed (pip install 'tritonclient[http,grpc]')"
    return None


def wheel_dir(binary):
    """The wheel's ``tritonserver`` folder when ``binary`` is the wheel's server, else None."""
    root = os.path.dirname(os.path.dirname(os.path.realpath(binary)))
    return root if os.path.isdir(os.path.join(root, "python_backend_stubs")) else None


def find_in_env(env_dir):
    """The wheel's ``tritonserver`` binary inside the virtual environment ``env_dir``, or None."""
    found = sorted(glob.glob(os.path.join(env_dir, "lib", "python3*", "site-packages", "pytriton",
                                          "tritonserver", "bin", "tritonserver")))
    return found[0] if found else None


def owning_env(tritonserver_dir):
    """The virtualenv the wheel is installed in (``<env>/lib/python3.X/site-packages/pytriton/
    tritonserver``), or None."""
    env = os.path.realpath(os.path.join(tritonserver_dir, *([os.pardir] * 5)))
    return env if os.path.isfile(os.path.join(env, "pyvenv.cfg")) else None


def env_python(env_dir):
    """``(python executable, site-packages folder, libpython folder or None)`` of a venv."""
    python = os.path.join(env_dir, "bin", "python")
    if not os.path.isfile(python):
        raise InputError("{} is not a Python environment (no bin/python)".format(env_dir))
    code = ("import sys, sysconfig; print(sysconfig.get_paths()['purelib']); "
            "print(sysconfig.get_config_var('LIBDIR') if sysconfig.get_config_var("
            "'Py_ENABLE_SHARED') else ''); print('%d.%d' % sys.version_info[:2])")
    out = subprocess.check_output([python, "-c", code]).decode().splitlines()
    return python, out[0], out[1] or None, out[2]


def prepare(tritonserver_dir, python_version=None):
    """Make the wheel's server runnable for ``python_version`` ("3.11"; default: this Python):
    copy that stub into ``backends/python/`` (once). Returns ``(backend directory, library
    directory)``."""
    version = python_version or "{}.{}".format(*sys.version_info[:2])
    stub = os.path.join(tritonserver_dir, "python_backend_stubs", version, STUB)
    if not os.path.isfile(stub):
        raise InputError("the Triton wheel has no Python backend stub for Python {} (it has {})"
                         .format(version, ", ".join(sorted(os.listdir(os.path.join(
                             tritonserver_dir, "python_backend_stubs"))))))
    backends = os.path.join(tritonserver_dir, "backends")
    target = os.path.join(backends, "python", STUB)
    if not _same_file(stub, target):
        temporary = target + ".tmp{}".format(os.getpid())
        shutil.copy2(stub, temporary)
        os.replace(temporary, target)
    libs = os.path.join(os.path.dirname(os.path.dirname(tritonserver_dir)), "nvidia_pytriton.libs")
    return backends, libs


def _same_file(a, b):
    if not os.path.isfile(b) or os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, "rb") as one, open(b, "rb") as two:
        return one.read() == two.read()
