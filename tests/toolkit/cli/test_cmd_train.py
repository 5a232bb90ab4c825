import json
import os
import re

import numpy as np
import pytest

from toolkit.cli.main import main


def _one_line_error(capsys, words):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and words in err[-1], err


def test_help_explains_with_examples(capsys):
    for command in (["train", "--help"], ["train", "pool", "--help"],
                    ["train", "cbnet", "--help"]):
        assert main(command) == 0
    out = capsys.readouterr().out
    for words in ("Examples:", "toolkit train pool --data digits-hard --out pool/",
                  "--models", "--baseline", "--target", "prototype", "--easy-threshold",
                  "cbnet-two-stage.yaml", "pool.json", "--input-shape"):
        assert words in out, words


def test_help_needs_no_torch():
    import subprocess
    import sys
    code = ("import sys; sys.modules['torch'] = None\n"
            "from toolkit.cli.main import main\n"
            "sys.exit(main(['train', 'cbnet', '--help']))")
    result = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert result.returncode == 0, result.stderr
    assert b"CBNet" in result.stdout


@pytest.fixture
def small_npz(tmp_path, digits_splits):
    train = digits_splits[0]
    path = str(tmp_path / "digits.npz")
    np.savez(path, images=train.images[:150], labels=train.labels[:150])
    return path


@pytest.fixture
def one_thread():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_train_pool_on_an_npz(small_npz, tmp_path, capsys, one_thread):
    pytest.importorskip("onnxruntime")
    out = str(tmp_path / "pool")
    code = main(["train", "pool", "--data", small_npz, "--out", out, "--epochs", "1",
                 "--models", "tiny_cnn", "--baseline", "small_cnn", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "small_cnn" in printed and "(baseline)" in printed
    summary = json.load(open(os.path.join(out, "pool.json")))
    assert [m["name"] for m in summary["models"]] == ["tiny_cnn", "small_cnn"]
    assert summary["data"]["samples"] == {"train": 90, "val": 30, "test": 30}
    assert summary["config"]["fit"]["augment"]["rotate_deg"] == 10.0
    # the split it trained by is written, and the next command it prints reads exactly it
    split = json.load(open(os.path.join(out, "split.json")))
    assert split["kind"] == "npz" and split["samples"] == 150
    assert {k: len(v) for k, v in split["parts"].items()} == {"train": 90, "val": 30, "test": 30}
    next_line = [line for line in printed.splitlines() if line.startswith("next: ")][0]
    data_arg = next_line.split("--data ")[1].split()[0]
    assert data_arg == os.path.join(out, "split.json") + ":val"
    from calibration.datasets import load_dataset
    source = np.load(small_npz)
    val = load_dataset(data_arg)
    np.testing.assert_array_equal(val.images, source["images"][split["parts"]["val"]])
    np.testing.assert_array_equal(val.labels, source["labels"][split["parts"]["val"]])
    # the models' recorded validation accuracy is on those very samples
    args = next_line[len("next: toolkit "):].split()
    models = sorted(os.path.join(out, f) for f in os.listdir(out) if f.endswith(".onnx"))
    args = args[:2] + models + args[3:] + ["--rule", "best-accuracy", "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "30 validation samples" in printed
    for model in summary["models"]:
        assert re.search(r"{}\s+accuracy {:.4f}".format(model["name"], model["val_accuracy"]),
                         printed)


def test_train_pool_with_hard_augmentation(small_npz, tmp_path, capsys, one_thread):
    pytest.importorskip("onnxruntime")
    out = str(tmp_path / "pool")
    code = main(["train", "pool", "--data", small_npz, "--out", out, "--epochs", "1",
                 "--models", "tiny_cnn", "--baseline", "small_cnn", "--augment", "hard",
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    augment = json.load(open(os.path.join(out, "pool.json")))["config"]["fit"]["augment"]
    assert augment == {"rotate_deg": 30.0, "shift_px": 2.0, "noise_sigma": 0.1}


def test_train_cbnet_without_augmentation(small_npz, tmp_path, capsys, one_thread):
    pytest.importorskip("onnxruntime")
    out = str(tmp_path / "cb")
    code = main(["train", "cbnet", "--data", small_npz, "--out", out, "--epochs", "1",
                 "--light-epochs", "1", "--finetune-epochs", "1", "--ae-widths", "4,8",
                 "--ae-latent", "8", "--target", "nearest-pixel", "--no-augment",
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "CBNet" in printed
    summary = json.load(open(os.path.join(out, "cbnet.json")))
    assert summary["config"]["target"] == "nearest-pixel"
    assert summary["config"]["ae_fit"]["augment"]["rotate_deg"] == 0.0
    assert summary["config"]["ae_widths"] == [4, 8]
    assert os.path.isfile(os.path.join(out, "cbnet.yaml"))
    assert "--data {}:test".format(os.path.join(out, "split.json")) in printed
    assert main(["run", os.path.join(out, "cbnet.yaml"), "--data",
                 os.path.join(out, "split.json") + ":test", "--no-progress"]) == 0
    assert "30 samples" in capsys.readouterr().out


@pytest.mark.parametrize("args, words", [
    (["pool", "--data", "digits", "--out", "{out}", "--models", "tiny_cnn,nope"],
     "unknown model(s) nope"),
    (["pool", "--data", "digits", "--out", "{out}", "--epochs", "0"],
     "epochs must be a positive integer"),
    (["pool", "--data", "digits:train", "--out", "{out}"], "makes its own train/val/test split"),
    (["pool", "--data", "x.npz:val", "--out", "{out}"], "makes its own train/val/test split"),
    (["pool", "--data", "{out}", "--out", "{out}"], "needs --input-shape"),
    (["pool", "--data", "{out}", "--out", "{out}", "--input-shape", "16x16"],
     "--input-shape must be CxHxW"),
    (["pool", "--data", "{out}", "--out", "{out}", "--input-shape", "1xax16"],
     "shape must look like"),
    (["pool", "--data", "digits", "--out", "{out}", "--threads", "-1"],
     "'--threads': -1 is not in the range x>=0"),
    (["pool", "--data", "digits", "--out", "{out}", "--augment", "hard", "--no-augment"],
     "give --augment hard or --no-augment, not both"),
    (["cbnet", "--data", "digits", "--out", "{out}", "--ae-widths", "32"],
     "--ae-widths must be two positive integers"),
    (["cbnet", "--data", "digits", "--out", "{out}", "--easy-threshold", "2"],
     "easy threshold must be in (0, 1]"),
    (["cbnet", "--data", "digits", "--out", "{out}", "--light", "nope"],
     "unknown lightweight classifier"),
    (["cbnet", "--data", "digits", "--out", "{out}", "--min-easy", "0"],
     "min easy images per class"),
])
def test_bad_inputs_are_one_line_errors(args, words, tmp_path, capsys):
    pytest.importorskip("torch")
    (tmp_path / "cls").mkdir()
    args = [a.replace("{out}", str(tmp_path)) for a in args]
    assert main(["train"] + args + ["--no-progress"]) == (2 if words.startswith("'--") else 1)
    _one_line_error(capsys, words)


def test_out_that_is_a_file(tmp_path, capsys, small_npz):
    pytest.importorskip("torch")
    path = tmp_path / "taken"
    path.write_text("x")
    assert main(["train", "pool", "--data", small_npz, "--out", str(path), "--models",
                 "tiny_cnn", "--baseline", "small_cnn", "--epochs", "1", "--no-progress"]) == 2
    assert "'--out': Directory '{}' is a file".format(path) in capsys.readouterr().err
