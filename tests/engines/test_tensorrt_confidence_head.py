"""The confidence head in TensorRT engines (``toolkit build``), on the TEST DOUBLE of TensorRT.

Results here come from the double (tests/engines/trt_double: it runs the parsed ONNX through ONNX
Runtime and narrows INT64 outputs to INT32 on 8.x, as TensorRT 8's parser does), never from a
GPU. They check the build (the head appended before parsing, kept in FP32 in fp16/int8 builds,
left out when asked), the backend (an INT32 label read back as int64) and the strategies (the same
labels, probabilities and confidences as the host path), on the 8.2, 8.5 and 10.x APIs.
"""
import json

import numpy as np
import pytest

from engines.build import build_engine
from engines.build_config import BuildConfig
from engines.confidence_head import HEAD_OUTPUTS, has_confidence_head
from engines.load import load_engine
from tests.engines.trt_double import engine_header, install_trt_double

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

MODES = ("8.2", "8.5", "10")


@pytest.fixture(params=MODES, ids=["double-trt8.2", "double-trt8.5", "double-trt10"])
def mode(request):
    return request.param


def _build(onnx_path, path, **config):
    config.setdefault("max_batch", 64)
    config.setdefault("backend", "tensorrt")
    return build_engine(onnx_path, str(path), BuildConfig(**config))


def _host_single(onnx_path):
    """The host path: the plain ONNX on ONNX Runtime, softmax and top-1 in numpy."""
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    from toolkit.strategies.single import Single
    single = Single(OnnxRuntimeEngine(onnx_path, threads=1))
    assert not single.uses_head
    return single


def _assert_same_answers(got, expected):
    assert got.labels.dtype == np.int64 and expected.labels.dtype == np.int64
    np.testing.assert_array_equal(got.labels, expected.labels)
    np.testing.assert_allclose(got.probs, expected.probs, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.confidence, expected.confidence, rtol=1e-5)


def test_engine_with_the_head_answers_like_the_host_on_the_digits_test_split(
        monkeypatch, mode, cnn_onnx, digits_splits, tmp_path):
    """Equivalence (double): Single over a TensorRT engine with the head in its graph gives the
    host path's labels, probabilities and confidences on the digits test split."""
    from toolkit.strategies.single import Single
    install_trt_double(monkeypatch, mode)
    sidecar = _build(cnn_onnx, tmp_path / "m.engine")
    assert [spec.name for spec in sidecar.outputs] == ["logits"] + list(HEAD_OUTPUTS)
    assert any(note.startswith("confidence head: in the engine") for note in sidecar.notes)
    images = digits_splits[2].images
    with load_engine(str(tmp_path / "m.engine")) as engine:
        assert type(engine).__name__ == "TensorRTEngine" and has_confidence_head(engine)
        single = Single(engine)
        assert single.uses_head
        _assert_same_answers(single.classify(images), _host_single(cnn_onnx).classify(images))
        # the logits stay an output for a user who asks for them
        out = engine.infer({"input": images[:5]})
        np.testing.assert_allclose(out["logits"], _host_single(cnn_onnx).engine.infer(
            {"input": images[:5]})["logits"], rtol=1e-5, atol=1e-6)
        assert Single(engine, output="logits").uses_head


def test_tensorrt_8_label_is_int32_in_the_engine_and_int64_when_read(monkeypatch, mode,
                                                                      cnn_onnx, digits_splits,
                                                                      tmp_path):
    from engines.engine_file import read_engine
    install_trt_double(monkeypatch, mode)
    sidecar = _build(cnn_onnx, tmp_path / "m.engine")
    engine_bytes, _ = read_engine(str(tmp_path / "m.engine"))
    declared = dict((name, dtype) for name, _, dtype in engine_header(engine_bytes)["outputs"])
    assert declared["label"] == ("INT64" if mode == "10" else "INT32")  # what the plan holds
    label_spec = [spec for spec in sidecar.outputs if spec.name == "label"][0]
    assert label_spec.dtype == (np.int64 if mode == "10" else np.int32)
    narrow = mode != "10"
    assert any("label is int32 in this TensorRT" in note for note in sidecar.notes) == narrow
    images = digits_splits[2].images[:40]
    with load_engine(str(tmp_path / "m.engine")) as engine:
        spec = [s for s in engine.outputs if s.name == "label"][0]
        assert spec.dtype == np.int64
        out = engine.infer({"input": images})
        assert out["label"].dtype == np.int64 and out["label"].shape == (40,)
        np.testing.assert_array_equal(out["label"], out["probs"].argmax(axis=1))
        np.testing.assert_array_equal(out["confidence"], out["probs"].max(axis=1))


def test_no_confidence_head_leaves_it_out(monkeypatch, mode, cnn_onnx, digits_splits, tmp_path,
                                          capsys):
    from toolkit.cli.main import main
    install_trt_double(monkeypatch, mode)
    out = str(tmp_path / "plain.engine")
    assert main(["build", cnn_onnx, "--backend", "tensorrt", "--max-batch", "64",
                 "--no-confidence-head", "-o", out]) == 0
    text = capsys.readouterr().out
    assert "note: confidence head: left out, as asked" in text and "label" not in text
    with open(out + ".json") as handle:
        assert [o["name"] for o in json.load(handle)["outputs"]] == ["logits"]
    assert main(["build", cnn_onnx, "--backend", "tensorrt", "--max-batch", "64",
                 "-o", str(tmp_path / "head.engine")]) == 0
    text = capsys.readouterr().out
    assert "note: confidence head: in the engine" in text
    assert "  output label" in text


def test_an_engine_built_without_the_head_still_works(monkeypatch, mode, cnn_onnx,
                                                      digits_splits, tmp_path):
    """An engine built before the head existed (logits only; same as --no-confidence-head) runs
    with the host softmax and gives the answers of one with the head."""
    from toolkit.strategies.single import Single
    install_trt_double(monkeypatch, mode)
    _build(cnn_onnx, tmp_path / "old.engine", confidence_head=False)
    _build(cnn_onnx, tmp_path / "new.engine")
    images = digits_splits[2].images
    with load_engine(str(tmp_path / "old.engine")) as old, \
            load_engine(str(tmp_path / "new.engine")) as new:
        assert [spec.name for spec in old.outputs] == ["logits"]
        on_host, in_engine = Single(old), Single(new)
        assert not on_host.uses_head and in_engine.uses_head
        _assert_same_answers(in_engine.classify(images), on_host.classify(images))


def test_a_deployment_reads_the_head_of_tensorrt_engines(monkeypatch, cnn_onnx, digits_splits,
                                                         tmp_path):
    """A cascade spec over TensorRT engines (double, 8.2): the engine with the head and the one
    without answer alike; the strategy reads the head where the engine has it."""
    from toolkit.deployment import load_spec
    install_trt_double(monkeypatch, "8.2")
    _build(cnn_onnx, tmp_path / "a.engine")
    _build(cnn_onnx, tmp_path / "b.engine", confidence_head=False)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text("engines:\n  a: a.engine\n  b: b.engine\n"
                         "strategy: {type: cascade, first: a, second: b, threshold: 0.9}\n")
    images = digits_splits[2].images
    with load_spec(str(spec_path)) as deployment:
        cascade = deployment.strategy
        assert cascade.first.uses_head and not cascade.second.uses_head
        result = cascade.classify(images)
        expected = _host_single(cnn_onnx).classify(images)
        np.testing.assert_array_equal(result.labels, expected.labels)
        assert result.labels.dtype == np.int64


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_reduced_precision_builds_keep_the_head_in_fp32(monkeypatch, mode, cnn_onnx,
                                                        digits_splits, tmp_path, precision):
    from calibration.trt_calibrator import calibrate_to_cache
    install_trt_double(monkeypatch, mode)
    settings = {}
    if precision == "int8":
        settings["calibration_cache"] = str(tmp_path / "m.cache")
        calibrate_to_cache(cnn_onnx, digits_splits[0].images, settings["calibration_cache"],
                           batch_size=16, max_batches=2)
    sidecar = _build(cnn_onnx, tmp_path / "m.engine", precision=precision, **settings)
    from engines.engine_file import read_engine
    header = engine_header(read_engine(str(tmp_path / "m.engine"))[0])
    head = dict((name, "FLOAT") for name in ("confidence_head/softmax",
                                            "confidence_head/reducemax", "confidence_head/argmax"))
    assert header["layer_precision"] == head
    flag = "STRICT_TYPES" if mode == "8.2" else "OBEY_PRECISION_CONSTRAINTS"
    assert flag in header["flags"]
    assert "confidence head: 3 layer(s) kept in FP32 (layer.precision, {})".format(flag) in \
        sidecar.notes


def test_fp32_builds_leave_layer_precision_alone(monkeypatch, cnn_onnx, tmp_path):
    install_trt_double(monkeypatch, "10")
    _build(cnn_onnx, tmp_path / "m.engine")
    from engines.engine_file import read_engine
    header = engine_header(read_engine(str(tmp_path / "m.engine"))[0])
    assert header["layer_precision"] == {} and header["flags"] == []


def test_qdq_int8_build_appends_the_head_after_the_quantized_graph(monkeypatch, mode,
                                                                   small_cnn_onnx,
                                                                   digits_splits, tmp_path):
    """calibration/qdq.py quantizes the plain model; the build appends the head after its Q/DQ
    nodes, so the head is not quantized and runs in FP32 on the dequantized logits."""
    from calibration.qdq import QdqConfig, quantize_qdq
    from toolkit.strategies.single import Single
    qdq = str(tmp_path / "m.int8.onnx")
    quantize_qdq(small_cnn_onnx, digits_splits[0].images, qdq, QdqConfig(batch_size=16))
    install_trt_double(monkeypatch, mode)
    sidecar = _build(qdq, tmp_path / "m.engine", precision="int8")
    assert "int8: explicit quantization from the model's Q/DQ nodes" in sidecar.notes
    assert [spec.name for spec in sidecar.outputs] == ["logits"] + list(HEAD_OUTPUTS)
    model = onnx.load(qdq)
    assert not any(node.name.startswith("confidence_head/") for node in model.graph.node)
    images = digits_splits[2].images
    _build(qdq, tmp_path / "plain.engine", precision="int8", confidence_head=False)
    with load_engine(str(tmp_path / "m.engine")) as engine, \
            load_engine(str(tmp_path / "plain.engine")) as plain:
        single = Single(engine)
        assert single.uses_head and not Single(plain).uses_head
        # the same quantized logits, the softmax and top-1 on the host
        _assert_same_answers(single.classify(images), Single(plain).classify(images))


def test_models_that_are_not_classifiers_get_no_head(monkeypatch, tmp_path):
    from onnx import TensorProto, helper
    install_trt_double(monkeypatch, "10")
    path = str(tmp_path / "ae.onnx")
    graph = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["image"])], "ae",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.save(model, path)
    sidecar = _build(path, tmp_path / "ae.engine")
    assert [spec.name for spec in sidecar.outputs] == ["image"]
    assert "confidence head: not added, output 'image' has rank 4 (a classifier's is (N, " \
           "classes))" in sidecar.notes


def test_without_the_onnx_package_the_engine_is_built_without_the_head(monkeypatch, cnn_onnx,
                                                                       tmp_path):
    """Editing the graph needs onnx (the jetson extra installs it); without it the build goes on
    without the head and a note says so."""
    import sys
    from engines.confidence_head import head_for_build
    with monkeypatch.context() as blocked:
        blocked.setitem(sys.modules, "onnx", None)
        data, note = head_for_build(cnn_onnx)
    assert data is None
    assert note.startswith("confidence head: not added, the onnx package is not installed here")


def test_a_model_that_already_has_the_head_is_built_as_it_is(monkeypatch, cnn_onnx, tmp_path):
    from engines.confidence_head import add_confidence_head
    install_trt_double(monkeypatch, "10")
    path = str(tmp_path / "with_head.onnx")
    with open(path, "wb") as handle:
        handle.write(add_confidence_head(cnn_onnx))
    sidecar = _build(path, tmp_path / "m.engine")
    assert [spec.name for spec in sidecar.outputs] == ["logits"] + list(HEAD_OUTPUTS)
    assert not any("not added" in note for note in sidecar.notes)


def test_a_classifier_using_a_head_name_inside_is_built_without_it(monkeypatch, tmp_path):
    from onnx import TensorProto, helper
    install_trt_double(monkeypatch, "8.2")
    path = str(tmp_path / "taken.onnx")
    nodes = [helper.make_node("Relu", ["input"], ["probs"]),
             helper.make_node("Flatten", ["probs"], ["logits"], axis=1)]
    graph = helper.make_graph(
        nodes, "taken", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.save(model, path)
    sidecar = _build(path, tmp_path / "m.engine")
    assert [spec.name for spec in sidecar.outputs] == ["logits"]
    assert "confidence head: not added, the model already has tensors named probs" in \
        sidecar.notes
