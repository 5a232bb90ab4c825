import pytest

from basics.errors import InputError

torch = pytest.importorskip("torch")

from export.recipes import pool_models  # noqa: E402


@pytest.mark.parametrize("hw", [(16, 16), (8, 12)])
def test_converter_maps_images_to_images_in_unit_range(hw):
    model = pool_models.converting_autoencoder(1, hw, widths=(4, 8), latent=8).eval()
    with torch.no_grad():
        out = model(torch.randn(3, 1, *hw) * 5)
    assert out.shape == (3, 1) + hw
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_converter_rejects_sides_not_divisible_by_4():
    with pytest.raises(InputError, match="divisible by 4, got 10x16"):
        pool_models.converting_autoencoder(1, (10, 16))


@pytest.mark.parametrize("name", sorted(pool_models.FACTORIES))
def test_factories_classify_the_size_they_are_built_for(name):
    for hw in ((8, 8), (16, 16), (12, 8)):
        model = pool_models.FACTORIES[name](1, 7, input_hw=hw).eval()
        with torch.no_grad():
            assert model(torch.zeros(2, 1, *hw)).shape == (2, 7)


def test_bad_image_size():
    with pytest.raises(InputError, match="image size must be positive"):
        pool_models.flat_cnn(input_hw=(0, 8))


def test_flat_cnn_weights_reload_through_the_model_loader(tmp_path):
    from export.model_loader import load_model
    model = pool_models.flat_cnn().eval()
    with torch.no_grad():
        expected = model(torch.ones(1, 1, 16, 16))
    path = str(tmp_path / "w.pt")
    torch.save(model.state_dict(), path)
    loaded = load_model("export.recipes.pool_models:flat_cnn", weights=path)
    with torch.no_grad():
        assert torch.allclose(loaded(torch.ones(1, 1, 16, 16)), expected)


def test_half_resnet_sits_between_mid_resnet_and_large_cnn():
    from export.models import large_cnn
    sizes = [sum(p.numel() for p in model.parameters())
             for model in (pool_models.mid_resnet(), pool_models.half_resnet(), large_cnn())]
    assert sizes[0] < sizes[1] < sizes[2]
