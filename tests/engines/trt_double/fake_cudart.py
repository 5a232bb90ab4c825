"""A TEST DOUBLE of cuda-python's runtime API (``cuda.cudart`` / ``cuda.bindings.runtime``).

Not cuda-python: every call returns an ``(error, value...)`` tuple like the real bindings, and
answers misuse with an error code instead of crashing: unknown device pointers, host memory that
was not registered (``cudaHostRegister``) or allocated pinned, unknown streams.
"""
import enum

from tests.engines.trt_double.api_tables import CUDART
from tests.engines.trt_double.gpu import FakeCudaError
from tests.engines.trt_double.strict import StrictModule, strict_class

FAMILY = "cudart"


class cudaError_t(enum.IntEnum):  # noqa: N801 - cuda-python's spelling
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2
    cudaErrorInvalidDevice = 101
    cudaErrorInvalidDevicePointer = 17
    cudaErrorInvalidResourceHandle = 400
    cudaErrorHostMemoryNotRegistered = 713


class cudaMemcpyKind(enum.IntEnum):  # noqa: N801
    cudaMemcpyHostToHost = 0
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2
    cudaMemcpyDeviceToDevice = 3
    cudaMemcpyDefault = 4


def build_cudart(gpu, layout="cudart"):
    """The fake runtime module, and the sys.modules entries for ``layout``: "cudart" (old
    ``from cuda import cudart``) or "bindings" (``cuda.bindings.runtime``, cuda-python >= 12.6)."""
    OK = cudaError_t.cudaSuccess

    class _Stream(object):
        def __init__(self, stream):
            self._stream = stream

        def __int__(self):
            return self._stream.handle

        def getPtr(self):  # noqa: N802
            return self._stream.handle

    cudaStream_t = strict_class("cudaStream_t", (_Stream,), {}, FAMILY, "cudaStream_t",
                                CUDART["cudaStream_t"])

    class _Props(object):
        def __init__(self):
            self._name = gpu.name.encode() + b"\0" * (256 - len(gpu.name))

        name = property(lambda self: self._name)
        major = property(lambda self: gpu.cc[0])
        minor = property(lambda self: gpu.cc[1])
        totalGlobalMem = property(lambda self: gpu.total_bytes)

    cudaDeviceProp = strict_class("cudaDeviceProp", (_Props,), {}, FAMILY, "cudaDeviceProp",
                                  CUDART["cudaDeviceProp"])
    current = {"device": 0}

    def cudaGetDeviceCount():  # noqa: N802
        return OK, 1

    def cudaGetDevice():  # noqa: N802
        return OK, current["device"]

    def cudaSetDevice(device):  # noqa: N802
        if device != 0:
            return (cudaError_t.cudaErrorInvalidDevice,)
        current["device"] = device
        return (OK,)

    def cudaGetDeviceProperties(device):  # noqa: N802
        if device != 0:
            return cudaError_t.cudaErrorInvalidDevice, None
        return OK, cudaDeviceProp()

    def cudaMalloc(size):  # noqa: N802
        try:
            return OK, gpu.malloc(size)
        except FakeCudaError:
            return cudaError_t.cudaErrorMemoryAllocation, 0

    def cudaFree(pointer):  # noqa: N802
        try:
            gpu.free(int(pointer))
        except FakeCudaError:
            return (cudaError_t.cudaErrorInvalidDevicePointer,)
        return (OK,)

    def cudaMallocHost(size):  # noqa: N802
        return (cudaError_t.cudaErrorMemoryAllocation, 0)  # the double only pins numpy memory

    def cudaFreeHost(pointer):  # noqa: N802
        return (cudaError_t.cudaErrorInvalidValue,)

    def cudaHostRegister(pointer, size, flags):  # noqa: N802
        if not isinstance(pointer, int) or size <= 0 or flags != 0:
            return (cudaError_t.cudaErrorInvalidValue,)
        gpu.pin(pointer, size)
        return (OK,)

    def cudaHostUnregister(pointer):  # noqa: N802
        try:
            gpu.unpin(pointer)
        except FakeCudaError:
            return (cudaError_t.cudaErrorHostMemoryNotRegistered,)
        return (OK,)

    def _views(dst, src, count, kind):
        if kind == cudaMemcpyKind.cudaMemcpyHostToDevice:
            return gpu.region(dst, count), gpu.host_view(src, count)
        if kind == cudaMemcpyKind.cudaMemcpyDeviceToHost:
            return gpu.host_view(dst, count), gpu.region(src, count)
        raise FakeCudaError("the double copies host<->device only, got {}".format(kind))

    def _stream_of(stream):
        if not isinstance(stream, (_Stream, int)):
            raise FakeCudaError("stream must be a cudaStream_t or an int")
        return int(stream)

    def cudaMemcpyAsync(dst, src, count, kind, stream):  # noqa: N802
        try:
            destination, source = _views(dst, src, count, kind)
            handle = _stream_of(stream)
            gpu.enqueue_copy(handle, destination, source,
                             "htod" if kind == cudaMemcpyKind.cudaMemcpyHostToDevice else "dtoh")
        except FakeCudaError:
            return (cudaError_t.cudaErrorInvalidValue,)
        return (OK,)

    def cudaMemcpy(dst, src, count, kind):  # noqa: N802
        try:
            destination, source = _views(dst, src, count, kind)
        except FakeCudaError:
            return (cudaError_t.cudaErrorInvalidValue,)
        destination[:] = source
        return (OK,)

    def cudaStreamCreate():  # noqa: N802
        return OK, cudaStream_t(gpu.new_stream())

    def cudaStreamSynchronize(stream):  # noqa: N802
        try:
            target = gpu.stream(_stream_of(stream))
        except FakeCudaError:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        gpu.counts["sync"] += 1
        target.synchronize()
        return (OK,)

    def cudaStreamDestroy(stream):  # noqa: N802
        try:
            gpu.destroy_stream(_stream_of(stream))
        except FakeCudaError:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        return (OK,)

    def cudaGetErrorString(error):  # noqa: N802
        return OK, cudaError_t(error).name.encode()

    def cudaGetErrorName(error):  # noqa: N802
        return OK, cudaError_t(error).name.encode()

    name = "cuda.bindings.runtime" if layout == "bindings" else "cuda.cudart"
    runtime = StrictModule(name, FAMILY, "", CUDART[""],
                           "cuda-python runtime TEST DOUBLE (not cuda-python)")
    values = dict(locals())
    for member in CUDART[""]:
        if member == "cudaHostRegisterDefault":
            value = 0
        elif member in ("cudaError_t", "cudaMemcpyKind"):
            value = globals()[member]
        else:
            value = values[member]
        object.__setattr__(runtime, member, value)
    package = StrictModule("cuda", FAMILY, "cuda", ["cudart", "bindings"],
                           "cuda-python TEST DOUBLE (not cuda-python)")
    if layout == "bindings":
        bindings = StrictModule("cuda.bindings", FAMILY, "cuda.bindings", ["runtime"])
        object.__setattr__(bindings, "runtime", runtime)
        object.__setattr__(package, "bindings", bindings)
        return runtime, {"cuda": package, "cuda.bindings": bindings,
                         "cuda.bindings.runtime": runtime, "cuda.cudart": None}
    object.__setattr__(package, "cudart", runtime)
    return runtime, {"cuda": package, "cuda.cudart": runtime, "cuda.bindings": None,
                     "cuda.bindings.runtime": None}
