"""Every config.pbtxt the export writes parses against Triton's own model_config.proto (the
``model_config_pb2`` that the ``tritonclient`` package ships, ``tritonclient.grpc``), and says
what the engines and the strategy need: dims, max batch, dynamic batching, instances, labels."""
import os

import numpy as np
import pytest

from engines.base import TensorSpec
from engines.engine_file import EngineSidecar, write_engine
from tests.toolkit.strategies.conftest import logits_onnx
from toolkit.triton.engine_model import EngineModel
from toolkit.triton.export import ExportOptions, export_repository
from toolkit.triton.model_config import ModelConfig, TensorConfig

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
text_format = pytest.importorskip("google.protobuf.text_format")


def parse(path_or_text):
    text = path_or_text
    if os.path.isfile(path_or_text):
        with open(path_or_text) as handle:
            text = handle.read()
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def _types(tensors):
    return [(t.name, model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in tensors]


@pytest.mark.parametrize("name", ["single", "cascade", "memo"])
def test_every_exported_config_parses(spec_folder, tmp_path, name):
    out = str(tmp_path / "repo")
    names = export_repository(str(spec_folder / "{}.yaml".format(name)), out,
                              ExportOptions(max_batch=48, preferred_batch=(4, 16),
                                            queue_delay_us=250, instances=2))
    assert names[0] == name and sorted(names[1:]) == sorted(
        "{}_{}".format(name, e) for e in (["small"] if name == "single" else ["linear", "small"]))
    configs = {n: parse(os.path.join(out, n, "config.pbtxt")) for n in names}
    strategy = configs[name]
    assert strategy.name == name and strategy.backend == "python"
    assert strategy.max_batch_size == 48
    # the model's metadata asks for grayscale (channel_order L): any channels come in, 8x8 only
    assert _types(strategy.input) == [("images", "TYPE_FP32", [-1, 8, 8])]
    assert _types(strategy.output) == [("labels", "TYPE_INT64", [1]),
                                       ("confidence", "TYPE_FP32", [1]),
                                       ("probs", "TYPE_FP32", [10])]
    assert strategy.output[2].label_filename == "labels.txt"
    with open(os.path.join(out, name, "labels.txt")) as handle:
        assert handle.read().split() == [str(i) for i in range(10)]
    assert list(strategy.dynamic_batching.preferred_batch_size) == [4, 16]
    assert strategy.dynamic_batching.max_queue_delay_microseconds == 250
    assert [(g.kind, g.count) for g in strategy.instance_group] == [
        (model_config_pb2.ModelInstanceGroup.KIND_CPU, 2)]
    assert strategy.parameters["spec"].string_value == "deploy.yaml"
    for engine in names[1:]:
        config = configs[engine]
        assert config.platform == "onnxruntime_onnx"
        assert config.default_model_filename == "model.onnx"
        assert os.path.isfile(os.path.join(out, engine, "1", "model.onnx"))
        assert config.max_batch_size == 48
        assert _types(config.input) == [("input", "TYPE_FP32", [1, 8, 8])]
        assert _types(config.output) == [("logits", "TYPE_FP32", [10])]
        assert config.instance_group[0].count == 2


def test_a_tensorrt_engine_is_a_tensorrt_plan_with_its_profile(tmp_path):
    plan = b"not a real plan: TensorRT is not installed here"
    sidecar = EngineSidecar("tensorrt", "fp16", 2, 8, 32, "", 0,
                            [TensorSpec("input", (-1, 3, 32, 32), np.float32)],
                            [TensorSpec("logits", (-1, 100), np.float16)],
                            tensorrt_version="8.5.2", gpu_name="Orin", compute_capability="8.7")
    path = str(tmp_path / "m.engine")
    write_engine(path, plan, sidecar)
    engine = EngineModel.from_file(path)
    assert engine.platform == "tensorrt_plan" and engine.read_bytes() == plan
    config = parse(engine.config("deploy_m", max_batch=64).to_pbtxt())
    assert config.platform == "tensorrt_plan" and config.default_model_filename == "model.plan"
    assert config.max_batch_size == 32  # the profile's, not the option's
    assert list(config.dynamic_batching.preferred_batch_size) == [8, 32]
    assert _types(config.input) == [("input", "TYPE_FP32", [3, 32, 32])]
    assert _types(config.output) == [("logits", "TYPE_FP16", [100])]
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert "minimum batch is 2" in engine.config("x").to_pbtxt()


def test_a_model_with_a_fixed_batch_does_not_batch():
    fixed = EngineModel("fixed.onnx", "onnxruntime_onnx", "model.onnx",
                        [TensorSpec("input", (1, 1, 8, 8), np.float32)],
                        [TensorSpec("logits", (1, 5), np.float32)])
    config = parse(fixed.config("fixed").to_pbtxt())
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert _types(config.input) == [("input", "TYPE_FP32", [1, 1, 8, 8])]


def test_a_scalar_per_sample_is_dims_1_reshaped():
    head = EngineModel("m.onnx", "onnxruntime_onnx", "model.onnx",
                       [TensorSpec("input", (-1, 1, 8, 8), np.float32)],
                       [TensorSpec("confidence", (-1,), np.float32)])
    config = parse(head.config("m").to_pbtxt())
    assert _types(config.output) == [("confidence", "TYPE_FP32", [1])]
    assert config.output[0].HasField("reshape") and list(config.output[0].reshape.shape) == []


def test_the_convert_path_exports_as_one_strategy_model(spec_folder, tmp_path):
    with open(str(tmp_path / "identity.onnx"), "wb") as handle:
        handle.write(logits_onnx(0, shape=(1, 8, 8)))
    spec = tmp_path / "cbnet.yaml"
    spec.write_text("engines: {{ae: identity.onnx, small: {}}}\n"
                    "strategy: {{type: convert, converter: ae, classifier: small}}\n".format(
                        spec_folder / "small.onnx"))
    out = str(tmp_path / "repo")
    assert export_repository(str(spec), out) == ["cbnet", "cbnet_ae", "cbnet_small"]
    assert _types(parse(os.path.join(out, "cbnet_ae", "config.pbtxt")).output)[0][2] == [1, 8, 8]
    config = parse(os.path.join(out, "cbnet", "config.pbtxt"))
    assert config.parameters["strategy"].string_value == "convert(ae -> small)"


def test_strings_are_escaped():
    config = ModelConfig('we"ird\\name', [TensorConfig("in", np.uint8, [-1])],
                         [TensorConfig("out", np.bool_, [2])], 4, backend="python",
                         parameters={"note": 'a "quoted"\nline ü'})
    parsed = parse(config.to_pbtxt())
    assert parsed.name == 'we"ird\\name'
    assert parsed.parameters["note"].string_value == 'a "quoted"\nline ü'
    assert _types(parsed.input) == [("in", "TYPE_UINT8", [-1])]


def test_a_resizing_preprocessing_takes_images_of_any_height_and_width(spec_folder, tmp_path):
    spec = tmp_path / "resize.yaml"
    spec.write_text("engines: {{small: {}}}\nstrategy: small\n"
                    "preprocessing: {{resize_hw: [8, 8]}}\n".format(spec_folder / "small.onnx"))
    out = str(tmp_path / "repo")
    export_repository(str(spec), out, ExportOptions(engine_models=False))
    config = parse(os.path.join(out, "resize", "config.pbtxt"))
    # the spec's preprocessing (no channel conversion) replaces the metadata's
    assert _types(config.input) == [("images", "TYPE_FP32", [1, -1, -1])]
