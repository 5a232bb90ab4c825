"""Explicit INT8 (calibration/qdq.py): Q/DQ models through ONNX Runtime's quantization, their
accuracy against fp32, what TensorRT's parser needs, atomic writes, one-line errors."""
import os

import numpy as np
import pytest

from basics.errors import InputError
from calibration import qdq
from calibration.qdq import QdqConfig, quantize_qdq, tensorrt_issues

pytest.importorskip("onnxruntime.quantization")
onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def quantized(small_cnn_onnx, digits_splits, tmp_path_factory):
    """small_cnn quantized to Q/DQ on the training split (entropy2, batches of 16)."""
    out = str(tmp_path_factory.mktemp("qdq") / "small.int8.onnx")
    result = quantize_qdq(small_cnn_onnx, digits_splits[0].images, out,
                          QdqConfig(batch_size=16))
    return result


def _accuracy(path, data):
    from engines.load import load_engine
    with load_engine(path) as engine:
        logits = engine.infer({"input": data.images})["logits"]
    return float(np.mean(logits.argmax(1) == data.labels))


def test_qdq_model_keeps_the_accuracy(quantized, small_cnn_onnx, digits_splits):
    test = digits_splits[2]
    fp32, int8 = _accuracy(small_cnn_onnx, test), _accuracy(quantized.output_path, test)
    assert fp32 > 0.6
    assert abs(int8 - fp32) <= 0.03, (fp32, int8)
    assert quantized.top1_agreement >= 0.9 and quantized.compared == 256


def test_qdq_model_is_what_tensorrt_parses(quantized, small_cnn_onnx):
    model = onnx.load(quantized.output_path)
    ops = set(node.op_type for node in model.graph.node)
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    assert quantized.int8_ops == ["DequantizeLinear", "QuantizeLinear"]
    assert [entry.version for entry in model.opset_import if entry.domain == ""] == [13]
    assert tensorrt_issues(model) == [] and quantized.notes == []
    # per-channel weight scales (axis attribute) on the convolutions
    constants = dict((init.name, init) for init in model.graph.initializer)
    per_channel = [node for node in model.graph.node if node.op_type == "QuantizeLinear"
                   and node.input[0] in constants and any(a.name == "axis" for a in node.attribute)]
    assert len(per_channel) == 3  # two convolutions and the classifier


def test_result_sidecar_and_no_temp_file(quantized, small_cnn_onnx):
    from basics.fileio import sha256_file
    from engines.model_metadata import ModelMetadata
    assert quantized.batches == 1078 // 16 and quantized.samples == 16 * (1078 // 16)
    meta = ModelMetadata.for_model(quantized.output_path)  # verified against the file's hash
    assert meta.onnx_sha256 == sha256_file(quantized.output_path)
    assert [s.name for s in meta.inputs] == ["input"] and meta.outputs[0].shape == (-1, 10)
    assert meta.parity["reference_sha256"] == sha256_file(small_cnn_onnx)
    assert meta.parity["top1_agreement"] == quantized.top1_agreement
    folder = os.path.dirname(quantized.output_path)
    assert sorted(os.listdir(folder)) == ["small.int8.onnx", "small.int8.onnx.json"]
    data = quantized.to_dict()
    assert data["format"] == "qdq" and data["algorithm"] == "entropy2" and data["per_channel"]
    lines = quantized.lines("digits:train")
    assert "on digits:train" in lines[0] and "top-1 agreement" in lines[2]
    assert "runs it as u8s8" in lines[1]


def test_onnxruntime_builds_and_runs_the_qdq_model(quantized, digits_splits, tmp_path):
    from engines.build import build_engine
    from engines.build_config import BuildConfig
    from engines.load import load_engine
    from engines.cpu_int8 import cpu_form, this_cpu_int8_path
    from engines.int8_gate import Int8Gate
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    out = str(tmp_path / "q.engine")
    sidecar = build_engine(quantized.output_path, out,
                           BuildConfig(precision="int8", backend="onnxruntime", max_batch=64),
                           Int8Gate(digits_splits[0].images))
    assert sidecar.precision == "int8" and any("DequantizeLinear" in n for n in sidecar.notes)
    x = digits_splits[2].images[:64]
    form = cpu_form(onnx.load(quantized.output_path), this_cpu_int8_path())
    with load_engine(out) as engine, OnnxRuntimeEngine(form.SerializeToString()) as plain:
        np.testing.assert_allclose(engine.infer({"input": x})["logits"],
                                   plain.infer({"input": x})["logits"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["8.2", "10"])
def test_tensorrt_builds_the_qdq_model_as_explicit_int8(quantized, tmp_path, monkeypatch, mode):
    from engines.build import build_engine
    from engines.build_config import BuildConfig
    from tests.engines.trt_double import install_trt_double
    install_trt_double(monkeypatch, mode)
    sidecar = build_engine(quantized.output_path, str(tmp_path / "q.engine"),
                           BuildConfig(precision="int8", backend="tensorrt", max_batch=8))
    assert sidecar.backend == "tensorrt"
    assert "int8: explicit quantization from the model's Q/DQ nodes" in sidecar.notes


@pytest.mark.parametrize("algorithm", ["minmax", "percentile"])
def test_other_algorithms_and_max_batches(small_cnn_onnx, digits_splits, tmp_path, algorithm):
    out = str(tmp_path / "sub" / "m.int8.onnx")  # the folder is created
    result = quantize_qdq(small_cnn_onnx, digits_splits[0], out,
                          QdqConfig(algorithm, batch_size=10, max_batches=3))
    assert (result.batches, result.samples) == (3, 30)
    assert abs(_accuracy(out, digits_splits[2]) - _accuracy(small_cnn_onnx, digits_splits[2])) \
        <= 0.05


def test_metadata_of_the_fp32_model_is_carried_over(small_cnn_onnx, digits_splits, tmp_path):
    import shutil

    from engines.model_metadata import ModelMetadata, sidecar_path
    path = str(tmp_path / "m.onnx")
    shutil.copy(small_cnn_onnx, path)
    meta = ModelMetadata.load(sidecar_path(small_cnn_onnx))
    meta.class_names = ["digit {}".format(i) for i in range(10)]
    meta.save(sidecar_path(path))
    result = quantize_qdq(path, digits_splits[0].images[:64], str(tmp_path / "q.onnx"),
                          QdqConfig(batch_size=32))
    out = ModelMetadata.for_model(result.output_path)
    assert out.class_names == meta.class_names and out.preprocessing == meta.preprocessing
    meta.onnx_sha256 = "0" * 64  # a stale sidecar: refused before any work
    meta.save(sidecar_path(path))
    with pytest.raises(InputError, match="describes another model"):
        quantize_qdq(path, digits_splits[0].images[:64], str(tmp_path / "q2.onnx"))
    assert not os.path.exists(str(tmp_path / "q2.onnx"))


@pytest.mark.parametrize("images, config, message", [
    (np.zeros((0, 1, 8, 8), np.float32), None, "the calibration set is empty"),
    (np.zeros((5, 1, 8, 8), np.float32), None, "at least one full batch of 8 images, got 5"),
    (np.zeros((8, 8, 8), np.float32), None, "must be NCHW"),
])
def test_bad_calibration_data(small_cnn_onnx, tmp_path, images, config, message):
    out = tmp_path / "q.onnx"
    with pytest.raises(InputError, match=message):
        quantize_qdq(small_cnn_onnx, images, str(out), config)
    assert os.listdir(str(tmp_path)) == []  # nothing written, no temp file left


@pytest.mark.parametrize("kwargs, message", [
    ({"algorithm": "kl"}, "algorithm must be one of entropy2, minmax, percentile, got 'kl'"),
    ({"batch_size": 0}, "batch size must be at least 1, got 0"),
    ({"max_batches": 0}, "max_batches must be at least 1, got 0"),
])
def test_bad_configs(kwargs, message):
    with pytest.raises(InputError, match=message):
        QdqConfig(**kwargs)


def test_bad_paths(small_cnn_onnx, tmp_path):
    images = np.zeros((8, 1, 8, 8), np.float32)
    with pytest.raises(InputError, match="no such ONNX file"):
        quantize_qdq(str(tmp_path / "none.onnx"), images, str(tmp_path / "q.onnx"))
    with pytest.raises(InputError, match="the output must end in .onnx"):
        quantize_qdq(small_cnn_onnx, images, str(tmp_path / "q.cache"))
    with pytest.raises(InputError, match="would overwrite the fp32 model"):
        quantize_qdq(small_cnn_onnx, images, small_cnn_onnx)


def test_onnxruntime_failure_is_one_line_and_keeps_the_old_output(small_cnn_onnx, tmp_path,
                                                                  monkeypatch):
    import onnxruntime.quantization as quantization
    out = tmp_path / "q.onnx"
    out.write_bytes(b"previous model")

    def broken(*args, **kwargs):
        raise ValueError("No data is collected.\nsecond line")
    monkeypatch.setattr(quantization, "quantize_static", broken)
    with pytest.raises(InputError) as info:
        quantize_qdq(small_cnn_onnx, np.zeros((8, 1, 8, 8), np.float32), str(out))
    assert str(info.value).endswith("could not quantize {}: ValueError: No data is collected."
                                    .format(small_cnn_onnx))
    assert out.read_bytes() == b"previous model" and os.listdir(str(tmp_path)) == ["q.onnx"]


def test_onnxruntime_noise_stays_off_the_terminal(small_cnn_onnx, digits_splits, tmp_path, capfd):
    import logging
    handlers = list(logging.getLogger().handlers)
    quantize_qdq(small_cnn_onnx, digits_splits[0].images[:128], str(tmp_path / "q.onnx"),
                 QdqConfig("entropy2", batch_size=16, max_batches=2))
    captured = capfd.readouterr()
    assert captured.out == "" and "pre-processing" not in captured.err
    assert logging.getLogger().handlers == handlers  # no basicConfig left behind


def test_tensorrt_issues_finds_quantized_biases_and_zero_points(small_cnn_onnx, digits_splits,
                                                               tmp_path):
    import onnxruntime.quantization as quantization

    from calibration.sources import BatchReader
    out = str(tmp_path / "ort_default.onnx")
    quantization.quantize_static(
        small_cnn_onnx, out, BatchReader(digits_splits[0].images[:32], "input", 16),
        quant_format=quantization.QuantFormat.QDQ, activation_type=quantization.QuantType.QUInt8,
        weight_type=quantization.QuantType.QInt8)  # ONNX Runtime's defaults: not for TensorRT
    issues = tensorrt_issues(onnx.load(out))
    assert any("non-zero zero point" in issue for issue in issues)
    assert any("reads the quantized initializer" in issue and "int32" in issue for issue in issues)


def test_default_output():
    assert qdq.default_output("models/m.onnx") == "models/m.int8.onnx"
    assert qdq.default_output("m") == "m.int8.onnx"
