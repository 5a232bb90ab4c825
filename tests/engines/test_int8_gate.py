"""engines/int8_gate.py through build_engine: a failing INT8 model is never written; eval data,
--max-accuracy-drop and the auto-fallback; the ONNX Runtime engine holds the form a (faked) CPU
takes."""
import os

import numpy as np
import pytest

from basics.errors import InputError
from engines.build import build_engine
from engines.build_config import BuildConfig
from engines.int8_gate import Int8Gate, Int8GateError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime.quantization")

INT8 = BuildConfig(precision="int8", backend="onnxruntime", max_batch=64)


@pytest.fixture(scope="module")
def broken_model(qdq_model, tmp_path_factory):
    """The Q/DQ model with the activation scale in front of the second convolution 200x too big:
    that layer's input collapses to a few levels."""
    from onnx import numpy_helper

    from engines.cpu_int8 import quantized_layers
    model = onnx.load(qdq_model)
    conv = [name for name in quantized_layers(model) if name.endswith("Conv")][1]
    node = [n for n in model.graph.node if n.name == conv][0]
    dq = [n for n in model.graph.node if n.output[0] == node.input[0]][0]
    constants = dict((init.name, init) for init in model.graph.initializer)
    scale = constants[dq.input[1]]
    scale.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(scale) * 200, scale.name))
    path = str(tmp_path_factory.mktemp("broken") / "broken.int8.onnx")
    onnx.save(model, path)
    return path, conv


def test_a_failing_int8_model_is_refused_and_nothing_is_written(broken_model, digits_splits,
                                                                tmp_path):
    path, _ = broken_model
    out = tmp_path / "b.engine"
    with pytest.raises(Int8GateError) as info:
        build_engine(path, str(out), INT8, Int8Gate(digits_splits[0].images))
    message = str(info.value)
    assert "INT8 top-1 agrees with fp32 on only" in message and "\n" not in message
    assert "--auto-fallback" in message
    assert os.listdir(str(tmp_path)) == []


def test_auto_fallback_keeps_the_sensitive_layer_in_float(broken_model, digits_splits, tmp_path):
    path, conv = broken_model
    test = digits_splits[2]
    gate = Int8Gate(digits_splits[0].images, eval_images=test.images, eval_labels=test.labels,
                    auto_fallback=True)
    sidecar = build_engine(path, str(tmp_path / "b.engine"), INT8, gate)
    notes = "\n".join(sidecar.notes)
    assert "auto-fallback kept 1 layer(s) in floating point: {}".format(conv) in notes
    assert "speed (ms per batch of 32 on this machine): fp32" in notes
    assert "eval data (360 labelled samples): INT8 top-1" in notes
    engine_model = onnx.load_from_string(open(str(tmp_path / "b.engine"), "rb").read())
    node = [n for n in engine_model.graph.node if n.name == conv][0]
    producers = dict((out, n.op_type) for n in engine_model.graph.node for out in n.output)
    assert all(producers.get(name) != "DequantizeLinear" for name in node.input)


def test_eval_data_report(qdq_model, digits_splits, tmp_path):
    from engines.cpu_int8 import this_cpu_int8_path
    from engines.int8_gate import measure
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    test = digits_splits[2]
    model = onnx.load(qdq_model)
    from engines.cpu_int8 import cpu_form, float_reference
    with OnnxRuntimeEngine(float_reference(model).SerializeToString()) as reference, \
            OnnxRuntimeEngine(cpu_form(model, this_cpu_int8_path()).SerializeToString()) as int8:
        report = measure(reference, int8, Int8Gate(digits_splits[0].images, eval_images=test.images,
                                                   eval_labels=test.labels))
        want = np.mean(reference.infer({"input": test.images})["logits"].argmax(1) == test.labels)
    assert report.fp32_top1 == pytest.approx(want) and report.eval_samples == 360
    assert report.accuracy_drop == pytest.approx(100 * (report.fp32_top1 - report.int8_top1))


class _Fixed(object):
    """An engine double whose logits are fixed: one-hot of ``predictions``."""

    def __init__(self, predictions):
        from engines.base import TensorSpec
        self.predictions = np.asarray(predictions)
        self.inputs = [TensorSpec("input", [-1, 1, 8, 8], np.float32)]
        self.outputs = [TensorSpec("logits", [-1, 10], np.float32)]

    def infer(self, feeds):
        count = len(feeds["input"])
        return {"logits": np.eye(10, dtype=np.float32)[np.resize(self.predictions, count)]}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("bound, fails", [(9.9, True), (10.0, False)])
def test_max_accuracy_drop_is_in_points(bound, fails):
    from engines.int8_gate import run_gate
    labels = np.arange(10)
    int8 = labels.copy()
    int8[3] = 4  # one of ten wrong: 10 points lost, agreement 90% on the eval data
    gate = Int8Gate(np.zeros((10, 1, 8, 8), np.float32), eval_images=np.zeros((10, 1, 8, 8)),
                    eval_labels=labels, max_accuracy_drop=bound, min_agreement=0.0)
    opened = lambda: _Fixed(labels)  # noqa: E731
    if fails:
        with pytest.raises(Int8GateError, match=r"^INT8 top-1 accuracy 90.00% is 10.00 points "
                                                r"below fp32's 100.00% on 10 eval samples "
                                                r"\(--max-accuracy-drop 9.9\)"):
            run_gate(opened, lambda layers: _Fixed(int8), [], gate)
    else:
        report, kept = run_gate(opened, lambda layers: _Fixed(int8), [], gate)
        assert (report.fp32_top1, report.int8_top1, report.eval_agreement) == (1.0, 0.9, 0.9)
        assert report.accuracy_drop == pytest.approx(10.0) and kept == []


def test_the_engine_holds_the_form_a_cpu_without_vnni_takes(qdq_model, digits_splits, tmp_path,
                                                             monkeypatch):
    """A faked AVX2-only CPU: the engine gets 7-bit weights and unsigned activations, and the
    build notes say so, whatever CPU runs the test."""
    from engines import cpu_int8
    from tests.engines.test_cpu_int8 import EPYC_ZEN2
    monkeypatch.setattr(cpu_int8, "this_cpu_int8_path",
                        lambda *args: cpu_int8.int8_path(EPYC_ZEN2, "x86_64"))
    out = str(tmp_path / "q.engine")
    sidecar = build_engine(qdq_model, out, INT8, Int8Gate(digits_splits[0].images))
    assert "ONNX Runtime CPU form u8s8-reduce-range (x86, AVX2 without VNNI" in sidecar.notes[1]
    from tests.engines.test_cpu_int8 import _zero_points
    activation, weights, _ = _zero_points(onnx.load_from_string(open(out, "rb").read()))
    assert activation == {"uint8"}
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in weights) == 64


@pytest.mark.parametrize("kwargs, message", [
    ({"samples": np.zeros((0, 1, 8, 8), np.float32)}, "needs calibration samples"),
    ({"eval_images": np.zeros((2, 1, 8, 8), np.float32)}, "needs images and labels"),
    ({"eval_images": np.zeros((2, 1, 8, 8), np.float32), "eval_labels": np.zeros(3)},
     "has 2 images but 3 labels"),
    ({"max_accuracy_drop": -1}, "in points"),
])
def test_bad_gates(kwargs, message):
    args = dict({"samples": np.zeros((4, 1, 8, 8), np.float32)}, **kwargs)
    with pytest.raises(InputError, match=message):
        Int8Gate(**args)


# -- TensorRT (through the test double: API use, not TensorRT's numerics; the double runs the
# ONNX on ONNX Runtime, Q/DQ nodes included) ----------------------------------------------------

@pytest.mark.parametrize("mode, flag", [("8.2", "STRICT_TYPES"),
                                        ("10", "OBEY_PRECISION_CONSTRAINTS")])
def test_tensorrt_keeps_float_layers_with_layer_precision(monkeypatch, small_cnn_onnx, tmp_path,
                                                          mode, flag):
    from engines.tensorrt_build import build_tensorrt
    from tests.engines.trt_double import engine_header, install_trt_double
    install_trt_double(monkeypatch, mode)
    model = onnx.load(small_cnn_onnx)
    conv = [n.name for n in model.graph.node if n.op_type == "Conv"][0]
    cache = tmp_path / "m.cache"
    cache.write_text("TRT-{}-EntropyCalibration2\n".format("8201" if mode == "8.2" else "101601")
                     + "input: 3c010a14\n")
    engine_bytes, facts = build_tensorrt(small_cnn_onnx, BuildConfig(
        precision="int8", calibration_cache=str(cache), max_batch=8, float_layers=[conv]))
    header = engine_header(engine_bytes)
    head = {"confidence_head/" + n: "FLOAT" for n in ("softmax", "reducemax", "argmax")}
    assert header["layer_precision"] == dict(head, **{conv: "FLOAT"}) and flag in header["flags"]
    assert "int8: 1 layer(s) kept in FP32: {} (layer.precision, {})".format(conv, flag) \
        in facts["notes"]
    with pytest.raises(InputError, match="no layer named nope in the network"):
        build_tensorrt(small_cnn_onnx, BuildConfig(
            precision="int8", calibration_cache=str(cache), max_batch=8, float_layers=["nope"]))


@pytest.mark.parametrize("mode", ["8.2", "10"])
def test_tensorrt_int8_builds_pass_the_gate_with_the_auto_fallback(monkeypatch, broken_model,
                                                                   digits_splits, tmp_path, mode):
    """The broken Q/DQ model fails the gate on TensorRT too; the auto-fallback rebuilds it
    without Q/DQ in front of the sensitive layer."""
    from tests.engines.trt_double import install_trt_double
    install_trt_double(monkeypatch, mode)
    path, conv = broken_model
    config = BuildConfig(precision="int8", backend="tensorrt", max_batch=64)
    with pytest.raises(Int8GateError, match="INT8 top-1 agrees with fp32 on only"):
        build_engine(path, str(tmp_path / "a.engine"), config, Int8Gate(digits_splits[0].images))
    assert os.listdir(str(tmp_path)) == []
    sidecar = build_engine(path, str(tmp_path / "b.engine"), config,
                           Int8Gate(digits_splits[0].images, auto_fallback=True))
    assert sidecar.backend == "tensorrt"
    assert "int8 gate: auto-fallback kept 1 layer(s) in floating point: {}".format(conv) \
        in sidecar.notes


def test_an_engine_with_8bit_weights_is_refused_on_a_cpu_without_vnni(qdq_model, digits_splits,
                                                                       tmp_path, monkeypatch):
    """Built on a (faked) VNNI CPU, loaded on a (faked) AVX2-only one: refused with the way out,
    never run with weights its 16-bit sums would saturate."""
    from basics.errors import EngineCompatibilityError
    from engines import cpu_int8
    from engines.engine_file import read_sidecar
    from engines.load import load_engine
    from tests.engines.test_cpu_int8 import CASCADE_LAKE, EPYC_ZEN2, skip_without_vnni
    skip_without_vnni()
    monkeypatch.setattr(cpu_int8, "this_cpu_int8_path",
                        lambda *args: cpu_int8.int8_path(CASCADE_LAKE, "x86_64"))
    out = str(tmp_path / "q.engine")
    build_engine(qdq_model, out, INT8, Int8Gate(digits_splits[0].images))
    assert read_sidecar(out).cpu_int8_form == "u8s8"
    load_engine(out).close()
    monkeypatch.setattr(cpu_int8, "this_cpu_int8_path",
                        lambda *args: cpu_int8.int8_path(EPYC_ZEN2, "x86_64"))
    with pytest.raises(EngineCompatibilityError, match="would saturate them: rebuild it here"):
        load_engine(out)
    # built there, it holds 7-bit weights and loads on either CPU
    build_engine(qdq_model, out, INT8, Int8Gate(digits_splits[0].images))
    assert read_sidecar(out).cpu_int8_form == "u8s8-reduce-range"
    load_engine(out).close()


def test_float_layers_asked_for_on_onnx_runtime(broken_model, digits_splits, tmp_path):
    """BuildConfig.float_layers: the named layer runs without Q/DQ in front, so the broken model
    passes the gate without the auto-fallback."""
    path, conv = broken_model
    config = BuildConfig(precision="int8", backend="onnxruntime", max_batch=64,
                         float_layers=[conv])
    build_engine(path, str(tmp_path / "b.engine"), config, Int8Gate(digits_splits[0].images))
    engine_model = onnx.load_from_string(open(str(tmp_path / "b.engine"), "rb").read())
    node = [n for n in engine_model.graph.node if n.name == conv][0]
    producers = dict((out, n.op_type) for n in engine_model.graph.node for out in n.output)
    assert all(producers.get(name) != "DequantizeLinear" for name in node.input)
    with pytest.raises(InputError, match="float layers only apply to INT8 builds"):
        BuildConfig(float_layers=[conv])
