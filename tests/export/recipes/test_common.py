import numpy as np
import pytest

from basics.errors import InputError

torch = pytest.importorskip("torch")

from export.recipes import common  # noqa: E402


def test_bundled_data_is_split_like_load_dataset():
    from calibration.datasets import load_dataset
    data = common.load_recipe_data("digits")
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10
    assert (len(data.train), len(data.val), len(data.test)) == (1078, 359, 360)
    val = load_dataset("digits:val")
    np.testing.assert_array_equal(data.val.images, val.images)
    assert data.preprocessing.is_identity
    assert data.to_dict()["samples"] == {"train": 1078, "val": 359, "test": 360}


@pytest.mark.parametrize("spec, words", [
    ("digits:train", "makes its own train/val/test split"),
    ("nothing-here", "neither a bundled data set"),
])
def test_bad_data_specs(spec, words):
    with pytest.raises(InputError, match=words):
        common.load_recipe_data(spec)


def test_folder_needs_an_input_shape(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(InputError, match="needs its input shape"):
        common.load_recipe_data(str(tmp_path))


def test_image_folder_gets_resize_preprocessing(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    rng = np.random.RandomState(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(6):
            pixels = rng.randint(0, 255, size=(10, 12), dtype=np.uint8)
            pil.fromarray(pixels).save(str(tmp_path / cls / "{}.png".format(i)))
    data = common.load_recipe_data(str(tmp_path), input_shape=(1, 8, 8))
    assert data.input_shape == (1, 8, 8) and data.class_names == ["cat", "dog"]
    assert data.preprocessing.resize_hw == (8, 8) and data.preprocessing.channel_order == "L"


def _npz(path, **arrays):
    np.savez(str(path), **arrays)
    return str(path)


def test_bad_npz_data(tmp_path):
    images = np.random.rand(20, 1, 8, 8).astype(np.float32)
    with pytest.raises(InputError, match="no labels"):
        common.load_recipe_data(_npz(tmp_path / "a.npz", images=images))
    with pytest.raises(InputError, match="single class"):
        common.load_recipe_data(_npz(tmp_path / "b.npz", images=images, labels=np.zeros(20, int)))
    with pytest.raises(InputError, match="at least 10"):
        common.load_recipe_data(_npz(tmp_path / "c.npz", images=images[:5],
                                     labels=np.arange(5) % 2))
    with pytest.raises(InputError, match="1 or 3 channels"):
        common.load_recipe_data(_npz(tmp_path / "d.npz", images=np.random.rand(20, 2, 8, 8),
                                     labels=np.arange(20) % 2))
    with pytest.raises(InputError, match="the input shape says 1x16x16"):
        common.load_recipe_data(_npz(tmp_path / "e.npz", images=images, labels=np.arange(20) % 2),
                                input_shape=(1, 16, 16))


def test_config_validation():
    with pytest.raises(InputError, match="epochs must be a positive integer"):
        common.FitConfig(epochs=0)
    with pytest.raises(InputError, match="batch size"):
        common.FitConfig(batch_size=-1)
    with pytest.raises(InputError, match="learning rate"):
        common.FitConfig(lr=0)
    with pytest.raises(InputError, match="weight decay"):
        common.FitConfig(weight_decay=-1)
    with pytest.raises(InputError, match="rotation must be a number >= 0"):
        common.AugmentConfig(rotate_deg=-5)
    assert not common.AugmentConfig.off().enabled and common.AugmentConfig().enabled


def test_augment_keeps_shape_and_is_seeded():
    batch = torch.rand(4, 1, 8, 8)
    config = common.AugmentConfig(rotate_deg=20, shift_px=2, noise_sigma=0.1)
    first = common.augment(batch, config, torch.Generator().manual_seed(3))
    again = common.augment(batch, config, torch.Generator().manual_seed(3))
    assert first.shape == batch.shape and torch.equal(first, again)
    assert not torch.allclose(first, batch)
    assert common.augment(batch, common.AugmentConfig.off(), None) is batch


def test_fit_learns_and_is_deterministic(small_recipe_data):
    from export.recipes.pool import build_model
    data = small_recipe_data
    config = common.FitConfig(epochs=10, seed=1)
    losses, outputs = [], []
    for _ in range(2):
        model = build_model("flat_cnn", 1, 10, data.input_shape, seed=1)
        model, loss = common.fit(model, data.train.images, data.train.labels, config,
                                 progress=False)
        losses.append(loss)
        outputs.append(common.predict(model, data.val.images))
    assert losses[0] == losses[1]
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert common.accuracy(outputs[0], data.val.labels) > 0.5  # 10 classes: chance is 0.1
    with pytest.raises(InputError, match="300 images but 5 targets"):
        common.fit(model, data.train.images, data.train.labels[:5], config, progress=False)


def test_augment_presets():
    assert common.AugmentConfig.preset("default").to_dict() == common.AugmentConfig().to_dict()
    assert common.AugmentConfig.preset("off").to_dict() == common.AugmentConfig.off().to_dict()
    hard, default = common.AugmentConfig.hard(), common.AugmentConfig()
    assert hard.to_dict() == common.AugmentConfig.preset("hard").to_dict()
    assert hard.rotate_deg > default.rotate_deg and hard.shift_px > default.shift_px
    assert hard.noise_sigma > 0 and hard.enabled
    with pytest.raises(InputError, match="unknown augmentation 'strong'; choose from default"):
        common.AugmentConfig.preset("strong")
