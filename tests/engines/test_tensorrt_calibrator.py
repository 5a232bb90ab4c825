"""TensorRT calls the calibrator's methods from C++ (noexcept in 8.x): engines/tensorrt_calibrator.py
catches its own errors and returns what TensorRT expects, with the reason in the build notes.
Exercised through the TEST DOUBLE, which aborts (TensorRTAbort) where the real process would."""
import os

import numpy as np
import pytest

from basics.errors import InputError
from engines import tensorrt_calibrator
from engines.build_config import BuildConfig
from tests.engines.trt_double import TensorRTAbort, install_trt_double

pytest.importorskip("onnx")


@pytest.fixture(params=["8.2", "8.5", "10"], ids=["trt8.2", "trt8.5", "trt10"])
def double(request, monkeypatch):
    return install_trt_double(monkeypatch, request.param)


def _batches(count=2, size=4):
    return [np.full((size, 1, 8, 8), 0.5, np.float32) for _ in range(count)]


def _build(onnx_path, calibrator, **config):
    from engines.tensorrt_build import build_tensorrt
    config.setdefault("max_batch", 8)
    return build_tensorrt(onnx_path, BuildConfig(precision="int8", **config),
                          calibrator=calibrator)


def test_an_unreadable_cache_is_a_note_and_calibration_goes_on(double, cnn_onnx, tmp_path,
                                                               monkeypatch):
    path = tmp_path / "model.cache"
    path.write_bytes(b"TRT-8201-EntropyCalibration2\n")
    calibrator = tensorrt_calibrator.make_calibrator(batches=_batches(), cache_path=str(path))

    def unreadable(_path):
        raise PermissionError("[Errno 13] Permission denied")
    monkeypatch.setattr(os.path, "getsize", unreadable)
    _, facts = _build(cnn_onnx, calibrator)
    assert calibrator.error is None and calibrator.batches_used == 2
    assert any("cannot read the calibration cache" in note and "Permission denied" in note
               for note in facts["notes"])


def test_a_failing_batch_source_fails_the_build_with_its_reason(double, cnn_onnx):
    def batches():
        yield _batches(1)[0]
        raise IOError("the camera went away")
    calibrator = tensorrt_calibrator.make_calibrator(batches=batches(), batch_size=4)
    with pytest.raises(InputError, match="INT8 calibration failed: OSError: the camera went away"):
        _build(cnn_onnx, calibrator)


def test_an_unwritable_cache_fails_the_build(double, cnn_onnx, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    calibrator = tensorrt_calibrator.make_calibrator(
        batches=_batches(), cache_path=str(blocker / "model.cache"), overwrite=True)
    with pytest.raises(InputError, match="INT8 calibration failed: cannot write"):
        _build(cnn_onnx, calibrator)


def test_the_batch_size_reaches_tensorrt_as_an_int(double, cnn_onnx):
    calibrator = tensorrt_calibrator.make_calibrator(batches=_batches(), batch_size=4)
    calibrator.batch_size = np.float64(4.0)  # e.g. computed from a float division
    assert type(calibrator.get_batch_size()) is int
    _build(cnn_onnx, calibrator)
    assert calibrator.batches_used == 2


def test_a_bad_batch_size_is_caught_not_raised(double):
    calibrator = tensorrt_calibrator.make_calibrator(batches=_batches(), batch_size=4)
    calibrator.batch_size = "four"
    assert calibrator.get_batch_size() == 1
    assert "get_batch_size" in calibrator.notes[0] and calibrator.error


def test_the_calibration_profile_result_is_checked(double, cnn_onnx):
    calibrator = tensorrt_calibrator.make_calibrator(batches=_batches(), batch_size=4)
    calibrator.batch_size = -1  # TensorRT answers set_calibration_profile with False
    with pytest.raises(InputError, match="refused the calibration profile"):
        _build(cnn_onnx, calibrator)


def test_the_double_aborts_on_an_exception_escaping_a_callback(double, cnn_onnx):
    """What the backend must never do: the double stands for the abort of TensorRT 8.x."""
    calibrator = tensorrt_calibrator.make_calibrator(batches=_batches(), batch_size=4)
    base = type(calibrator).__mro__[2]  # TensorRT's calibrator base, under our _Calibrator

    class Raising(type(calibrator)):
        def read_calibration_cache(self):
            raise OSError("disk on fire")
    raising = Raising(_batches(), None, 4, False, None)
    assert isinstance(raising, base)
    with pytest.raises(TensorRTAbort, match="read_calibration_cache.*disk on fire"):
        _build(cnn_onnx, raising)

    class FloatBatch(type(calibrator)):
        def get_batch_size(self):
            return 4.0
    with pytest.raises(TensorRTAbort, match="Unable to cast .*float"):
        _build(cnn_onnx, FloatBatch(_batches(), None, 4, False, None))
