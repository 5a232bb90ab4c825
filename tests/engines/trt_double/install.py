"""``install_trt_double(monkeypatch, mode, ...)``: the TEST DOUBLE of TensorRT into sys.modules."""
import sys

from tests.engines.trt_double.api_tables import TRT_VERSIONS
from tests.engines.trt_double.fake_cudart import build_cudart
from tests.engines.trt_double.fake_pycuda import build_pycuda
from tests.engines.trt_double.fake_tensorrt import build_tensorrt
from tests.engines.trt_double.gpu import FakeGpu

MODES = ("8.2", "8.5", "10")
# what each mode looks like by default: a Jetson Nano (JetPack 4.6.x), a Xavier (JetPack 5.1)
# and an Orin (JetPack 6.x); and the CUDA binding each uses by default
DEFAULT_GPU = {"8.2": ("NVIDIA Tegra X1", (5, 3)), "8.5": ("Xavier", (7, 2)), "10": ("Orin", (8, 7))}
DEFAULT_CUDA = {"8.2": "pycuda", "8.5": "pycuda", "10": "cuda-python"}


class TrtDouble(object):
    """What ``install_trt_double`` installed: ``trt`` (the fake module), ``gpu`` (a FakeGpu:
    allocations, streams, counters), ``mode``, ``cuda`` (the fake pycuda.driver or cudart)."""

    def __init__(self, mode, trt, gpu, cuda):
        self.mode = mode
        self.trt = trt
        self.gpu = gpu
        self.cuda = cuda


def install_trt_double(monkeypatch, mode, fast_fp16=True, fast_int8=True, gpu_name=None, cc=None,
                       version=None, cuda_layout="cudart", cuda=None, numpy_has_bool=None):
    """Install the double for ``mode`` ("8.2", "8.5" or "10") with ``monkeypatch`` (undone after
    the test); returns a :class:`TrtDouble`.

    ``fast_fp16``/``fast_int8``: what ``Builder.platform_has_fast_*`` report (a Nano: True/False);
    ``gpu_name``/``cc``: the GPU (default: Tegra X1 5.3 for "8.2", Orin 8.7 for "10");
    ``version``: the TensorRT version string; ``cuda``: "pycuda" or "cuda-python" (default: pycuda
    for 8.x, cuda-python for 10); ``cuda_layout`` (cuda-python): "cudart" for ``cuda.cudart``,
    "bindings" for ``cuda.bindings.runtime``; ``numpy_has_bool``: False makes ``trt.nptype`` of
    8.x fail as under numpy 1.24 - 1.26 (None: as this numpy is).
    """
    if mode not in MODES:
        raise ValueError("mode must be one of {}, got {!r}".format(MODES, mode))
    name, default_cc = DEFAULT_GPU[mode]
    gpu = FakeGpu(gpu_name or name, cc or default_cc)
    trt = build_tensorrt(mode, gpu, version or TRT_VERSIONS[mode], fast_fp16=fast_fp16,
                         fast_int8=fast_int8, numpy_has_bool=numpy_has_bool)
    modules = {"tensorrt": trt}
    cuda = cuda or DEFAULT_CUDA[mode]
    if cuda not in ("pycuda", "cuda-python"):
        raise ValueError("cuda must be 'pycuda' or 'cuda-python', got {!r}".format(cuda))
    if cuda == "pycuda":
        pycuda = build_pycuda(gpu)
        modules.update(pycuda)
        modules.update({"cuda": None, "cuda.cudart": None, "cuda.bindings": None,
                        "cuda.bindings.runtime": None})
        cuda = pycuda["pycuda.driver"]
    else:
        cuda, entries = build_cudart(gpu, cuda_layout)
        modules.update(entries)
        modules.update({"pycuda": None, "pycuda.driver": None, "pycuda.autoinit": None})
    for key, module in modules.items():
        monkeypatch.setitem(sys.modules, key, module)
    return TrtDouble(mode, trt, gpu, cuda)
