"""The simulated GPU behind the TEST DOUBLE: device memory, pinned host ranges, streams, contexts.

Device memory is a set of numpy byte buffers keyed by fake integer pointers (far from any host
address); a pointer is valid anywhere inside a live allocation. Host memory handed to a copy must
be page-locked (``pagelocked_empty`` / ``cudaHostRegister``). Copies and inference queued on a
stream run only when the stream is synchronized, so a backend that reads its outputs before
synchronizing gets stale data, as it would on a real GPU.
"""
import ctypes
import threading

import numpy as np


class FakeCudaError(Exception):
    """A misuse the real CUDA would answer with an error code or a crash."""


class FakeStream(object):
    def __init__(self, handle):
        self.handle = handle
        self.queue = []
        self.destroyed = False

    def synchronize(self):
        queue, self.queue = self.queue, []
        for job in queue:
            job()


class FakeGpu(object):
    """One simulated GPU: ``name``, compute capability ``cc`` (e.g. (5, 3))."""

    POINTER_BASE = 0x7A0000000000
    ALIGN = 256

    def __init__(self, name, cc, total_bytes=4 << 30):
        self.name = name
        self.cc = tuple(cc)
        self.total_bytes = total_bytes
        self.allocations = {}  # pointer -> np.uint8 array
        self.private = set()  # pointers allocated in a non-primary pycuda context
        self.pinned = {}  # host address -> nbytes
        self.streams = {}
        self._next_pointer = self.POINTER_BASE
        self._next_stream = 0x5000
        self.local = threading.local()  # pycuda's per-thread context stack
        self.counts = {"malloc": 0, "free": 0, "htod": 0, "dtoh": 0, "sync": 0, "launch": 0}

    # -- device memory ---------------------------------------------------------------------
    def malloc(self, nbytes, primary=True):
        """A new allocation; ``primary=False``: made in a non-primary context (make_context)."""
        nbytes = int(nbytes)
        if nbytes <= 0:
            raise FakeCudaError("invalid allocation size {}".format(nbytes))
        if sum(a.nbytes for a in self.allocations.values()) + nbytes > self.total_bytes:
            raise FakeCudaError("out of memory")
        pointer = self._next_pointer
        self._next_pointer += (nbytes + self.ALIGN - 1) // self.ALIGN * self.ALIGN + self.ALIGN
        self.allocations[pointer] = np.zeros(nbytes, dtype=np.uint8)
        if not primary:
            self.private.add(pointer)
        self.counts["malloc"] += 1
        return pointer

    def free(self, pointer):
        if pointer not in self.allocations:
            raise FakeCudaError("free of a pointer that is not a live allocation: {:#x}".format(
                int(pointer)))
        del self.allocations[pointer]
        self.private.discard(pointer)
        self.counts["free"] += 1

    def region(self, pointer, nbytes):
        """The bytes ``[pointer, pointer + nbytes)`` of one live allocation, as a uint8 view."""
        pointer, nbytes = int(pointer), int(nbytes)
        for base, buffer in self.allocations.items():
            if base <= pointer < base + buffer.nbytes:
                offset = pointer - base
                if offset + nbytes > buffer.nbytes:
                    raise FakeCudaError("access of {} bytes at {:#x} overruns the {}-byte "
                                        "allocation at {:#x}".format(nbytes, pointer, buffer.nbytes,
                                                                     base))
                return buffer[offset:offset + nbytes]
        raise FakeCudaError("{:#x} is not a device pointer (no live allocation holds it)".format(
            pointer))

    def trt_region(self, pointer, nbytes):
        """:meth:`region` as TensorRT sees it: TensorRT runs in the device's primary context (the
        CUDA runtime's), so memory of another context (``pycuda.autoinit``, ``make_context``) is
        an illegal address there."""
        region = self.region(pointer, nbytes)
        for base in self.private:
            if base <= int(pointer) < base + self.allocations[base].nbytes:
                raise FakeCudaError("{:#x} belongs to a non-primary CUDA context (pycuda.autoinit / "
                                    "make_context); TensorRT runs in the primary context: an "
                                    "illegal memory access".format(int(pointer)))
        return region

    # -- host memory -----------------------------------------------------------------------
    def pin(self, address, nbytes):
        self.pinned[int(address)] = int(nbytes)

    def unpin(self, address):
        if int(address) not in self.pinned:
            raise FakeCudaError("host memory at {:#x} is not registered".format(int(address)))
        del self.pinned[int(address)]

    def check_pinned(self, address, nbytes):
        address, nbytes = int(address), int(nbytes)
        for base, size in self.pinned.items():
            if base <= address and address + nbytes <= base + size:
                return
        raise FakeCudaError("host memory at {:#x} ({} bytes) is not page-locked: allocate it with "
                            "pagelocked_empty / register it with cudaHostRegister".format(
                                address, nbytes))

    def host_view(self, address, nbytes):
        """The host bytes at a (pinned) address as a writable uint8 array."""
        self.check_pinned(address, nbytes)
        return np.ctypeslib.as_array((ctypes.c_uint8 * int(nbytes)).from_address(int(address)))

    # -- streams ---------------------------------------------------------------------------
    def new_stream(self):
        self._next_stream += 16
        self.streams[self._next_stream] = FakeStream(self._next_stream)
        return self.streams[self._next_stream]

    def stream(self, handle):
        stream = self.streams.get(int(handle))
        if stream is None or stream.destroyed:
            raise FakeCudaError("{:#x} is not a live CUDA stream".format(int(handle)))
        return stream

    def destroy_stream(self, handle):
        stream = self.stream(handle)
        stream.synchronize()
        stream.destroyed = True
        del self.streams[int(handle)]

    def enqueue_copy(self, handle, destination, source, kind):
        """Queue ``destination[:] = source`` (two uint8 views) on stream ``handle``."""
        stream = self.stream(handle)
        self.counts[kind] += 1

        def job():
            destination[:] = source
        stream.queue.append(job)

    # -- pycuda contexts -------------------------------------------------------------------
    def context_stack(self):
        stack = getattr(self.local, "stack", None)
        if stack is None:
            stack = self.local.stack = []
        return stack

    def require_context(self, what):
        stack = self.context_stack()
        if not stack or stack[-1]._detached:
            raise FakeCudaError("{} failed: invalid device context (no CUDA context is current "
                                "in this thread: push one first)".format(what))

    def live_allocations(self):
        return len(self.allocations)
