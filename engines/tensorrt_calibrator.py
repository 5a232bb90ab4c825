"""TensorRT INT8 calibrators (entropy2, minmax): from a ready cache, or from batches of data.

They sit beside the builder (:mod:`engines.tensorrt_build`), which takes one as an argument, as
Polygraphy's ``CreateConfig(calibrator=...)`` does; :mod:`calibration.trt_calibrator` feeds them
data and writes the cache.

TensorRT calls four methods on a Python calibrator while it builds an INT8 engine:
``get_batch_size()``, ``get_batch(names)`` (device pointers of the next batch, one per input
name, or None when the data is used up), ``read_calibration_cache()`` (bytes or None) and
``write_calibration_cache(cache)``. ``make_calibrator`` returns a subclass of
``trt.IInt8EntropyCalibrator2`` or ``trt.IInt8MinMaxCalibrator`` implementing them:

- with ``cache_path`` only, it hands TensorRT the cache (``toolkit build --precision int8
  --calibration-cache FILE``); if TensorRT asks for data anyway it rejected the cache
  (``cache_rejected``), and the build fails with a clear message;
- with ``batches`` (an iterable of float32 NCHW arrays, or of ``{input name: array}``), it copies
  each batch to device memory (pycuda or cuda-python, see :mod:`engines.cuda_memory`) and writes
  the cache TensorRT produces to ``cache_path`` atomically
  (``calibration.trt_calibrator.calibrate_to_cache`` does it all).

TensorRT 8.x calls these methods from C++ code marked ``noexcept``: an exception escaping one of
them aborts the process. So every callback catches its own errors and returns what TensorRT
expects (None, or the batch size); the reason is kept in ``error`` (fatal: the build fails with
it) or ``notes`` (a cache that could not be read: calibration goes on from data).

Calibration caches belong to one TensorRT version (their first line says which, e.g.
``TRT-8201-EntropyCalibration2``); TensorRT 11 has no calibrators (use a Q/DQ ONNX instead).
"""
import contextlib
import os

import numpy as np

from basics.errors import InputError
from basics.fileio import write_bytes_atomic
from basics.lazy import lazy_import

ALGORITHMS = ("entropy2", "minmax")
_BASES = {"entropy2": "IInt8EntropyCalibrator2", "minmax": "IInt8MinMaxCalibrator"}
_TAGS = {"EntropyCalibration2": "entropy2", "MinMaxCalibration": "minmax"}
_CLASSES = {}  # TensorRT base class -> our subclass of it


class CalibrationCache(object):
    """A calibration cache's bytes, its first line (``header``) and its ``algorithm`` (or None)."""

    def __init__(self, data, header, algorithm):
        self.data = data
        self.header = header
        self.algorithm = algorithm


def parse_cache(data, source="the calibration cache"):
    """A :class:`CalibrationCache` from bytes; InputError unless it looks like TensorRT's."""
    first = bytes(data).split(b"\n", 1)[0].strip()
    try:
        header = first.decode("ascii")
    except UnicodeDecodeError:
        header = ""
    parts = header.split("-", 2)
    if len(parts) != 3 or parts[0] != "TRT" or not parts[1].isdigit():
        raise InputError("{} is not a TensorRT calibration cache (its first line should look like "
                         "TRT-8201-EntropyCalibration2)".format(source))
    algorithm = _TAGS.get(parts[2])
    if algorithm is None:
        raise InputError("{} was written by TensorRT's {} calibrator; the toolkit reads {} caches"
                         .format(source, parts[2], " and ".join(sorted(_TAGS))))
    return CalibrationCache(bytes(data), header, algorithm)


def read_cache(path):
    """The :class:`CalibrationCache` at ``path``; InputError when missing, empty or not a cache."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError("no such calibration cache: {}".format(path))
    with open(path, "rb") as handle:
        data = handle.read()
    if not data:
        raise InputError("calibration cache {} is empty".format(path))
    return parse_cache(data, "calibration cache {}".format(path))


def calibrator_class(trt, algorithm):
    """Our subclass of TensorRT's calibrator base for ``algorithm`` ("entropy2" or "minmax")."""
    if algorithm not in ALGORITHMS:
        raise InputError("calibration algorithm must be one of {}, got '{}'".format(
            ", ".join(ALGORITHMS), algorithm))
    base = getattr(trt, _BASES[algorithm], None)
    if base is None:
        raise InputError("TensorRT {} has no {} (calibrators are gone from TensorRT 11): use a "
                         "Q/DQ ONNX, `toolkit calibrate MODEL.onnx --data DATA --format qdq` "
                         "instead".format(trt.__version__, _BASES[algorithm]))
    cls = _CLASSES.get(base)
    if cls is None:
        name = "EntropyCalibrator2" if algorithm == "entropy2" else "MinMaxCalibrator"
        cls = _CLASSES[base] = type(name, (_Calibrator, base), {
            "__doc__": "INT8 calibrator ({}) over trt.{}.".format(algorithm, base.__name__),
            "algorithm": algorithm})
    return cls


def make_calibrator(algorithm="entropy2", batches=None, cache_path=None, batch_size=None,
                    overwrite=False, memory=None, trt=None):
    """A TensorRT calibrator; see the module docstring.

    ``batches``: iterable of arrays or ``{input name: array}`` (None: cache only);
    ``cache_path``: cache to read, and to write after calibrating from ``batches``;
    ``batch_size``: the calibration batch (default: the first batch's length, or 1 when cache only);
    ``overwrite``: ignore an existing cache and calibrate from ``batches``;
    ``memory``: an :class:`engines.cuda_memory.CudaMemory` (default: opened on first batch).
    """
    trt = trt or lazy_import("tensorrt", "INT8 calibration")
    if batches is None and cache_path is None:
        raise InputError("a calibrator needs batches of data or a calibration cache")
    if batches is None and overwrite:
        raise InputError("overwrite=True needs batches to calibrate from")
    return calibrator_class(trt, algorithm)(batches, cache_path, batch_size, overwrite, memory)


class _Calibrator(object):
    """The logic shared by the entropy2 and minmax calibrators (mixed in before TensorRT's base).

    After a build: ``batches_used``, ``cache_read`` (the cache was handed to TensorRT),
    ``cache_rejected`` (TensorRT wanted data from a cache-only calibrator), ``cache_bytes``
    (what TensorRT wrote), ``error`` (the first exception text from a callback; TensorRT only
    sees None), ``notes`` (what went wrong in the callbacks, for the build notes).
    """

    algorithm = None

    def __init__(self, batches, cache_path, batch_size, overwrite, memory):
        super(_Calibrator, self).__init__()  # TensorRT's trampoline base must be initialised
        self.cache_path = None if cache_path is None else os.fspath(cache_path)
        self._overwrite = bool(overwrite)
        self._iterator = None if batches is None else iter(batches)
        self._pending = None
        if batch_size is None and self._iterator is not None:
            self._pending = next(self._iterator, None)
            if self._pending is None:
                raise InputError("the calibration data has no batches")
            batch_size = len(_first(self._pending))
        self.batch_size = int(batch_size or 1)
        self._memory = memory
        self._owns_memory = memory is None
        self._host = {}
        self._device = {}
        self.batches_used = 0
        self.cache_read = False
        self.cache_rejected = False
        self.cache_bytes = None
        self.error = None
        self.notes = []

    # -- called by TensorRT (from noexcept C++ in 8.x: nothing may escape) ----------------------
    def get_batch_size(self):
        try:
            return int(self.batch_size)
        except Exception as exc:  # noqa: BLE001 - an escaping exception aborts TensorRT 8.x
            self._fail("get_batch_size", exc)
            return 1

    def get_batch(self, names, *unused):
        """Device pointers of the next batch, in the order of ``names``; None when done."""
        try:
            if self._iterator is None:
                self.cache_rejected = True
                return None
            batch = self._next()
            if batch is None:
                return None
            pointers = self._upload(self._as_feeds(batch, list(names)), list(names))
            self.batches_used += 1
            return pointers
        except Exception as exc:  # noqa: BLE001 - kept for the build, TensorRT only sees None
            self._fail("get_batch", exc)
            return None

    def read_calibration_cache(self):
        """The cache's bytes, or None (calibrate from data); a cache that cannot be read is a
        note, not an error: TensorRT then asks for data."""
        try:
            if self.cache_path is None or (self._overwrite and self._iterator is not None):
                return None
            if not os.path.isfile(self.cache_path) or os.path.getsize(self.cache_path) == 0:
                return None
            with open(self.cache_path, "rb") as handle:
                data = handle.read()
            self.cache_read = True
            return data
        except Exception as exc:  # noqa: BLE001 - see get_batch_size
            self.notes.append("int8: cannot read the calibration cache {} ({}: {}); calibrating "
                              "without it".format(self.cache_path, type(exc).__name__, exc))
            return None

    def write_calibration_cache(self, cache):
        try:
            self.cache_bytes = bytes(cache)
            if self.cache_path is not None:
                write_bytes_atomic(self.cache_path, self.cache_bytes)
        except Exception as exc:  # noqa: BLE001 - see get_batch_size
            self._fail("write_calibration_cache", exc, "cannot write {}".format(self.cache_path))
        return None

    def _fail(self, callback, exc, what=None):
        """Keep the first error (the build then fails with it) and note every one."""
        text = "{}: {}".format(what or type(exc).__name__, exc)
        self.notes.append("int8: {}() failed: {}".format(callback, text))
        if self.error is None:
            self.error = text

    # -- ours -----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def activate(self):
        """Make the CUDA context of the batches current while TensorRT builds (pycuda: the device
        pointers handed to TensorRT must live in the context it runs in)."""
        if self._iterator is None:
            yield
            return
        with self._cuda().activate():
            yield

    def _cuda(self):
        if self._memory is None:
            from engines.cuda_memory import open_cuda_memory
            self._memory = open_cuda_memory()
        return self._memory

    def close(self):
        """Free the device memory this calibrator opened; safe twice."""
        memory, self._memory = self._memory, None
        self._host, self._device = {}, {}
        if memory is not None and self._owns_memory:
            memory.close()

    def _next(self):
        if self._pending is not None:
            batch, self._pending = self._pending, None
            return batch
        return next(self._iterator, None)

    def _as_feeds(self, batch, names):
        if not isinstance(batch, dict):
            if len(names) != 1:
                raise InputError("the network has inputs {}; give batches as {{name: array}}".format(
                    list(names)))
            batch = {names[0]: batch}
        missing = [name for name in names if name not in batch]
        if missing:
            raise InputError("calibration batch lacks inputs {}".format(missing))
        feeds = {}
        for name in names:
            array = np.asarray(batch[name])
            if array.dtype.kind == "f" and array.dtype != np.float32:
                array = array.astype(np.float32)
            if not array.shape or array.shape[0] != self.batch_size:
                raise InputError("calibration batch for '{}' has shape {}; every batch needs {} "
                                 "samples".format(name, array.shape, self.batch_size))
            feeds[name] = np.ascontiguousarray(array)
        return feeds

    def _upload(self, feeds, names):
        memory = self._cuda()
        pointers = []
        with memory.activate():
            for name in names:
                array = feeds[name]
                if name not in self._device:
                    self._host[name] = memory.host_buffer(array.size, array.dtype)
                    self._device[name] = (memory.device_buffer(array.nbytes), array.nbytes)
                pointer, nbytes = self._device[name]
                host = self._host[name]
                if array.nbytes != nbytes or host.dtype != array.dtype:
                    raise InputError("calibration batches for '{}' change shape or dtype ({} {})"
                                     .format(name, array.shape, array.dtype))
                view = host[:array.size].reshape(array.shape)
                np.copyto(view, array)
                memory.htod_async(pointer, view)
                pointers.append(pointer)
            memory.synchronize()
        return pointers


def _first(batch):
    return next(iter(batch.values())) if isinstance(batch, dict) else batch


