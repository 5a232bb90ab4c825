"""Shared fixtures: the bundled digits data and small trained models exported to ONNX.

Trained once per test session (a few seconds on 2 cores) and shared by every test that needs a
real model, so the suite stays fast.
"""
import os

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# NVIDIA's TensorRT/pycuda name lists: shared/trt-api beside the repository, or $TRT_API_DIR
TRT_API_DIR = os.environ.get("TRT_API_DIR") or os.path.join(os.path.dirname(REPO_ROOT), "shared",
                                                            "trt-api")


@pytest.fixture(scope="session")
def digits_splits():
    """(train, val, test) of the 8x8 digits, the fixed 60/20/20 split."""
    from calibration.datasets import load_digits_variant
    return load_digits_variant("digits").split(seed=0)


def _export_plain(model, path, shape):
    """Export through the toolkit's exporter (input 'input', output 'logits', dynamic batch):
    writes ``path`` and its metadata sidecar ``path.json``; returns ``path`` as a str."""
    from export.onnx_export import export_to_onnx
    result = export_to_onnx(model, str(path), tuple(shape), input_names=("input",),
                            output_names=("logits",))
    return str(result.onnx_path)


@pytest.fixture(scope="session")
def trained_small_cnn(digits_splits):
    """A small_cnn trained for a few epochs on digits (torch module, eval mode)."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from export import models, training
    model = models.small_cnn()
    return training.train_classifier(model, digits_splits[0], training.TrainConfig(epochs=6))


@pytest.fixture(scope="session")
def small_cnn_onnx(trained_small_cnn, tmp_path_factory):
    """Path of ``trained_small_cnn`` exported to ONNX (input 'input' Nx1x8x8, output 'logits'),
    with its metadata sidecar ``<path>.json`` (identity preprocessing, no class names)."""
    path = tmp_path_factory.mktemp("models") / "small_cnn.onnx"
    return _export_plain(trained_small_cnn, path, (1, 1, 8, 8))


@pytest.fixture
def rng():
    return np.random.RandomState(0)
