"""The one place optional, heavy imports go through (tensorrt, pycuda, onnxruntime, torch ...).

Importing is deferred to first use so that every module and every ``--help`` works without the
optional packages; a missing package becomes a :class:`MissingDependencyError` that says how to
install it.
"""
import importlib

from basics.errors import MissingDependencyError

# module -> how a user gets it
INSTALL_HINTS = {
    "tensorrt": "TensorRT ships with JetPack on a Jetson (python3-libnvinfer); on a PC install "
                "NVIDIA's TensorRT wheel for your CUDA version",
    "pycuda": "pip install pycuda (on a Jetson Nano with JetPack 4.6: pip3 install 'pycuda<2023')",
    "cuda": "pip install cuda-python (needs CUDA >= 11)",
    "onnxruntime": "pip install onnxruntime (Jetson: NVIDIA's onnxruntime-gpu wheel for your JetPack)",
    "onnx": "pip install onnx",
    "torch": "pip install 'jetson-trt-toolkit[host]' (host-side commands need PyTorch)",
    "jtop": "pip install 'jetson-stats<7' (Python 3.6) or pip install jetson-stats",
    "pynvml": "pip install nvidia-ml-py",
    "matplotlib": "pip install matplotlib",
    "sklearn": "pip install scikit-learn",
    "yaml": "pip install pyyaml",
    "xxhash": "pip install xxhash",
    "PIL": "pip install pillow",
    "tqdm": "pip install tqdm",
}


def lazy_import(name, purpose=None):
    """Import module ``name`` now, or raise MissingDependencyError naming the fix.

    ``purpose`` says what the module is needed for, e.g. ``"building TensorRT engines"``.
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        top = name.split(".")[0]
        # an ImportError from *inside* an installed package is a real bug: keep its traceback
        if getattr(exc, "name", None) not in (None, name, top):
            raise
        hint = INSTALL_HINTS.get(top, "pip install {}".format(top))
        what = " for {}".format(purpose) if purpose else ""
        raise MissingDependencyError(
            "'{}' is needed{} but is not installed: {}".format(name, what, hint)) from None


def is_available(name):
    """True if ``name`` can be imported (the import itself is attempted)."""
    try:
        importlib.import_module(name)
        return True
    except Exception:  # noqa: BLE001 - a broken install counts as unavailable
        return False
