import json
import os

import numpy as np
import pytest

from basics.errors import InputError

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from export.recipes import cbnet  # noqa: E402

# 6 samples, 2 classes: rows are softmax outputs of the lightweight classifier
PROBS = np.array([[0.95, 0.05],   # class 0, easy
                  [0.99, 0.01],   # class 0, easy, most confident
                  [0.60, 0.40],   # class 0, right but unsure
                  [0.30, 0.70],   # class 1, right but unsure
                  [0.92, 0.08],   # class 1, confidently wrong
                  [0.20, 0.80]])  # class 1, right but unsure
LABELS = np.array([0, 0, 0, 1, 1, 1])


def test_easy_images_are_right_and_confident():
    np.testing.assert_array_equal(cbnet.easy_mask(PROBS, LABELS, 0.9),
                                  [True, True, False, False, False, False])


def test_easy_sets_fall_back_to_the_most_confident_of_a_class():
    sets, fallback = cbnet.easy_sets(PROBS, LABELS, 2, threshold=0.9, min_per_class=2)
    np.testing.assert_array_equal(sets[0], [0, 1])
    np.testing.assert_array_equal(sets[1], [5, 3])  # by the true class's probability
    assert fallback == [1]


def test_targets_per_mode():
    images = np.array([0.0, 1.0, 0.9, 5.0, 9.0, 4.0], dtype=np.float32).reshape(6, 1, 1, 1)
    sets = {0: np.array([0, 1]), 1: np.array([3, 5])}
    proto = cbnet.choose_targets(images, LABELS, PROBS, sets, "prototype")
    np.testing.assert_array_equal(proto, [1, 1, 1, 5, 5, 5])
    pixel = cbnet.choose_targets(images, LABELS, PROBS, sets, "nearest-pixel")
    np.testing.assert_array_equal(pixel, [0, 1, 1, 3, 3, 5])  # easy images are their own target
    features = np.array([[0.0], [10.0], [9.0], [0.0], [1.0], [10.0]])
    feature = cbnet.choose_targets(images, LABELS, PROBS, sets, "nearest-feature", features)
    np.testing.assert_array_equal(feature, [0, 1, 1, 3, 3, 5])
    with pytest.raises(InputError, match="needs the classifier's features"):
        cbnet.choose_targets(images, LABELS, PROBS, sets, "nearest-feature")


@pytest.mark.parametrize("kwargs, words", [
    ({"light": "nope"}, "unknown lightweight classifier"),
    ({"easy_threshold": 0.0}, "easy threshold must be in"),
    ({"easy_threshold": 1.5}, "easy threshold must be in"),
    ({"min_easy_per_class": 0}, "min easy images per class"),
    ({"target": "nearest"}, "target must be one of"),
    ({"ae_widths": (8,)}, "two positive channel widths"),
    ({"ae_widths": (8, 0)}, "two positive channel widths"),
    ({"ae_latent": 0}, "latent size must be a positive integer"),
    ({"ae_blocks": -1}, "blocks must be 0 or more"),
    ({"ae_epochs": 0}, "epochs must be a positive integer"),
])
def test_bad_configs(kwargs, words):
    with pytest.raises(InputError, match=words):
        cbnet.CBNetConfig(**kwargs)


def test_features_are_the_last_linear_layers_input(small_recipe_data):
    from export.recipes.pool import build_model
    model = build_model("light_cnn", 1, 10, (1, 8, 8))
    images = small_recipe_data.val.images[:5]
    features = cbnet.classifier_features(model, images)
    import torch
    with torch.no_grad():
        expected = model.features(torch.from_numpy(images)).flatten(1).numpy()
    np.testing.assert_allclose(features, expected, rtol=1e-6)


@pytest.fixture(scope="module")
def trained_cbnet(small_recipe_data, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cbnet"))
    config = cbnet.CBNetConfig(light_epochs=3, ae_epochs=3, finetune_epochs=1, ae_widths=(4, 8),
                               ae_latent=16, target="nearest-feature")
    from toolkit.spec_writing import write_spec
    return cbnet.train_cbnet(small_recipe_data, out, config, progress=False, write_spec=write_spec)


def test_cbnet_writes_models_specs_and_summary(trained_cbnet):
    out = trained_cbnet.out_dir
    summary = json.load(open(os.path.join(out, "cbnet.json")))
    for name in ("converter.onnx", "light.onnx", "cbnet.onnx", "converter.pt", "light.pt",
                 "cbnet.yaml", "cbnet-two-stage.yaml"):
        assert os.path.isfile(os.path.join(out, name)), name
    assert summary["config"]["target"] == "nearest-feature"
    assert summary["parameters"]["converter"] > 0
    assert sum(summary["easy"]["target_pool_per_class"].values()) >= summary["easy"]["count"]
    text = "\n".join(trained_cbnet.lines())
    assert "CBNet: converter -> fine-tuned classifier" in text and "cbnet.yaml" in text


def test_both_specs_run_and_agree_with_the_summary(trained_cbnet, small_recipe_data):
    from toolkit.deployment import load_spec
    from toolkit.running import run_deployment
    test = small_recipe_data.test
    summary = trained_cbnet.to_dict()
    labels = []
    for spec in ("cbnet.yaml", "cbnet-two-stage.yaml"):
        with load_spec(os.path.join(trained_cbnet.out_dir, spec)) as deployment:
            report = run_deployment(deployment, test, batch_size=32)
        assert report.accuracy == pytest.approx(summary["accuracy"]["cbnet"]["test"],
                                                abs=1.0 / len(test))
        labels.append(report.labels)
    assert np.mean(labels[0] == labels[1]) >= 0.99


def test_converter_outputs_images(trained_cbnet, small_recipe_data):
    from engines.load import load_engine
    engine = load_engine(os.path.join(trained_cbnet.out_dir, "converter.onnx"))
    assert [s.name for s in engine.outputs] == ["image"]
    out = engine.infer({"input": small_recipe_data.val.images[:4]})["image"]
    assert out.shape == (4, 1, 8, 8) and out.min() >= 0.0 and out.max() <= 1.0


def test_cbnet_needs_sides_divisible_by_4(tmp_path):
    from calibration.datasets import Dataset
    from engines.preprocess import Preprocessing
    from export.recipes.common import RecipeData
    rng = np.random.RandomState(0)
    part = Dataset(rng.rand(12, 1, 6, 6), np.arange(12) % 2, ["a", "b"])
    data = RecipeData("x.npz", part, part, part, Preprocessing())
    with pytest.raises(InputError, match="divisible by 4; x.npz has 6x6"):
        cbnet.train_cbnet(data, str(tmp_path), progress=False)
