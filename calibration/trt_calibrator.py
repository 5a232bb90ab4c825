"""Calibrating for TensorRT's implicit INT8: batches from a data set, and a cache written on the device.

``iter_batches`` cuts preprocessed images into the fixed-size batches a calibrator hands TensorRT;
``calibrate_to_cache`` builds the network once with a calibrator (:mod:`engines.tensorrt_calibrator`,
passed into :func:`engines.tensorrt_build.build_tensorrt`) and writes the INT8 calibration cache
that ``toolkit build --precision int8 --calibration-cache`` reads.
"""
import os

import numpy as np

from basics.errors import InputError
from basics.lazy import lazy_import
from engines.build_config import BuildConfig
from engines import cuda_memory
from engines.tensorrt_build import build_tensorrt, platform_precisions
from engines.tensorrt_calibrator import make_calibrator, parse_cache


def iter_batches(images, batch_size, max_batches=None):
    """Contiguous float32 batches of exactly ``batch_size`` images (a last partial batch is
    dropped: TensorRT calibrates at one fixed batch size)."""
    images = getattr(images, "images", images)  # a calibration.datasets.Dataset works too
    images = np.asarray(images)
    batch_size = int(batch_size)
    if batch_size < 1:
        raise InputError("calibration batch size must be positive, got {}".format(batch_size))
    if images.ndim < 2 or len(images) < batch_size:
        raise InputError("calibration needs at least one full batch of {} images, got {}".format(
            batch_size, 0 if images.ndim == 0 else len(images)))
    count = len(images) // batch_size
    if max_batches is not None:
        if int(max_batches) < 1:
            raise InputError("max_batches must be at least 1, got {}".format(max_batches))
        count = min(count, int(max_batches))
    return _slices(images, batch_size, count)


def _slices(images, batch_size, count):
    for index in range(count):
        chunk = images[index * batch_size:(index + 1) * batch_size]
        yield np.ascontiguousarray(chunk, dtype=np.float32 if chunk.dtype.kind == "f" else None)


def calibrate_to_cache(onnx_path, images, cache_path, algorithm="entropy2", batch_size=8,
                       max_batches=None, workspace_mb=256, trt=None):
    """Calibrate ``onnx_path`` on this device's TensorRT from ``images`` (float32 NCHW, already
    preprocessed like the model expects) and write the INT8 calibration cache to ``cache_path``.

    Returns ``{"cache_path", "algorithm", "batches", "samples", "tensorrt_version", "header"}``.
    The cache then feeds ``toolkit build --precision int8 --calibration-cache``.
    """
    trt = trt or lazy_import("tensorrt", "INT8 calibration")
    if platform_precisions(trt)["int8"] is False:
        device = cuda_memory.device_facts()
        raise InputError(
            "this GPU ({}, compute capability {}) has no fast INT8, so TensorRT {} cannot "
            "calibrate for it and an INT8 engine would not run faster here (the Jetson Nano and TX2 "
            "have none): build with --precision fp16 on this device, or calibrate on a Xavier / "
            "Orin; a Q/DQ model for another device needs no GPU: toolkit calibrate {} --data DATA "
            "--format qdq".format(device["gpu_name"], device["compute_capability"],
                                  trt.__version__, onnx_path))
    config = BuildConfig(precision="int8", min_batch=1, opt_batch=batch_size, max_batch=batch_size,
                         workspace_mb=workspace_mb, backend="tensorrt")
    calibrator = make_calibrator(algorithm, batches=iter_batches(images, batch_size, max_batches),
                                 cache_path=cache_path, batch_size=batch_size, overwrite=True,
                                 trt=trt)
    try:
        build_tensorrt(onnx_path, config, trt=trt, calibrator=calibrator)
    finally:
        calibrator.close()
    if calibrator.error:
        raise InputError("INT8 calibration failed: {}".format(calibrator.error))
    if calibrator.cache_bytes is None:
        raise InputError("TensorRT {} calibrated {} but wrote no calibration cache".format(
            trt.__version__, onnx_path))
    cache = parse_cache(calibrator.cache_bytes, "the cache TensorRT wrote")
    return {"cache_path": os.fspath(cache_path), "algorithm": algorithm,
            "batches": calibrator.batches_used, "samples": calibrator.batches_used * batch_size,
            "tensorrt_version": str(trt.__version__), "header": cache.header}
