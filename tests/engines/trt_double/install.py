"""``install_trt_double(monkeypatch, mode, ...)``: the TEST DOUBLE of TensorRT into sys.modules."""
import sys

from tests.engines.trt_double.api_tables import TRT_VERSIONS
from tests.engines.trt_double.fake_cudart import build_cudart
from tests.engines.trt_double.fake_pycuda import build_pycuda
from tests.engines.trt_double.fake_tensorrt import build_tensorrt
from tests.engines.trt_double.gpu import FakeGpu

MODES = ("8.2", "10")
# what each mode looks like by default: a Jetson Nano (JetPack 4.6.x) and an Orin (JetPack 6.x)
DEFAULT_GPU = {"8.2": ("NVIDIA Tegra X1", (5, 3)), "10": ("Orin", (8, 7))}


class TrtDouble(object):
    """What ``install_trt_double`` installed: ``trt`` (the fake module), ``gpu`` (a FakeGpu:
    allocations, streams, counters), ``mode``, ``cuda`` (the fake pycuda.driver or cudart)."""

    def __init__(self, mode, trt, gpu, cuda):
        self.mode = mode
        self.trt = trt
        self.gpu = gpu
        self.cuda = cuda


def install_trt_double(monkeypatch, mode, fast_fp16=True, fast_int8=True, gpu_name=None, cc=None,
                       version=None, cuda_layout="cudart"):
    """Install the double for ``mode`` ("8.2": tensorrt + pycuda; "10": tensorrt + cuda-python)
    with ``monkeypatch`` (undone after the test); returns a :class:`TrtDouble`.

    ``fast_fp16``/``fast_int8``: what ``Builder.platform_has_fast_*`` report (a Nano: True/False);
    ``gpu_name``/``cc``: the GPU (default: Tegra X1 5.3 for "8.2", Orin 8.7 for "10");
    ``version``: the TensorRT version string; ``cuda_layout`` (mode "10"): "cudart" for
    ``cuda.cudart``, "bindings" for ``cuda.bindings.runtime``.
    """
    if mode not in MODES:
        raise ValueError("mode must be one of {}, got {!r}".format(MODES, mode))
    name, default_cc = DEFAULT_GPU[mode]
    gpu = FakeGpu(gpu_name or name, cc or default_cc)
    trt = build_tensorrt(mode, gpu, version or TRT_VERSIONS[mode], fast_fp16=fast_fp16,
                         fast_int8=fast_int8)
    modules = {"tensorrt": trt}
    if mode == "8.2":
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
