"""calibration.splits: one split rule for every data source, and split files."""
import json
import os

import numpy as np
import pytest

from basics.errors import InputError
from calibration.datasets import load_dataset, resolve_data
from calibration.splits import (
    make_split_file,
    parse_data_spec,
    read_split_file,
    split_indices,
    whole_data,
)


def _npz(tmp_path, count=50, name="d.npz"):
    rng = np.random.RandomState(0)
    images = rng.rand(count, 1, 8, 8).astype(np.float32)
    images[:, 0, 0, 0] = np.arange(count)  # sample i carries its index
    path = str(tmp_path / name)
    np.savez(path, images=images, labels=np.arange(count) % 3)
    return path


def _folder(tmp_path, count=20):
    image_module = pytest.importorskip("PIL.Image")
    root = tmp_path / "images"
    for i in range(count):
        folder = root / "class{}".format(i % 2)
        folder.mkdir(parents=True, exist_ok=True)
        image_module.fromarray(np.full((8, 8), i * 10, dtype=np.uint8)).save(
            str(folder / "{:02d}.png".format(i)))
    return str(root)


def test_the_rule_cuts_60_20_20_and_covers_every_sample_once():
    parts = split_indices(1797)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [1078, 359, 360]
    every = np.concatenate([parts[k] for k in ("train", "val", "test")])
    assert sorted(every.tolist()) == list(range(1797))
    assert not np.array_equal(split_indices(1797, seed=1)["val"], parts["val"])


def test_a_split_suffix_means_the_same_split_for_bundled_sets_npz_npy_and_folders(tmp_path):
    # bundled: the rule's indices into the whole set
    whole = load_dataset("digits")
    val = load_dataset("digits:val")
    np.testing.assert_array_equal(val.images, whole.images[split_indices(len(whole))["val"]])
    # .npz: only the validation samples (it used to return all 50, dropping ':val')
    path = _npz(tmp_path)
    part = load_dataset(path + ":val")
    assert len(part) == 10 and part.name == "d.npz:val"
    np.testing.assert_array_equal(part.images[:, 0, 0, 0], split_indices(50)["val"])
    np.testing.assert_array_equal(part.labels, split_indices(50)["val"] % 3)
    # .npy: the same indices
    npy = str(tmp_path / "d.npy")
    np.save(npy, np.load(path)["images"])
    np.testing.assert_array_equal(load_dataset(npy + ":test").images[:, 0, 0, 0],
                                  split_indices(50)["test"])
    assert load_dataset(npy).labels is None
    # image folder: the same rule over the sorted listing
    root = _folder(tmp_path)
    folder_val = load_dataset(root + ":val", shape_chw=(1, 8, 8))
    listing = sorted(os.path.join(root, "class{}".format(i % 2), "{:02d}.png".format(i))
                     for i in range(20))
    assert folder_val.sources == [listing[i] for i in split_indices(20)["val"]]
    assert len(folder_val) == 4


def test_split_files_give_exactly_the_recorded_parts(tmp_path):
    path = _npz(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    split = make_split_file(path, 50, seed=3)
    split.write(str(out / "split.json"))
    written = json.load(open(str(out / "split.json")))
    assert written["source"] == os.path.join("..", "d.npz") and written["kind"] == "npz"
    val = load_dataset(str(out / "split.json") + ":val")
    np.testing.assert_array_equal(val.images[:, 0, 0, 0], split_indices(50, seed=3)["val"])
    assert val.name == str(out / "split.json") + ":val"
    # the source changed: one line, not a silently different split
    _npz(tmp_path, count=51)
    with pytest.raises(InputError, match="changed since"):
        load_dataset(str(out / "split.json") + ":val")


def test_folder_split_files_name_files(tmp_path):
    from calibration.datasets import list_image_folder
    root = _folder(tmp_path)
    split = make_split_file(root, 20, files=list_image_folder(root)[0])
    split.write(str(tmp_path / "split.json"))
    test = load_dataset(str(tmp_path / "split.json:test"), shape_chw=(1, 8, 8))
    assert [os.path.relpath(s, root) for s in test.sources] == split.files["test"]
    # a new image in the folder does not move the split; a missing one is an error
    from PIL import Image
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(os.path.join(root, "class0", "00a.png"))
    again = load_dataset(str(tmp_path / "split.json:test"), shape_chw=(1, 8, 8))
    assert again.sources == test.sources
    os.remove(test.sources[0])
    with pytest.raises(InputError, match="not in .* any more"):
        load_dataset(str(tmp_path / "split.json:test"), shape_chw=(1, 8, 8))


@pytest.mark.parametrize("spec, message", [
    ("digits:dev", "unknown split 'dev' in 'digits:dev'"),
    ("nothing.npz:val", "no such file"),
    ("nowhere/:val", "neither a bundled data set"),
])
def test_bad_specs_are_one_line_errors(spec, message):
    with pytest.raises(InputError, match=message):
        load_dataset(spec)


def test_folder_without_an_image_size_says_what_is_missing(tmp_path):
    root = _folder(tmp_path, 10)
    with pytest.raises(InputError, match="reading the image folder .* needs an image size"):
        load_dataset(root + ":val")


def test_split_files_need_a_part_and_a_valid_content(tmp_path):
    path = str(tmp_path / "split.json")
    make_split_file("digits", 1797).write(path)
    with pytest.raises(InputError, match="give .*:train, :val or :test"):
        load_dataset(path)
    with open(path, "w") as handle:
        handle.write('{"format": "something else"}')
    with pytest.raises(InputError, match="is not a split file"):
        read_split_file(path)


def test_parse_and_whole_data(tmp_path):
    assert parse_data_spec("digits") == ("digits", None)
    assert parse_data_spec("a/b.npz:test") == ("a/b.npz", "test")
    odd = tmp_path / "odd:val.npz"  # an existing path with a colon is a whole source
    odd.write_bytes(b"")
    assert parse_data_spec(str(odd)) == (str(odd), None)
    assert whole_data("digits-hard", "the recipe") == "digits-hard"
    for spec in ("digits-hard:val", "x.npz:train", "out/split.json"):
        with pytest.raises(InputError, match="makes its own train/val/test split"):
            whole_data(spec, "the recipe")
    assert resolve_data("digits", split="val").name == "digits:val"
