"""A TEST DOUBLE of TensorRT, pycuda and cuda-python -- NOT TensorRT, for tests only.

TensorRT cannot be installed on the machines that run this project's tests (no GPU), so the
TensorRT backend (engines/tensorrt_backend.py, engines/tensorrt_build.py, engines/cuda_memory.py,
calibration/trt_calibrator.py) is tested against this double. ``install_trt_double(monkeypatch,
mode)`` puts fake ``tensorrt`` plus ``pycuda`` (mode "8.2", the Jetson Nano's TensorRT 8.0/8.2
binding API) or ``cuda`` (cuda-python, mode "10", the tensor-name API) modules into
``sys.modules``. The double builds by keeping the ONNX bytes and executes with ONNX Runtime on the
CPU; it is strict about the API (only names that exist in the real version, see
``api_tables``) and about usage (profiles, shapes set before execution, live device pointers,
page-locked host memory, stream synchronization, the calibration protocol). It proves the
backend's logic and API usage, not TensorRT's speed or numerics.
"""
from tests.engines.trt_double.fake_tensorrt import TensorRTAbort, engine_header  # noqa: F401
from tests.engines.trt_double.install import (  # noqa: F401
    MODES,
    TrtDouble,
    install_trt_double,
)
from tests.engines.trt_double.strict import TRACE  # noqa: F401
