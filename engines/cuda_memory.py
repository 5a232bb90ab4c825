"""GPU memory and one CUDA stream behind a small interface, over pycuda or cuda-python.

The TensorRT backend and the INT8 calibrators need four things from CUDA: page-locked host
buffers, device buffers, asynchronous copies on one stream, and a synchronize. Two bindings
provide them:

- ``pycuda`` (``pycuda.driver``): the Jetson Nano's choice (JetPack 4.6.x, CUDA 10.2, Python 3.6;
  ``pip3 install 'pycuda<2023'``). The device's *primary* context is retained and pushed around
  every use, so TensorRT (which uses the CUDA runtime, hence the primary context) and pycuda share
  one context from any thread, without ``import pycuda.autoinit``.
- ``cuda-python`` (``cuda.bindings.runtime``, or the older ``cuda.cudart``): Xavier/Orin with
  CUDA >= 11. Its calls return ``(error, value...)`` tuples; every error is checked.

``open_cuda_memory()`` picks pycuda when it imports, else cuda-python (or the one named).
Device pointers are plain ints; host buffers are 1-D numpy arrays in page-locked memory.
"""
import contextlib

import numpy as np

from basics.errors import MissingDependencyError
from basics.lazy import is_available, lazy_import

BINDINGS = ("pycuda", "cuda-python")
_PURPOSE = "moving data between the CPU and the GPU for TensorRT"


def available_binding():
    """``"pycuda"`` or ``"cuda-python"`` (the first that imports), or None."""
    if is_available("pycuda.driver"):
        return "pycuda"
    if is_available("cuda.bindings.runtime") or is_available("cuda.cudart"):
        return "cuda-python"
    return None


def _resolve(binding):
    if binding is None:
        binding = available_binding()
        if binding is None:
            raise MissingDependencyError(
                "TensorRT needs a CUDA binding to move data to the GPU, and neither pycuda nor "
                "cuda-python is installed: pip install pycuda (Jetson Nano: pip3 install "
                "'pycuda<2023') or pip install cuda-python (CUDA >= 11)")
    if binding not in BINDINGS:
        raise ValueError("unknown CUDA binding '{}' (known: {})".format(binding, ", ".join(BINDINGS)))
    return binding


def open_cuda_memory(binding=None, device_index=0):
    """A :class:`CudaMemory` on GPU ``device_index`` through ``binding`` (None: the first available)."""
    if _resolve(binding) == "pycuda":
        return PycudaMemory(device_index)
    return CudartMemory(device_index)


def device_facts(binding=None, device_index=0):
    """``{"gpu_name", "compute_capability" ("5.3"), "device_count"}`` of GPU ``device_index``."""
    if _resolve(binding) == "pycuda":
        driver = lazy_import("pycuda.driver", _PURPOSE)
        driver.init()
        count = int(driver.Device.count())
        if count <= device_index:
            return {"gpu_name": None, "compute_capability": None, "device_count": count}
        device = driver.Device(device_index)
        major, minor = device.compute_capability()
        return {"gpu_name": str(device.name()), "compute_capability": "{}.{}".format(major, minor),
                "device_count": count}
    cudart = import_cudart()
    count = int(_check(cudart, cudart.cudaGetDeviceCount(), "cudaGetDeviceCount"))
    if count <= device_index:
        return {"gpu_name": None, "compute_capability": None, "device_count": count}
    props = _check(cudart, cudart.cudaGetDeviceProperties(device_index), "cudaGetDeviceProperties")
    name = props.name
    if isinstance(name, (bytes, bytearray)):
        name = bytes(name).split(b"\0")[0].decode("utf-8", "replace")
    return {"gpu_name": str(name), "compute_capability": "{}.{}".format(props.major, props.minor),
            "device_count": count}


def import_cudart():
    """cuda-python's runtime module: ``cuda.bindings.runtime`` (12.6+), else ``cuda.cudart``."""
    if is_available("cuda.bindings.runtime"):
        return lazy_import("cuda.bindings.runtime", _PURPOSE)
    return lazy_import("cuda.cudart", _PURPOSE)


def _check(cudart, result, what):
    """Unpack a cuda-python ``(error, value...)`` tuple; RuntimeError unless error is success."""
    err = result[0]
    if err != cudart.cudaError_t.cudaSuccess:
        raise RuntimeError("CUDA call {} failed: {}".format(what, getattr(err, "name", err)))
    if len(result) == 1:
        return None
    if len(result) == 2:
        return result[1]
    return result[1:]


class CudaMemory(object):
    """Page-locked host buffers, device buffers and one stream; ``close()`` frees them all.

    Subclasses implement the binding-specific calls. ``stream_handle`` is the stream as an int (what
    TensorRT's ``execute_async_v2/v3`` take). Wrap CUDA work in ``with memory.activate():``.
    """

    binding = None
    stream_handle = None

    @contextlib.contextmanager
    def activate(self):
        """Context manager making this memory's CUDA context current (a no-op where not needed)."""
        yield

    def host_buffer(self, count, dtype):
        """A page-locked 1-D numpy array of ``count`` elements of ``dtype`` (freed by close)."""
        raise NotImplementedError

    def device_buffer(self, nbytes):
        """A device allocation of ``nbytes`` bytes, as an int pointer (freed by close)."""
        raise NotImplementedError

    def htod_async(self, device_ptr, host_array):
        """Queue a copy of contiguous ``host_array`` to ``device_ptr`` on the stream."""
        raise NotImplementedError

    def dtoh_async(self, host_array, device_ptr):
        """Queue a copy from ``device_ptr`` into contiguous ``host_array`` on the stream."""
        raise NotImplementedError

    def synchronize(self):
        """Wait until everything queued on the stream has finished."""
        raise NotImplementedError

    def close(self):
        """Free every buffer and the stream; safe to call twice."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class PycudaMemory(CudaMemory):
    """pycuda: the device's primary context (retained, pushed while in use), one ``Stream``."""

    binding = "pycuda"

    def __init__(self, device_index=0):
        driver = lazy_import("pycuda.driver", _PURPOSE)
        driver.init()
        if int(driver.Device.count()) <= device_index:
            raise MissingDependencyError("pycuda sees no CUDA GPU {} (is the NVIDIA driver "
                                         "loaded?)".format(device_index))
        self._driver = driver
        self._context = driver.Device(device_index).retain_primary_context()
        self._device = {}  # int pointer -> DeviceAllocation
        self._host = []
        self._closed = False
        self._context.push()
        try:
            self._stream = driver.Stream()
            self.stream_handle = int(self._stream.handle)
        finally:
            driver.Context.pop()

    @contextlib.contextmanager
    def activate(self):
        self._context.push()
        try:
            yield
        finally:
            self._driver.Context.pop()

    def host_buffer(self, count, dtype):
        with self.activate():
            array = self._driver.pagelocked_empty(max(1, int(count)), np.dtype(dtype))
        self._host.append(array)
        return array

    def device_buffer(self, nbytes):
        with self.activate():
            allocation = self._driver.mem_alloc(max(1, int(nbytes)))
        pointer = int(allocation)
        self._device[pointer] = allocation
        return pointer

    def htod_async(self, device_ptr, host_array):
        self._driver.memcpy_htod_async(self._device.get(device_ptr, device_ptr), host_array,
                                       self._stream)

    def dtoh_async(self, host_array, device_ptr):
        self._driver.memcpy_dtoh_async(host_array, self._device.get(device_ptr, device_ptr),
                                       self._stream)

    def synchronize(self):
        self._stream.synchronize()

    def close(self):
        if self._closed:
            return
        self._closed = True
        self._context.push()
        try:
            for allocation in self._device.values():
                allocation.free()
            for array in self._host:
                base = getattr(array, "base", None)  # pycuda's PagelockedHostAllocation
                if base is not None and hasattr(base, "free"):
                    base.free()
            self._stream = None
        finally:
            self._device = {}
            self._host = []
            self._driver.Context.pop()
            self._context.detach()


class CudartMemory(CudaMemory):
    """cuda-python's runtime API: ``cudaMalloc``, numpy arrays pinned by ``cudaHostRegister``,
    ``cudaMemcpyAsync`` on one ``cudaStreamCreate`` stream."""

    binding = "cuda-python"

    def __init__(self, device_index=0):
        cudart = import_cudart()
        self._cudart = cudart
        self._device = []
        self._host = []
        self._closed = False
        self._call(cudart.cudaSetDevice(device_index), "cudaSetDevice")
        self._stream = self._call(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self.stream_handle = int(self._stream)
        kinds = cudart.cudaMemcpyKind
        self._h2d = kinds.cudaMemcpyHostToDevice
        self._d2h = kinds.cudaMemcpyDeviceToHost

    def _call(self, result, what):
        return _check(self._cudart, result, what)

    def host_buffer(self, count, dtype):
        array = np.empty(max(1, int(count)), dtype=np.dtype(dtype))
        # flags 0 = cudaHostRegisterDefault: pin the pages numpy already owns
        self._call(self._cudart.cudaHostRegister(array.ctypes.data, array.nbytes, 0),
                   "cudaHostRegister")
        self._host.append(array)
        return array

    def device_buffer(self, nbytes):
        pointer = int(self._call(self._cudart.cudaMalloc(max(1, int(nbytes))), "cudaMalloc"))
        self._device.append(pointer)
        return pointer

    def htod_async(self, device_ptr, host_array):
        self._call(self._cudart.cudaMemcpyAsync(device_ptr, host_array.ctypes.data,
                                                host_array.nbytes, self._h2d, self._stream),
                   "cudaMemcpyAsync (host to device)")

    def dtoh_async(self, host_array, device_ptr):
        self._call(self._cudart.cudaMemcpyAsync(host_array.ctypes.data, device_ptr,
                                                host_array.nbytes, self._d2h, self._stream),
                   "cudaMemcpyAsync (device to host)")

    def synchronize(self):
        self._call(self._cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")

    def close(self):
        if self._closed:
            return
        self._closed = True
        cudart = self._cudart
        try:
            for pointer in self._device:
                self._call(cudart.cudaFree(pointer), "cudaFree")
            for array in self._host:
                self._call(cudart.cudaHostUnregister(array.ctypes.data), "cudaHostUnregister")
            self._call(cudart.cudaStreamDestroy(self._stream), "cudaStreamDestroy")
        finally:
            self._device = []
            self._host = []
            self._stream = None
