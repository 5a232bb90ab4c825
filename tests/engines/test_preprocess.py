import json

import numpy as np
import pytest

from basics.errors import InputError
from engines.preprocess import Preprocessing, resize_bilinear, to_nchw_float


def test_identity_passes_float_nchw_through(rng):
    images = rng.rand(2, 3, 5, 5).astype(np.float32)
    prep = Preprocessing()
    assert prep.is_identity
    out = prep.apply(images)
    assert out.dtype == np.float32 and out is not images
    np.testing.assert_array_equal(out, images)


def test_uint8_nhwc_becomes_scaled_nchw():
    images = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    out = Preprocessing().apply(images)
    assert out.shape == (2, 3, 4, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out, images.transpose(0, 3, 1, 2) / 255.0, rtol=1e-6)


def test_uint8_grayscale_and_nchw_and_alpha():
    gray = np.full((2, 6, 5), 255, dtype=np.uint8)
    assert Preprocessing().apply(gray).shape == (2, 1, 6, 5)
    nchw = np.zeros((2, 3, 6, 5), dtype=np.uint8)
    assert Preprocessing().apply(nchw).shape == (2, 3, 6, 5)
    rgba = np.zeros((1, 6, 5, 4), dtype=np.uint8)
    assert Preprocessing().apply(rgba).shape == (1, 3, 6, 5)
    assert to_nchw_float(np.zeros((2, 6, 5), np.float32)).shape == (2, 1, 6, 5)


def test_scale_applies_to_uint8_only():
    prep = Preprocessing(scale=1.0)
    np.testing.assert_array_equal(prep.apply(np.full((1, 2, 2, 1), 7, np.uint8)), 7.0)
    np.testing.assert_array_equal(prep.apply(np.full((1, 1, 2, 2), 0.5, np.float32)), 0.5)


def test_mean_std_per_channel_and_broadcast():
    images = np.ones((1, 3, 2, 2), dtype=np.float32)
    out = Preprocessing(mean=[0.0, 0.5, 1.0], std="1,0.5,0.25").apply(images)
    np.testing.assert_allclose(out[0, :, 0, 0], [1.0, 1.0, 0.0])
    out = Preprocessing(mean=0.5, std=0.25).apply(images)
    np.testing.assert_allclose(out, 2.0)


def test_channel_orders(rng):
    rgb = rng.rand(2, 3, 4, 4).astype(np.float32)
    np.testing.assert_array_equal(Preprocessing(channel_order="BGR").apply(rgb), rgb[:, ::-1])
    np.testing.assert_array_equal(Preprocessing(channel_order="rgb").apply(rgb), rgb)
    luma = Preprocessing(channel_order="L").apply(rgb)
    assert luma.shape == (2, 1, 4, 4)
    np.testing.assert_allclose(luma[:, 0], 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2],
                               rtol=1e-5)
    gray = rgb[:, :1]
    np.testing.assert_array_equal(Preprocessing(channel_order="L").apply(gray), gray)
    np.testing.assert_array_equal(Preprocessing(channel_order="RGB").apply(gray), np.repeat(gray, 3, 1))
    # OpenCV-style BGR input into an RGB model
    np.testing.assert_array_equal(Preprocessing(channel_order="RGB").apply(rgb, input_order="BGR"),
                                  rgb[:, ::-1])


def test_resize_halving_averages_2x2_blocks(rng):
    images = rng.rand(2, 1, 8, 6).astype(np.float32)
    out = Preprocessing(resize_hw=(4, 3)).apply(images)
    blocks = images.reshape(2, 1, 4, 2, 3, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(out, blocks, rtol=1e-5)


def test_resize_keeps_constant_images_and_upscales():
    images = np.full((1, 3, 3, 3), 0.25, dtype=np.float32)
    out = resize_bilinear(images, (7, 5))
    assert out.shape == (1, 3, 7, 5)
    np.testing.assert_allclose(out, 0.25, rtol=1e-6)
    ramp = np.arange(4, dtype=np.float32).reshape(1, 1, 1, 4)
    up = resize_bilinear(ramp, (1, 8))[0, 0, 0]
    assert np.all(np.diff(up) >= 0) and up[0] == 0.0 and up[-1] == 3.0


def test_full_pipeline_uint8_to_normalized():
    images = np.full((1, 8, 8, 3), 255, dtype=np.uint8)
    prep = Preprocessing(resize_hw="4x4", mean=0.5, std=0.5, channel_order="L")
    out = prep.apply(images)
    assert out.shape == (1, 1, 4, 4)
    np.testing.assert_allclose(out, 1.0, rtol=1e-5)


def test_dict_round_trip_through_json():
    prep = Preprocessing(resize_hw="32x16", mean=[0.1, 0.2, 0.3], std=[0.5], channel_order="BGR",
                         scale=1.0)
    again = Preprocessing.from_dict(json.loads(json.dumps(prep.to_dict())))
    assert again == prep and again.resize_hw == (32, 16) and again.channel_order == "BGR"
    assert Preprocessing.from_dict(None) == Preprocessing()
    assert Preprocessing.from_dict({}) == Preprocessing()


def test_check_input_shape():
    Preprocessing(resize_hw="8x8", mean=0.5, channel_order="L").check_input_shape((1, 1, 8, 8))
    for prep, shape, words in [
            (Preprocessing(channel_order="RGB"), (1, 1, 8, 8), "channel order RGB"),
            (Preprocessing(channel_order="L"), (1, 3, 8, 8), "channel order L"),
            (Preprocessing(mean=[0.1, 0.2]), (1, 3, 8, 8), "mean has 2 values"),
            (Preprocessing(std=[0.1, 0.2, 0.3]), (1, 1, 8, 8), "std has 3 values"),
            (Preprocessing(resize_hw="4x4"), (1, 1, 8, 8), "resize 4x4")]:
        with pytest.raises(InputError, match=words):
            prep.check_input_shape(shape)


@pytest.mark.parametrize("kwargs, words", [
    ({"channel_order": "XYZ"}, "channel order"),
    ({"std": [1.0, 0.0]}, "std values must be positive"),
    ({"mean": "a,b"}, "mean must be numbers"),
    ({"mean": "nan"}, "finite"),
    ({"std": ""}, "std must be one or more"),
    ({"resize_hw": "0x3"}, "resize must look like"),
    ({"resize_hw": "abc"}, "resize must look like"),
    ({"resize_hw": (1, 2, 3)}, "resize must look like"),
    ({"mean": [0.1, 0.2], "std": [0.1, 0.2, 0.3]}, "mean has 2 values but std has 3"),
    ({"scale": 0}, "scale must be positive"),
    ({"scale": "big"}, "scale must be a number"),
])
def test_bad_settings(kwargs, words):
    with pytest.raises(InputError, match=words):
        Preprocessing(**kwargs)


@pytest.mark.parametrize("data, words", [
    ({"resize": [4, 4]}, "unknown preprocessing field"),
    (["RGB"], "must be a mapping"),
    ({"channel_order": "CMYK"}, "channel order"),
])
def test_bad_dicts(data, words):
    with pytest.raises(InputError, match=words):
        Preprocessing.from_dict(data)


@pytest.mark.parametrize("images, words", [
    (np.zeros((4, 4), np.float32), "must be a batch"),
    (np.zeros((1, 2, 3, 4, 5), np.uint8), "must be a batch"),
    (np.zeros((1, 4, 4, 2), np.int32), "uint8 or float"),
    (np.zeros((1, 5, 4, 4), np.float32), "float images must be NCHW"),
    (np.zeros((1, 4, 4, 4), np.float32), "float images must be NCHW"),
    (np.zeros((1, 5, 6, 7), np.uint8), "uint8 images must be"),
])
def test_bad_images(images, words):
    with pytest.raises(InputError, match=words):
        Preprocessing().apply(images)


def test_mean_length_must_match_images_and_input_order_is_checked():
    with pytest.raises(InputError, match="mean has 3 values but the images have 1"):
        Preprocessing(mean=[0.1, 0.2, 0.3]).apply(np.zeros((1, 1, 2, 2), np.float32))
    with pytest.raises(InputError, match="input order"):
        Preprocessing().apply(np.zeros((1, 3, 2, 2), np.float32), input_order="YUV")
