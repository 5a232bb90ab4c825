"""A TEST DOUBLE of pycuda (``pycuda``, ``pycuda.driver``, ``pycuda.autoinit``) over a FakeGpu.

Not pycuda: it exposes only the names in ``api_tables.PYCUDA`` (all present in pycuda 2022.1,
the Jetson Nano's newest), and it is strict where pycuda relies on the caller: every call that
needs a CUDA context checks that one is current in the calling thread, host memory handed to
``memcpy_*_async`` must come from ``pagelocked_empty``, and device pointers must be live.
"""
import numpy as np

from tests.engines.trt_double.api_tables import PYCUDA
from tests.engines.trt_double.gpu import FakeCudaError
from tests.engines.trt_double.strict import StrictModule, strict_class

FAMILY = "pycuda"


def _exposed(api):
    return PYCUDA.get(api, frozenset())


def build_pycuda(gpu, version=(2022, 1)):
    """``{"pycuda": ..., "pycuda.driver": ..., "pycuda.autoinit": ...}`` over ``gpu``."""
    state = {"initialised": False}

    class Error(Exception):
        """pycuda.driver.Error (double)."""

    class LogicError(Error):
        """pycuda.driver.LogicError (double)."""

    def guard(what):
        if not state["initialised"]:
            raise LogicError("{} failed: not initialized (call pycuda.driver.init() first)".format(
                what))
        try:
            gpu.require_context(what)
        except FakeCudaError as exc:
            raise LogicError(str(exc)) from None

    def init(flags=0):
        state["initialised"] = True

    class _Context(object):
        def __init__(self, primary):
            self._primary = primary
            self._refs = 1
            self._detached = False

        def push(self):
            if self._detached:
                raise LogicError("cuCtxPushCurrent failed: context was detached")
            gpu.context_stack().append(self)

        @staticmethod
        def pop():
            stack = gpu.context_stack()
            if not stack:
                raise LogicError("cuCtxPopCurrent failed: invalid device context")
            stack.pop()

        def detach(self):
            if self._detached:
                raise LogicError("cuCtxDetach failed: context already detached")
            if self in gpu.context_stack():
                raise LogicError("detach of a context that is still pushed (pop it first)")
            self._refs -= 1
            if self._refs <= 0:
                self._detached = True

        @staticmethod
        def synchronize():
            guard("cuCtxSynchronize")
            for stream in list(gpu.streams.values()):
                stream.synchronize()

        @staticmethod
        def get_current():
            stack = gpu.context_stack()
            return stack[-1] if stack else None

        def get_device(self):
            return Device(0)

    Context = strict_class("Context", (_Context,), {}, FAMILY, "driver.Context",
                           _exposed("driver.Context"))
    primary = {}

    class _Device(object):
        def __init__(self, ordinal):
            if not state["initialised"]:
                raise LogicError("cuDeviceGet failed: not initialized")
            if not 0 <= int(ordinal) < 1:
                raise LogicError("cuDeviceGet failed: invalid device ordinal")
            self._ordinal = int(ordinal)

        @staticmethod
        def count():
            if not state["initialised"]:
                raise LogicError("cuDeviceGetCount failed: not initialized")
            return 1

        def name(self):
            return gpu.name

        def compute_capability(self):
            return gpu.cc

        def total_memory(self):
            return gpu.total_bytes

        def make_context(self, flags=0):
            context = Context(False)
            context.push()
            return context

        def retain_primary_context(self):
            context = primary.get(self._ordinal)
            if context is None or context._detached:
                context = primary[self._ordinal] = Context(True)
            else:
                context._refs += 1
            return context

    Device = strict_class("Device", (_Device,), {}, FAMILY, "driver.Device",
                          _exposed("driver.Device"))

    class _Stream(object):
        def __init__(self, flags=0):
            guard("cuStreamCreate")
            self._stream = gpu.new_stream()

        @property
        def handle(self):
            return self._stream.handle

        def synchronize(self):
            guard("cuStreamSynchronize")
            gpu.counts["sync"] += 1
            self._stream.synchronize()

        def is_done(self):
            return not self._stream.queue

    Stream = strict_class("Stream", (_Stream,), {}, FAMILY, "driver.Stream",
                          _exposed("driver.Stream"))

    class _DeviceAllocation(object):
        def __init__(self, pointer):
            self._pointer = pointer
            self._freed = False

        def __int__(self):
            return self._pointer

        __index__ = __int__

        def free(self):
            guard("cuMemFree")
            if not self._freed:
                gpu.free(self._pointer)
                self._freed = True

    DeviceAllocation = strict_class("DeviceAllocation", (_DeviceAllocation,), {}, FAMILY,
                                    "driver.DeviceAllocation", _exposed("driver.DeviceAllocation"))
    class _PagelockedHostAllocation(object):
        """The page-locked memory behind a ``pagelocked_empty`` array (the array's ``base``)."""

        def __init__(self, shape, dtype):
            self._shape, self._dtype = shape, dtype
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            self._storage = np.zeros(max(16, nbytes), dtype=np.uint8)
            self._address = self._storage.ctypes.data
            self._freed = False
            gpu.pin(self._address, self._storage.nbytes)
            gpu.counts["host_alloc"] = gpu.counts.get("host_alloc", 0) + 1

        def free(self):
            guard("cuMemFreeHost")
            if not self._freed:
                gpu.unpin(self._address)
                self._freed = True
                gpu.counts["host_free"] = gpu.counts.get("host_free", 0) + 1

        @property
        def __array_interface__(self):
            return {"shape": self._shape, "typestr": self._dtype.str, "version": 3,
                    "data": (self._address, False)}

    PagelockedHostAllocation = strict_class(
        "PagelockedHostAllocation", (_PagelockedHostAllocation,), {}, FAMILY,
        "driver.PagelockedHostAllocation", _exposed("driver.PagelockedHostAllocation"))

    def mem_alloc(nbytes):
        guard("cuMemAlloc")
        return DeviceAllocation(gpu.malloc(nbytes, primary=gpu.context_stack()[-1]._primary))

    def pagelocked_empty(shape, dtype, order="C", mem_flags=0):
        """A numpy array over a PagelockedHostAllocation (its ``base``), as pycuda's is."""
        guard("cuMemHostAlloc")
        if order != "C":
            raise NotImplementedError("the double makes C-order page-locked arrays only")
        shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(d) for d in shape)
        return np.asarray(PagelockedHostAllocation(shape, np.dtype(dtype)))

    def _pointer(dest):
        if isinstance(dest, (_DeviceAllocation,)):
            return dest._pointer
        if isinstance(dest, int):
            return dest
        raise TypeError("device pointer must be a DeviceAllocation or an int, got {}".format(
            type(dest).__name__))

    def _host(array, what):
        if not isinstance(array, np.ndarray) or not array.flags.c_contiguous:
            raise TypeError("{}: host buffer must be a C-contiguous numpy array".format(what))
        return array.view(np.uint8).reshape(-1)

    def _device(pointer, nbytes, what):
        try:
            return gpu.region(pointer, nbytes)
        except FakeCudaError as exc:
            raise LogicError("{} failed: {}".format(what, exc)) from None

    def _stream_handle(stream, what):
        if not isinstance(stream, _Stream):
            raise TypeError("{}: stream must be a pycuda Stream".format(what))
        return stream._stream.handle

    def memcpy_htod_async(dest, src, stream=None):
        guard("cuMemcpyHtoDAsync")
        host = _host(src, "memcpy_htod_async")
        try:
            gpu.check_pinned(src.ctypes.data, src.nbytes)
        except FakeCudaError as exc:
            raise LogicError("memcpy_htod_async: {}".format(exc)) from None
        device = _device(_pointer(dest), host.nbytes, "cuMemcpyHtoDAsync")
        gpu.enqueue_copy(_stream_handle(stream, "memcpy_htod_async"), device, host, "htod")

    def memcpy_dtoh_async(dest, src, stream=None):
        guard("cuMemcpyDtoHAsync")
        host = _host(dest, "memcpy_dtoh_async")
        try:
            gpu.check_pinned(dest.ctypes.data, dest.nbytes)
        except FakeCudaError as exc:
            raise LogicError("memcpy_dtoh_async: {}".format(exc)) from None
        device = _device(_pointer(src), host.nbytes, "cuMemcpyDtoHAsync")
        gpu.enqueue_copy(_stream_handle(stream, "memcpy_dtoh_async"), host, device, "dtoh")

    def memcpy_htod(dest, src):
        guard("cuMemcpyHtoD")
        host = _host(src, "memcpy_htod")
        _device(_pointer(dest), host.nbytes, "cuMemcpyHtoD")[:] = host

    def memcpy_dtoh(dest, src):
        guard("cuMemcpyDtoH")
        host = _host(dest, "memcpy_dtoh")
        host[:] = _device(_pointer(src), host.nbytes, "cuMemcpyDtoH")

    def get_version():
        return (10, 2, 0)

    def get_driver_version():
        return 10020

    driver = StrictModule("pycuda.driver", FAMILY, "driver", _exposed("driver"),
                          "pycuda.driver TEST DOUBLE (not pycuda)")
    for name, value in (("init", init), ("Device", Device), ("Context", Context),
                        ("Stream", Stream), ("DeviceAllocation", DeviceAllocation),
                        ("PagelockedHostAllocation", PagelockedHostAllocation),
                        ("pagelocked_empty", pagelocked_empty), ("mem_alloc", mem_alloc),
                        ("memcpy_htod", memcpy_htod), ("memcpy_dtoh", memcpy_dtoh),
                        ("memcpy_htod_async", memcpy_htod_async),
                        ("memcpy_dtoh_async", memcpy_dtoh_async), ("get_version", get_version),
                        ("get_driver_version", get_driver_version), ("Error", Error),
                        ("LogicError", LogicError)):
        object.__setattr__(driver, name, value)

    autoinit = _AutoInit("pycuda.autoinit", FAMILY, "autoinit", _exposed("autoinit"),
                         "pycuda.autoinit TEST DOUBLE: the context is made on first use")
    object.__setattr__(autoinit, "_driver_parts", (init, Device))

    package = StrictModule("pycuda", FAMILY, "pycuda", ["driver", "autoinit", "VERSION"],
                           "pycuda TEST DOUBLE (not pycuda)")
    object.__setattr__(package, "driver", driver)
    object.__setattr__(package, "autoinit", autoinit)
    object.__setattr__(package, "VERSION", tuple(version))
    return {"pycuda": package, "pycuda.driver": driver, "pycuda.autoinit": autoinit}


class _AutoInit(StrictModule):
    """``pycuda.autoinit``: like the real one it makes a context on device 0 and pushes it, but
    lazily, on the first access to ``context`` or ``device`` (a module object cannot run code on
    ``import``)."""

    def __getattribute__(self, name):
        if name in ("context", "device") and "context" not in object.__getattribute__(
                self, "__dict__"):
            init, device_class = object.__getattribute__(self, "_driver_parts")
            init()
            device = device_class(0)
            object.__setattr__(self, "device", device)
            object.__setattr__(self, "context", device.make_context())
        return StrictModule.__getattribute__(self, name)
