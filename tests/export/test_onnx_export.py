import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from torch import nn  # noqa: E402

from basics.errors import InputError  # noqa: E402
from basics.fileio import sha256_file  # noqa: E402
from engines.preprocess import Preprocessing  # noqa: E402
from engines.model_metadata import ModelMetadata  # noqa: E402
from engines.onnxruntime_backend import OnnxRuntimeEngine  # noqa: E402
from export import models  # noqa: E402
from export.onnx_export import export_to_onnx  # noqa: E402
from export.parity import Tolerance  # noqa: E402


class EveryLayer(nn.Module):
    """Convolution, batch norm, residual, depthwise, max and average pooling, linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.depthwise = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
                                       nn.BatchNorm2d(8), nn.ReLU6(), nn.Conv2d(8, 8, 1))
        self.maxpool = nn.MaxPool2d(2)
        self.avgpool = nn.AvgPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.depthwise(x)
        x = self.avgpool(self.maxpool(x))
        return self.fc(torch.flatten(x, 1))


def _randomize_batchnorm(model, seed=0):
    """Non-trivial running statistics, so that folding batch norm into ONNX is really tested."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
            module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            module.bias.data.copy_(torch.rand(n, generator=gen) - 0.5)
    return model.eval()


def _assert_engine_matches_torch(model, onnx_path, shape_chw, batches=(1, 2, 5)):
    """Independent of the export's own report: ONNX Runtime vs PyTorch within 1e-4 (fp32)."""
    rng = np.random.RandomState(1)
    with OnnxRuntimeEngine(onnx_path) as engine:
        assert engine.inputs[0].shape[0] == -1
        for batch in batches:
            x = rng.standard_normal((batch,) + shape_chw).astype(np.float32)
            with torch.no_grad():
                expected = model(torch.from_numpy(x)).numpy()
            got = engine.infer({"input": x})["logits"]
            assert got.shape == expected.shape
            np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("factory, shape", [
    (lambda: models.SimpleCNN(3, 10), (1, 3, 12, 12)),
    (lambda: models.ResNetish(1, 10, widths=(8, 16), blocks=1), (1, 1, 16, 16)),
    (lambda: models.DepthwiseCNN(1, 10, widths=(8, 16, 32)), (1, 1, 16, 16)),
    (EveryLayer, (1, 3, 16, 16)),
], ids=["simple", "resnetish", "depthwise", "every-layer"])
def test_parity_with_dynamic_batch(tmp_path, factory, shape):
    torch.manual_seed(0)
    model = _randomize_batchnorm(factory())
    result = export_to_onnx(model, str(tmp_path / "m.onnx"), shape, parity_batches=(1, 3, 7))
    assert result.parity["passed"] and result.parity["max_abs_error"] <= 1e-4
    assert sorted({row["batch"] for row in result.parity["checks"]}) == [1, 3, 7]
    assert result.shape_inference == "strict"
    _assert_engine_matches_torch(model, result.onnx_path, shape[1:])


def test_trained_model_agrees_on_digits(trained_small_cnn, digits_splits, tmp_path):
    test = digits_splits[2]
    npz = tmp_path / "parity.npz"
    np.savez(str(npz), images=test.images[:100])
    meta = ModelMetadata(class_names=test.class_names, source="trained small_cnn")
    result = export_to_onnx(trained_small_cnn, str(tmp_path / "digits.onnx"), "1x1x8x8",
                            metadata=meta, parity_inputs=str(npz))
    sources = {row["source"] for row in result.parity["checks"]}
    assert "random" in sources and any(s.endswith("parity.npz") for s in sources)
    with OnnxRuntimeEngine(result.onnx_path) as engine:
        logits = engine.infer({"input": test.images})["logits"]
    with torch.no_grad():
        expected = trained_small_cnn(torch.from_numpy(test.images)).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-4)
    assert np.array_equal(logits.argmax(1), expected.argmax(1))
    assert not trained_small_cnn.training


def test_sidecar_is_written_and_round_trips(tmp_path):
    meta = ModelMetadata(class_names=list("abcdefghij"), source="export.models:tiny_cnn",
                         preprocessing=Preprocessing(resize_hw="8x8", mean=0.5, std=0.25,
                                                     channel_order="L"))
    path = tmp_path / "out" / "tiny.onnx"
    result = export_to_onnx(models.tiny_cnn(), str(path), (1, 1, 8, 8), metadata=meta)
    assert result.metadata_path == str(path) + ".json" and os.path.isfile(result.metadata_path)
    loaded = ModelMetadata.for_model(str(path))
    assert loaded == result.metadata
    assert loaded.class_names == list("abcdefghij") and loaded.source == "export.models:tiny_cnn"
    assert loaded.preprocessing == meta.preprocessing
    assert loaded.onnx_sha256 == sha256_file(str(path)) and loaded.opset == 13
    assert [s.to_dict() for s in loaded.inputs] == [
        {"name": "input", "shape": [-1, 1, 8, 8], "dtype": "float32"}]
    assert [s.to_dict() for s in loaded.outputs] == [
        {"name": "logits", "shape": [-1, 10], "dtype": "float32"}]
    assert loaded.parity["max_abs_error"] <= 1e-4 and "max_rel_error" in loaded.parity
    assert meta.onnx_sha256 is None  # the caller's object is left alone
    assert any(line.startswith("wrote") for line in result.lines())


def test_static_batch(tmp_path):
    result = export_to_onnx(models.tiny_cnn(), str(tmp_path / "s.onnx"), "4x1x8x8",
                            dynamic_batch=False)
    assert [row["batch"] for row in result.parity["checks"]] == [4]
    with OnnxRuntimeEngine(result.onnx_path) as engine:
        assert engine.inputs[0].shape == (4, 1, 8, 8)
        with pytest.raises(InputError, match="must have shape 4x1x8x8"):
            engine.infer({"input": np.zeros((2, 1, 8, 8), np.float32)})


def test_names_opset_and_several_outputs(tmp_path):
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = models.tiny_cnn()

        def forward(self, x):
            logits = self.body(x)
            return logits, torch.softmax(logits, 1)

    result = export_to_onnx(TwoHeads(), str(tmp_path / "two.onnx"), (1, 1, 8, 8), opset=17,
                            input_names="image", output_names="logits,probs")
    assert [s.name for s in result.metadata.inputs] == ["image"]
    assert [s.name for s in result.metadata.outputs] == ["logits", "probs"]
    assert {row["output"] for row in result.parity["checks"]} == {"logits", "probs"}
    assert result.metadata.opset == 17


def test_torchscript_module_exports(tmp_path):
    scripted = torch.jit.script(_randomize_batchnorm(models.tiny_cnn()))
    result = export_to_onnx(scripted, str(tmp_path / "ts.onnx"), (1, 1, 8, 8))
    assert result.parity["passed"]


def test_uint8_parity_inputs_use_the_preprocessing(tmp_path):
    raw = np.random.RandomState(0).randint(0, 256, size=(6, 8, 8, 1)).astype(np.uint8)
    meta = ModelMetadata(preprocessing=Preprocessing(mean=0.5, std=0.5, channel_order="L"))
    result = export_to_onnx(models.tiny_cnn(), str(tmp_path / "u.onnx"), (1, 1, 8, 8),
                            metadata=meta, parity_inputs=raw)
    assert any(row["source"] == "user inputs" and row["batch"] == 6
               for row in result.parity["checks"])


class BatchDependent(nn.Module):
    """Traced with batch 1, this freezes a Python branch: ONNX then differs at other batches."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        y = self.fc(torch.flatten(x, 1))
        if x.shape[0] > 1:
            y = y * 2
        return y


class HardCodedBatch(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x.view(int(x.shape[0]), -1))  # int() freezes the traced batch size


def test_parity_mismatch_writes_nothing(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"previous export")
    with pytest.raises(InputError, match=r"differs from PyTorch on random \(batch 3\)") as info:
        export_to_onnx(BatchDependent(), str(path), (1, 1, 2, 2))
    assert "\n" not in str(info.value)
    assert path.read_bytes() == b"previous export"
    assert not os.path.exists(str(path) + ".json")
    assert [p.name for p in tmp_path.iterdir()] == ["bad.onnx"]  # no temp files left behind


def test_hard_coded_batch_is_reported(tmp_path):
    with pytest.raises(InputError, match="ONNX Runtime fails on a batch of 3.*hard-coded"):
        export_to_onnx(HardCodedBatch(), str(tmp_path / "h.onnx"), (1, 4))
    # with a static batch the same model is fine
    assert export_to_onnx(HardCodedBatch(), str(tmp_path / "h.onnx"), (1, 4),
                          dynamic_batch=False).parity["passed"]


def test_tolerance_decides(tmp_path):
    model = _randomize_batchnorm(models.tiny_cnn())
    result = export_to_onnx(model, str(tmp_path / "t.onnx"), (1, 1, 8, 8), tolerance=1e-3)
    assert result.parity["atol"] == 1e-3
    torch.manual_seed(0)
    wrong = BatchDependent()  # |error| = |output| at batch 3: a huge bound lets it through
    loose = export_to_onnx(wrong, str(tmp_path / "t2.onnx"), (1, 1, 2, 2),
                           tolerance=Tolerance(atol=100.0, rtol=0.0))
    assert loose.parity["passed"] and loose.parity["max_abs_error"] > 1e-2


def test_model_failing_at_a_parity_batch(tmp_path):
    class BatchOne(nn.Module):
        def forward(self, x):
            return x.reshape(1, 4)

    with pytest.raises(InputError, match="PyTorch fails on a batch of 3"):
        export_to_onnx(BatchOne(), str(tmp_path / "b.onnx"), (1, 4), output_names=("y",))


@pytest.mark.parametrize("kwargs, words", [
    ({"model": "not a module"}, "needs a torch.nn.Module"),
    ({"opset": 5}, "opset must be an integer from 9"),
    ({"opset": 99}, "opset must be an integer"),
    ({"opset": "x"}, "opset must be an integer"),
    ({"opset": 13.5}, "opset must be an integer"),
    ({"input_shape": "1x1x0x8"}, "shape must look like"),
    ({"input_shape": (1, -1, 8, 8)}, "shape must look like"),
    ({"input_shape": ()}, "shape must look like"),
    ({"input_names": ("a", "b")}, "export takes one input"),
    ({"input_names": ("",)}, "input names must be non-empty"),
    ({"output_names": ("y", "y")}, "output names must be unique"),
    ({"output_names": ("input",)}, "input and output names must differ"),
    ({"output_names": ("a", "b")}, "1 output\\(s\\) but 2 output name\\(s\\)"),
    ({"input_shape": (1, 3, 8, 8)}, "the model fails on an input of shape 1x3x8x8"),
    ({"metadata": {"class_names": ["a"]}}, "metadata must be a ModelMetadata"),
    ({"metadata": ModelMetadata(class_names=["a", "b"])}, "2 class labels given but output"),
    ({"metadata": ModelMetadata(class_names=["a"] * 10)}, "class labels must be unique"),
    ({"metadata": ModelMetadata(preprocessing=Preprocessing(channel_order="RGB"))},
     "channel order RGB gives 3 channel"),
    ({"parity_inputs": np.zeros((2, 1, 4, 4), np.float32)}, "does not fit the model input"),
    ({"parity_inputs": "no_such_inputs.npz"}, "no such parity input file"),
    ({"parity_inputs": np.full((2, 1, 8, 8), np.nan, np.float32)},
     r"input.*the input holds 128 NaN/Inf value\(s\)"),
    ({"tolerance": -1.0}, "tolerance must be a finite number"),
])
def test_bad_inputs(tmp_path, kwargs, words):
    args = {"model": models.tiny_cnn(), "path": str(tmp_path / "x.onnx"), "input_shape": (1, 1, 8, 8)}
    args.update(kwargs)
    with pytest.raises(InputError, match=words) as info:
        export_to_onnx(**args)
    assert "\n" not in str(info.value)
    assert not os.path.exists(str(tmp_path / "x.onnx"))


def test_unsupported_operator_is_one_line(tmp_path):
    class Fft(nn.Module):
        def forward(self, x):
            return torch.fft.fft(x).real

    with pytest.raises(InputError, match="torch.onnx.export failed at opset 13") as info:
        export_to_onnx(Fft(), str(tmp_path / "f.onnx"), (1, 4), output_names=("y",))
    assert "\n" not in str(info.value)


def test_unwritable_output_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    with pytest.raises(InputError, match="cannot write"):
        export_to_onnx(models.tiny_cnn(), str(blocker / "m.onnx"), (1, 1, 8, 8))
