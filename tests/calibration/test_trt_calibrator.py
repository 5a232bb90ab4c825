"""TensorRT INT8 calibrators (calibration/trt_calibrator.py): caches, batches, the protocol
TensorRT drives (exercised through the test double of TensorRT 8.2 and 10.x)."""
import os
import types

import numpy as np
import pytest

from basics.errors import InputError
from calibration import trt_calibrator
from engines import tensorrt_calibrator
from tests.engines.trt_double import install_trt_double

pytest.importorskip("onnx")


@pytest.fixture(params=["8.2", "10"], ids=["trt8.2", "trt10"])
def double(request, monkeypatch):
    return install_trt_double(monkeypatch, request.param)


def test_parse_cache_reads_header_and_algorithm():
    cache = tensorrt_calibrator.parse_cache(b"TRT-8201-EntropyCalibration2\ninput: 3c010a14\n")
    assert (cache.header, cache.algorithm) == ("TRT-8201-EntropyCalibration2", "entropy2")
    assert tensorrt_calibrator.parse_cache(b"TRT-101601-MinMaxCalibration\n").algorithm == "minmax"


@pytest.mark.parametrize("data, message", [
    (b"hello\n", "not a TensorRT calibration cache"),
    (b"TRT-x-EntropyCalibration2\n", "not a TensorRT calibration cache"),
    (b"\xff\xfe\n", "not a TensorRT calibration cache"),
    (b"TRT-8201-LegacyCalibration\n", "written by TensorRT's LegacyCalibration calibrator"),
])
def test_parse_cache_rejects(data, message):
    with pytest.raises(InputError, match=message):
        tensorrt_calibrator.parse_cache(data)


def test_read_cache_missing_and_empty(tmp_path):
    with pytest.raises(InputError, match="no such calibration cache"):
        tensorrt_calibrator.read_cache(str(tmp_path / "none.cache"))
    empty = tmp_path / "empty.cache"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="is empty"):
        tensorrt_calibrator.read_cache(str(empty))


def test_iter_batches_drops_the_partial_batch_and_casts():
    images = np.arange(10 * 4, dtype=np.float64).reshape(10, 1, 2, 2)
    batches = list(trt_calibrator.iter_batches(images, 4))
    assert [b.shape for b in batches] == [(4, 1, 2, 2), (4, 1, 2, 2)]
    assert all(b.dtype == np.float32 and b.flags.c_contiguous for b in batches)
    assert len(list(trt_calibrator.iter_batches(images, 3, max_batches=2))) == 2


@pytest.mark.parametrize("images, batch_size, max_batches, message", [
    (np.zeros((4, 1, 2, 2)), 0, None, "batch size must be positive"),
    (np.zeros((3, 1, 2, 2)), 4, None, "at least one full batch of 4 images, got 3"),
    (np.zeros((8, 1, 2, 2)), 4, 0, "max_batches must be at least 1"),
])
def test_iter_batches_rejects(images, batch_size, max_batches, message):
    with pytest.raises(InputError, match=message):
        trt_calibrator.iter_batches(images, batch_size, max_batches)


def test_make_calibrator_rejects_bad_arguments(double):
    with pytest.raises(InputError, match="needs batches of data or a calibration cache"):
        tensorrt_calibrator.make_calibrator()
    with pytest.raises(InputError, match="overwrite=True needs batches"):
        tensorrt_calibrator.make_calibrator(cache_path="x.cache", overwrite=True)
    with pytest.raises(InputError, match="algorithm must be one of entropy2, minmax"):
        tensorrt_calibrator.make_calibrator("percentile", cache_path="x.cache")
    with pytest.raises(InputError, match="has no batches"):
        tensorrt_calibrator.make_calibrator(batches=[])


def test_calibrators_subclass_tensorrt_bases(double):
    trt = double.trt
    entropy = tensorrt_calibrator.make_calibrator("entropy2", cache_path="x.cache")
    minmax = tensorrt_calibrator.make_calibrator("minmax", cache_path="x.cache")
    assert isinstance(entropy, trt.IInt8EntropyCalibrator2)
    assert isinstance(minmax, trt.IInt8MinMaxCalibrator)
    assert entropy.get_algorithm() == trt.CalibrationAlgoType.ENTROPY_CALIBRATION_2
    assert minmax.get_algorithm() == trt.CalibrationAlgoType.MINMAX_CALIBRATION


def test_no_calibrators_in_tensorrt_11():
    trt11 = types.SimpleNamespace(__version__="11.1.0")
    with pytest.raises(InputError, match="TensorRT 11.1.0 has no IInt8EntropyCalibrator2 .*Q/DQ"):
        tensorrt_calibrator.make_calibrator(cache_path="x.cache", trt=trt11)


@pytest.mark.parametrize("algorithm, tag", [("entropy2", "EntropyCalibration2"),
                                            ("minmax", "MinMaxCalibration")])
def test_calibrate_to_cache_writes_the_cache(double, cnn_onnx, digits_splits, tmp_path,
                                             algorithm, tag):
    cache = str(tmp_path / "sub" / "model.cache")
    report = trt_calibrator.calibrate_to_cache(cnn_onnx, digits_splits[0], cache,
                                               algorithm=algorithm, batch_size=10, max_batches=3)
    assert report["batches"] == 3 and report["samples"] == 30
    assert report["header"].endswith("-" + tag) and report["algorithm"] == algorithm
    with open(cache, "rb") as handle:
        parsed = tensorrt_calibrator.parse_cache(handle.read())
    assert parsed.algorithm == algorithm and parsed.header == report["header"]
    # calibrated on the network a default build parses: the confidence head included
    assert set(line.split(":")[0] for line in parsed.data.decode().splitlines()[1:]) == {
        "input", "logits", "probs", "confidence", "label"}
    assert [n for n in os.listdir(str(tmp_path / "sub"))] == ["model.cache"]  # no temp file left
    assert double.gpu.live_allocations() == 0  # the calibrator freed its device memory
    assert double.gpu.counts["htod"] == 3


def test_calibrator_reads_an_existing_cache_and_overwrite_ignores_it(double, tmp_path):
    path = tmp_path / "model.cache"
    path.write_bytes(b"TRT-8201-EntropyCalibration2\ninput: 3c010a14\n")
    reader = tensorrt_calibrator.make_calibrator(cache_path=str(path))
    assert reader.read_calibration_cache() == path.read_bytes() and reader.cache_read
    assert reader.get_batch(["input"]) is None and reader.cache_rejected
    batches = [np.zeros((2, 1, 8, 8), np.float32)]
    writer = tensorrt_calibrator.make_calibrator(batches=batches, cache_path=str(path), overwrite=True)
    assert writer.get_batch_size() == 2
    assert writer.read_calibration_cache() is None
    writer.write_calibration_cache(memoryview(b"TRT-8201-EntropyCalibration2\nnew\n"))
    assert path.read_bytes().endswith(b"new\n") and writer.cache_bytes.endswith(b"new\n")


def test_get_batch_uploads_to_device_memory(double):
    batches = [np.full((2, 1, 8, 8), value, np.float32) for value in (1.0, 2.0)]
    calibrator = tensorrt_calibrator.make_calibrator(batches=batches)
    try:
        for value in (1.0, 2.0):
            (pointer,) = calibrator.get_batch(["input"])
            raw = double.gpu.region(pointer, 2 * 64 * 4)
            np.testing.assert_array_equal(raw.view(np.float32), np.full(128, value, np.float32))
        assert calibrator.get_batch(["input"]) is None and calibrator.batches_used == 2
        assert calibrator.error is None
    finally:
        calibrator.close()
        calibrator.close()
    assert double.gpu.live_allocations() == 0


@pytest.mark.parametrize("batches, names, message", [
    ([np.zeros((2, 1, 8, 8), np.float32)], ["a", "b"], "has inputs \\['a', 'b'\\]"),
    ([{"a": np.zeros((2, 3), np.float32)}], ["a", "b"], "lacks inputs \\['b'\\]"),
    ([np.zeros((2, 1), np.float32), np.zeros((3, 1), np.float32)], ["x"], "every batch needs 2"),
])
def test_get_batch_problems_are_kept_for_the_build(double, batches, names, message):
    calibrator = tensorrt_calibrator.make_calibrator(batches=batches)
    try:
        while calibrator.get_batch(names) is not None:
            pass
        assert calibrator.error is not None and message.replace("\\", "") in \
            calibrator.error.replace("\\", "")
    finally:
        calibrator.close()


def test_calibration_errors_surface_as_input_errors(double, cnn_onnx, tmp_path):
    from engines.build_config import BuildConfig
    from engines.tensorrt_build import build_tensorrt
    batches = [{"image": np.zeros((4, 1, 8, 8), np.float32)}]  # the model's input is 'input'
    calibrator = tensorrt_calibrator.make_calibrator(batches=batches, cache_path=str(tmp_path / "c"))
    with pytest.raises(InputError, match="INT8 calibration failed: InputError: calibration batch "
                                         "lacks inputs \\['input'\\]"):
        build_tensorrt(cnn_onnx, BuildConfig(precision="int8", max_batch=4),
                       calibrator=calibrator)
    calibrator.close()


def test_unwritable_cache_is_reported(double, cnn_onnx, digits_splits, tmp_path):
    blocker = tmp_path / "model.cache"
    blocker.mkdir()  # a folder where the cache file should go
    with pytest.raises(InputError, match="INT8 calibration failed: cannot write .*model.cache"):
        trt_calibrator.calibrate_to_cache(cnn_onnx, digits_splits[0].images, str(blocker),
                                          batch_size=8, max_batches=1)


def test_an_error_after_some_batches_fails_the_build(double, cnn_onnx):
    from engines.build_config import BuildConfig
    from engines.tensorrt_build import build_tensorrt
    batches = [np.zeros((2, 1, 8, 8), np.float32), np.zeros((3, 1, 8, 8), np.float32)]
    calibrator = tensorrt_calibrator.make_calibrator(batches=batches)
    try:
        with pytest.raises(InputError, match="INT8 calibration failed: .*every batch needs 2"):
            build_tensorrt(cnn_onnx, BuildConfig(precision="int8", max_batch=4),
                           calibrator=calibrator)
        assert calibrator.batches_used == 1  # TensorRT had calibrated on the first batch
    finally:
        calibrator.close()
