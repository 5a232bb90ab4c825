import contextlib
import os
import shutil

import numpy as np
import pytest

from basics.errors import InputError, InternalError
from tests.toolkit.strategies.conftest import linear_image_onnx
from toolkit import deploy
from toolkit.deployment import load_spec
from toolkit.running import run_deployment
from toolkit.spec_writing import cascade_spec, write_spec
from toolkit.strategies import Cascade, Memo, Single


def _linear_matrix(classes=10, seed=0):
    return np.random.RandomState(seed).randn(64, classes).astype(np.float32)


@pytest.fixture
def models(tmp_path, small_cnn_onnx):
    """A folder with the trained small CNN and a linear 8x8 'model' (A is the linear one)."""
    shutil.copy(small_cnn_onnx, str(tmp_path / "small.onnx"))
    with open(str(tmp_path / "linear.onnx"), "wb") as handle:
        handle.write(linear_image_onnx(_linear_matrix()))
    with open(str(tmp_path / "five.onnx"), "wb") as handle:
        handle.write(linear_image_onnx(_linear_matrix(5)))
    return tmp_path


def _spec(folder, text, name="deploy.yaml"):
    path = folder / name
    path.write_text(text)
    return str(path)


CASCADE = """
engines:
  linear: linear.onnx
  small: {path: small.onnx}
strategy:
  type: cascade
  first: linear
  second: small
  threshold: 0.9
  score: margin
"""


def test_cascade_spec_runs_like_the_strategy_it_describes(models, digits_splits):
    test = digits_splits[2]
    with load_spec(_spec(models, CASCADE)) as deployment:
        assert isinstance(deployment.strategy, Cascade)
        assert deployment.input_shape == (1, 8, 8)
        report = run_deployment(deployment, test, batch_size=50)
        a, b = deployment.engines["linear"], deployment.engines["small"]
        expected = Cascade(Single(a), Single(b), 0.9, score="margin").classify(test.images)
    np.testing.assert_array_equal(report.labels, expected.labels)
    assert report.accuracy == pytest.approx(np.mean(expected.labels == test.labels))
    data = report.to_dict()
    assert data["samples"] == len(test) and data["batch_size"] == 50
    assert data["latency_per_batch"]["calls"] == int(np.ceil(len(test) / 50.0))
    assert data["latency_per_sample"]["latency_median_ms"] > 0
    assert 0 < data["handoff_rate"] <= 1 and data["memo_hit_rate"] is None
    assert data["counters"]["handoffs"] == int(round(data["handoff_rate"] * len(test)))
    csv_lines = report.predictions_csv().splitlines()
    assert csv_lines[0] == "index,label,class_name,confidence,true_label"
    assert len(csv_lines) == len(test) + 1
    assert any("handoff rate" in line for line in report.lines())


def test_memo_hits_every_appended_duplicate(models, digits_splits):
    spec = _spec(models, CASCADE + "memo: exact\n")
    test = digits_splits[2]
    doubled = deploy.duplicate(test, 1.0)
    assert len(doubled) == 2 * len(test)
    with load_spec(spec) as deployment:
        assert isinstance(deployment.strategy, Memo)
        report = run_deployment(deployment, doubled, batch_size=32)
    assert report.stats["memo_hit_rate"] == 0.5  # digits has no duplicates of its own
    assert report.stats["inner_samples"] == len(test)
    np.testing.assert_array_equal(report.labels[len(test):],
                                  report.labels[:len(test)][_appended_order(test, doubled)])


def _appended_order(original, doubled):
    """Index into ``original`` of each appended copy."""
    keys = {row.tobytes(): i for i, row in enumerate(original.images)}
    return np.array([keys[row.tobytes()] for row in doubled.images[len(original):]])


def test_rotated_duplicates_hit_only_an_invariant_perceptual_memo(models, digits_splits):
    test = digits_splits[2].subset(np.arange(60))
    rotated = deploy.duplicate(test, 1.0, transform="rotate")
    results = {}
    for memo in ("exact", "{mode: dhash, invariant: true}"):
        with load_spec(_spec(models, CASCADE + "memo: " + memo + "\n")) as deployment:
            results[memo] = run_deployment(deployment, rotated).stats
    assert results["exact"]["memo_hits"] == 0
    assert results["{mode: dhash, invariant: true}"]["memo_hits"] >= 60


def test_memo_file_persists_between_runs(models, digits_splits):
    spec = _spec(models, CASCADE + "memo: {mode: exact, file: cache/memo.npz}\n")
    test = digits_splits[2]
    with load_spec(spec) as deployment:
        run_deployment(deployment, test)
    assert os.path.isfile(str(models / "cache" / "memo.npz"))
    with load_spec(spec) as deployment:
        report = run_deployment(deployment, test)
    assert report.stats["memo_hit_rate"] == 1.0


def _image_folder(root, images, labels, count):
    from PIL import Image
    for i in range(count):
        folder = root / str(labels[i])
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.round(images[i, 0] * 255).astype(np.uint8)
        Image.fromarray(pixels).save(str(folder / "{:04d}.png".format(i)))
    return str(root)


def test_image_folder_runs_through_the_encoded_path(models, digits_splits, monkeypatch):
    test = digits_splits[2]
    root = _image_folder(models / "images", test.images, test.labels, 40)
    files = deploy.duplicate(deploy.FileSet.from_folder(root), 1.0)
    decoded = []
    with load_spec(_spec(models, CASCADE + "memo: exact\n")) as deployment:
        decode = deploy.make_decoder(deployment)
        monkeypatch.setattr(deploy, "make_decoder", lambda d: lambda b: decoded.append(1) or
                            decode(b))
        report = run_deployment(deployment, files=files, batch_size=16)
        # the same pixels as arrays give the same answers
        arrays = np.stack([decode(b) for b in files.blobs])
        expected = deployment.strategy.inner.classify(arrays).labels
    assert len(decoded) == 1 + 40  # one warm-up, then only the 40 distinct files
    assert report.stats["memo_hits"] == 40
    np.testing.assert_array_equal(report.labels, expected)
    assert report.sources[0].endswith(".png") and report.accuracy is not None
    assert report.predictions_csv().splitlines()[0].startswith("index,source,label")


def test_preprocessing_comes_from_the_engines_metadata(models, digits_splits):
    from basics.fileio import sha256_file
    from engines.preprocess import Preprocessing
    from engines.model_metadata import ModelMetadata
    for name in ("linear", "small"):
        path = str(models / (name + ".onnx"))
        ModelMetadata(preprocessing=Preprocessing(mean=[0.5], std=[0.25]),
                      class_names=list("abcdefghij"), onnx_sha256=sha256_file(path)).save(
                          path + ".json")
    test = digits_splits[2]
    with load_spec(_spec(models, CASCADE)) as deployment:
        assert deployment.class_names == list("abcdefghij")
        report = run_deployment(deployment, test)
        a, b = deployment.engines["linear"], deployment.engines["small"]
        expected = Cascade(a, b, 0.9, score="margin").classify((test.images - 0.5) / 0.25)
    np.testing.assert_array_equal(report.labels, expected.labels)
    assert ",a," in report.predictions_csv() or ",b," in report.predictions_csv()


def test_engines_with_different_preprocessing_need_one_in_the_spec(models):
    from basics.fileio import sha256_file
    from engines.preprocess import Preprocessing
    from engines.model_metadata import ModelMetadata
    path = str(models / "linear.onnx")
    ModelMetadata(preprocessing=Preprocessing(mean=[0.5], std=[0.25]),
                  onnx_sha256=sha256_file(path)).save(path + ".json")
    path = str(models / "small.onnx")
    ModelMetadata(preprocessing=Preprocessing(), onnx_sha256=sha256_file(path)).save(path + ".json")
    with pytest.raises(InputError, match="expect different preprocessing"):
        load_spec(_spec(models, CASCADE))
    spec = _spec(models, CASCADE + "preprocessing: {mean: [0.5], std: [0.5]}\n")
    with load_spec(spec) as deployment:
        assert deployment.preprocessing.std == (0.5,)


class _FakeMeter(object):
    def __init__(self):
        self.windows = []

    @contextlib.contextmanager
    def window(self, name):
        class Window(object):
            inferences = None
        window = Window()
        yield window
        self.windows.append((name, window.inferences))

    def report(self):
        class Report(object):
            def to_dict(self):
                return {"energy_mj_per_inference": 1.5}

            def lines(self):
                return ["energy 1.5 mJ per inference"]
        return Report()


def test_meter_window_wraps_the_run(models, digits_splits):
    meter = _FakeMeter()
    with load_spec(_spec(models, CASCADE)) as deployment:
        report = run_deployment(deployment, digits_splits[2], meter=meter)
    assert meter.windows == [("run", len(digits_splits[2]))]
    assert report.to_dict()["energy"] == {"energy_mj_per_inference": 1.5}
    assert report.lines()[-1] == "energy 1.5 mJ per inference"


def test_single_and_convert_specs(models, digits_splits):
    single = _spec(models, "engines: {small: small.onnx}\nstrategy: small\n", "single.yaml")
    with load_spec(single) as deployment:
        assert deployment.describe() == "single(small)"
        assert run_deployment(deployment, digits_splits[2]).accuracy > 0.5
    # an identity "converter" (the linear model's input is an image, so is its output here)
    from tests.toolkit.strategies.conftest import logits_onnx
    with open(str(models / "identity.onnx"), "wb") as handle:
        handle.write(logits_onnx(0, shape=(1, 8, 8)))
    convert = _spec(models, "engines: {ae: identity.onnx, small: small.onnx}\n"
                            "strategy: {type: convert, converter: ae, classifier: small}\n")
    with load_spec(convert) as deployment, load_spec(single) as plain:
        converted = run_deployment(deployment, digits_splits[2])
        direct = run_deployment(plain, digits_splits[2])
    np.testing.assert_array_equal(converted.labels, direct.labels)


def test_written_cascade_spec_loads(models):
    path = str(models / "out" / "pair.yaml")
    data = cascade_spec(path, str(models / "linear.onnx"), str(models / "small.onnx"), 0.7,
                               score="entropy", post_check=True, names=("a", "b"))
    write_spec(path, data)
    with load_spec(path) as deployment:
        assert deployment.strategy.inner.threshold == 0.7
        assert deployment.strategy.inner.post_check
        assert deployment.spec.engines["a"].path == str(models / "linear.onnx")


@pytest.mark.parametrize("text, message", [
    ("engines: {a: missing.onnx}\nstrategy: a\n", "engine 'a': no such engine file"),
    ("engines: {a: linear.onnx, b: five.onnx}\n"
     "strategy: {type: cascade, first: a, second: b, threshold: 0.5}\n",
     "disagree on the number of classes: 10 vs 5"),
    ("engines: {a: linear.onnx, b: small.onnx}\n"
     "strategy: {type: cascade, first: a, second: b, threshold: 1.5}\n",
     "threshold must be in \\[0, 1\\], got 1.5"),
    ("engines: {a: linear.onnx, b: small.onnx}\n"
     "strategy: {type: cascade, first: a, second: b}\n", "needs a 'threshold'"),
    ("engines: {a: linear.onnx}\nstrategy: a\ncolour: blue\n", "unknown key\\(s\\) in spec: colour"),
    ("engines: {a: {path: linear.onnx, size: 3}}\nstrategy: a\n",
     "unknown key\\(s\\) in engine 'a': size"),
    ("engines: {a: linear.onnx}\nstrategy: {type: single, engine: a, threshold: 1}\n",
     "unknown key\\(s\\) in strategy \\(single\\): threshold"),
    ("engines: {a: linear.onnx}\nstrategy: a\nmemo: {mode: exact, size: 3}\n",
     "unknown key\\(s\\) in memo: size"),
    ("engines: {a: linear.onnx}\nstrategy: {type: ensemble, engine: a}\n",
     "unknown strategy type 'ensemble'"),
    ("engines: {a: linear.onnx}\nstrategy: b\n", "names engine 'b', which the spec does not define"),
    ("engines: {a: linear.onnx, b: small.onnx}\nstrategy: a\n", "defined but not used"),
    ("engines: {a: linear.onnx}\nstrategy: a\nmemo: {mode: fuzzy}\n", "memo mode must be one of"),
    ("engines: {a: linear.onnx}\nstrategy: a\nmemo: {max_mb: -1}\n", "max_mb must be a positive"),
    ("engines: {a: linear.onnx}\n", "no 'strategy' section"),
    ("strategy: a\n", "needs an 'engines' mapping"),
    ("", "must be a mapping, got an empty file"),
    ("engines: [a\n", "is not valid YAML"),
    ("engines: {a: linear.onnx}\nstrategy: a\npreprocessing: {resize_hw: 16x16}\n",
     "resize 16x16 does not match the model input 8x8"),
])
def test_spec_errors_are_one_line_input_errors(models, text, message):
    with pytest.raises(InputError, match=message) as info:
        load_spec(_spec(models, text))
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(str(models / "deploy.yaml"))


def test_missing_spec_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such deployment spec"):
        load_spec(str(tmp_path / "nope.yaml"))


def test_unreadable_image_is_a_one_line_error(models, digits_splits):
    test = digits_splits[2]
    root = _image_folder(models / "images", test.images, test.labels, 5)
    with open(os.path.join(root, str(test.labels[0]), "broken.png"), "wb") as handle:
        handle.write(b"not an image at all")
    files = deploy.FileSet.from_folder(root)
    with load_spec(_spec(models, CASCADE + "memo: exact\n")) as deployment:
        with pytest.raises(InputError, match="cannot read image .*broken.png") as info:
            run_deployment(deployment, files=files)
    assert "\n" not in str(info.value)


def test_empty_data_sets_are_input_errors(models, tmp_path):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(InputError, match="has no image files"):
        deploy.FileSet.from_folder(str(tmp_path / "empty"))
    with pytest.raises(InputError, match="the data set is empty"):
        deploy.FileSet([], [], name="nothing")
    np.savez(str(tmp_path / "empty.npz"), images=np.zeros((0, 1, 8, 8), np.float32))
    from calibration.datasets import load_dataset
    with pytest.raises(InputError, match="the data set is empty"):
        load_dataset(str(tmp_path / "empty.npz"))


def test_run_argument_errors(models, digits_splits):
    with load_spec(_spec(models, CASCADE)) as deployment:
        with pytest.raises(InternalError, match="either data or files"):  # a caller's bug
            run_deployment(deployment)
        with pytest.raises(InputError, match="the batch size must be at least 1"):
            run_deployment(deployment, digits_splits[2], batch_size=0)
        from calibration.datasets import load_digits_variant
        with pytest.raises(InputError, match="images are 1x16x16 but the deployment takes 1x8x8"):
            run_deployment(deployment, load_digits_variant("digits16").subset(
                np.arange(4)))


@pytest.mark.parametrize("fraction, transform, message", [
    (1.5, "none", "the duplicated share must be between 0 and 1"),
    (0.5, "shear", "the duplicate transform must be one of"),
])
def test_bad_duplicate_settings(digits_splits, fraction, transform, message):
    with pytest.raises(InputError, match=message):
        deploy.duplicate(digits_splits[2], fraction, transform)


def test_duplicate_appends_transformed_copies(digits_splits):
    test = digits_splits[2]
    flipped = deploy.duplicate(test, 0.5, transform="flip", seed=3)
    count = int(round(0.5 * len(test)))
    assert len(flipped) == len(test) + count
    np.testing.assert_array_equal(flipped.images[:len(test)], test.images)
    copies = flipped.images[len(test):][:, :, :, ::-1]
    originals = {row.tobytes() for row in test.images}
    assert all(row.tobytes() in originals for row in np.ascontiguousarray(copies))
    assert deploy.duplicate(test, 0.0) is test


def test_classifiers_get_the_confidence_head_and_converters_do_not(models):
    from engines.confidence_head import has_confidence_head
    from tests.toolkit.strategies.conftest import logits_onnx
    with open(str(models / "identity.onnx"), "wb") as handle:
        handle.write(logits_onnx(0, shape=(1, 8, 8)))
    with load_spec(_spec(models, CASCADE)) as deployment:
        assert deployment.strategy.first.uses_head and deployment.strategy.second.uses_head
        assert all(has_confidence_head(e) for e in deployment.engines.values())
    convert = _spec(models, "engines: {ae: identity.onnx, small: small.onnx}\n"
                            "strategy: {type: convert, converter: ae, classifier: small}\n")
    with load_spec(convert) as deployment:
        assert not has_confidence_head(deployment.engines["ae"])
        assert deployment.strategy.classifier.uses_head
    probs = _spec(models, "engines: {small: {path: small.onnx, output_is_probs: true}}\n"
                          "strategy: small\n", "probs.yaml")
    with load_spec(probs) as deployment:
        assert not has_confidence_head(deployment.engines["small"])


def test_models_of_every_toolkit_command_compose(models, digits_splits):
    """`toolkit export` records channel order "L" for a 1-channel input, `train pool` and `prune`
    recorded null: a cascade of one of each must load (issue 12)."""
    import json

    from basics.fileio import sha256_file
    from engines.model_metadata import ModelMetadata
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    for name, order in (("linear.onnx", "L"), ("small.onnx", None)):
        path = str(models / name)
        with OnnxRuntimeEngine(path) as engine:
            data = ModelMetadata(inputs=engine.inputs, outputs=engine.outputs,
                                 onnx_sha256=sha256_file(path)).to_dict()
        data["preprocessing"]["channel_order"] = order  # as each command wrote it
        with open(path + ".json", "w") as handle:
            json.dump(data, handle)
    with load_spec(_spec(models, CASCADE)) as deployment:
        report = run_deployment(deployment, digits_splits[2])
    assert deployment.preprocessing.channel_order == "L" and report.samples == len(digits_splits[2])
