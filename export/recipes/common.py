"""What the recipes share: the data and its fixed split, augmentation, one training loop, export.

Data: a bundled name (``digits``, ``digits16``, ``digits-hard``), an ``.npz``/``.npy`` or an image
folder, cut once into train / validation / test by the one split rule of
:mod:`calibration.splits` (60/20/20, seeded; the same split as ``--data <data>:val`` elsewhere).
Every recipe writes the split it used to ``<out>/split.json`` (indices, or file lists for a folder),
and the next commands it prints read their data through it (``--data <out>/split.json:val``).
Models train on the train split only; choices (thresholds, pairs) belong to the validation split;
the test split is for reporting.

Augmentation (on by default, the same for every model a recipe trains, so comparisons stay fair):
each training batch is randomly rotated (+-10 degrees) and shifted (+-1 px), bilinear, zeros
outside. It is applied to the *input* only: a converting autoencoder still learns to produce its
unrotated target. For data as distorted as ``digits-hard``, :meth:`AugmentConfig.hard` (+-30
degrees, +-2 px, Gaussian noise sigma 0.1, about the distortion digits-hard itself was made with)
trains every model markedly better; it is not the default because it hurts clean data (8x8
``digits``).
"""
import io
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from basics.errors import InputError
from basics.fileio import write_bytes_atomic
from basics.progress import progress_bar
from calibration.datasets import list_image_folder, load_dataset, resolve_data
from engines.preprocess import Preprocessing
from calibration.splits import SPLIT_FRACTIONS, make_split_file, whole_data

MIN_SAMPLES = 10
SPLIT_FILE = "split.json"


class RecipeData(object):
    """``train``/``val``/``test`` :class:`calibration.datasets.Dataset` of one source.

    ``preprocessing`` is what a device must do to raw images to feed the models (identity for the
    bundled digits and float ``.npz`` data; resize + channel order for image folders).
    ``split``: the :class:`calibration.splits.SplitFile` the parts were cut by (None for parts
    made by hand, e.g. in tests: then no split file is written).
    """

    def __init__(self, spec, train, val, test, preprocessing, split=None):
        self.spec = spec
        self.train = train
        self.val = val
        self.test = test
        self.preprocessing = preprocessing
        self.split = split

    def write_split(self, out_dir):
        """Write the split to ``<out_dir>/split.json``; returns its path (None without a split)."""
        if self.split is None:
            return None
        return self.split.write(os.path.join(out_dir, SPLIT_FILE))


    @property
    def input_shape(self):
        """(C, H, W) of every image."""
        return tuple(int(d) for d in self.train.images.shape[1:])

    @property
    def class_names(self):
        return list(self.train.class_names)

    @property
    def num_classes(self):
        return len(self.train.class_names)

    def to_dict(self):
        return {"spec": self.spec, "input_shape": list(self.input_shape),
                "class_names": self.class_names, "split_fractions": list(SPLIT_FRACTIONS),
                "samples": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
                "split_file": None if self.split is None else SPLIT_FILE}


def data_arg(out_dir, data, part):
    """The ``--data`` value giving exactly ``part`` of a recipe's split again in other commands,
    from the ``data`` summary (:meth:`RecipeData.to_dict`) of a recipe that wrote to ``out_dir``."""
    if data.get("split_file"):
        return "{}:{}".format(os.path.join(out_dir, data["split_file"]), part)
    return "{}:{}".format(data["spec"], part)


def load_recipe_data(spec, input_shape=None, split_seed=0):
    """Load ``spec`` and split it 60/20/20 with ``split_seed`` (:mod:`calibration.splits`).

    The default split is the one ``--data <spec>:val`` gives elsewhere; the recipes also write it
    (:meth:`RecipeData.write_split`), so later commands can name it exactly.
    ``input_shape`` (C, H, W) is needed for an image folder (images are resized to it); for other
    data it must match the images when given.
    """
    spec = whole_data(str(spec), "the recipe")
    ref = resolve_data(spec)
    folder = ref.kind == "folder"
    if folder and input_shape is None:
        raise InputError("training on an image folder needs its input shape CxHxW (e.g. 1x16x16)")
    data = load_dataset(spec, shape_chw=tuple(input_shape) if input_shape else None)
    if input_shape is not None and tuple(data.images.shape[1:]) != tuple(input_shape):
        raise InputError("the images of {} are {} but the input shape says {}".format(
            spec, _shape_text(data.images.shape[1:]), _shape_text(input_shape)))
    if data.labels is None:
        raise InputError("{} has no labels; training needs labelled data".format(spec))
    if len(data) < MIN_SAMPLES:
        raise InputError("{} has {} samples; training needs at least {}".format(
            spec, len(data), MIN_SAMPLES))
    if len(np.unique(data.labels)) < 2:
        raise InputError("{} has a single class; a classifier needs at least two".format(spec))
    if data.labels.min() < 0 or data.labels.max() >= max(len(data.class_names), 1):
        raise InputError("{}: labels must be in 0..{} (one per class name)".format(
            spec, len(data.class_names) - 1))
    channels = data.images.shape[1]
    if channels not in (1, 3):
        raise InputError("{}: images must have 1 or 3 channels, got {}".format(spec, channels))
    train, val, test = data.split(SPLIT_FRACTIONS, seed=split_seed)
    split = make_split_file(ref.source, len(data), seed=split_seed, data_seed=ref.seed,
                            files=list_image_folder(ref.source)[0] if folder else None)
    if folder:
        preprocessing = Preprocessing(resize_hw=data.images.shape[2:],
                                      channel_order="L" if channels == 1 else "RGB")
    else:
        preprocessing = Preprocessing()
    return RecipeData(spec, train, val, test, preprocessing, split)


def _shape_text(shape):
    return "x".join(str(int(d)) for d in shape)


class AugmentConfig(object):
    """Random rotation (+- ``rotate_deg``), shift (+- ``shift_px``) and Gaussian noise
    (``noise_sigma``) of training inputs; all zero: no augmentation."""

    def __init__(self, rotate_deg=10.0, shift_px=1.0, noise_sigma=0.0):
        for label, value in (("rotation", rotate_deg), ("shift", shift_px), ("noise", noise_sigma)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1e6:
                raise InputError("augmentation {} must be a number >= 0, got {!r}".format(label, value))
        self.rotate_deg = float(rotate_deg)
        self.shift_px = float(shift_px)
        self.noise_sigma = float(noise_sigma)

    @classmethod
    def off(cls):
        return cls.preset("off")

    @classmethod
    def hard(cls):
        """Strong augmentation for heavily distorted data such as ``digits-hard`` (made with
        rotations up to +-30 degrees, shifts up to +-2 px and noise of sigma 0.2)."""
        return cls.preset("hard")

    @classmethod
    def preset(cls, name):
        """The named augmentation of :data:`AUGMENT_PRESETS` (``default``, ``hard``, ``off``)."""
        if name not in AUGMENT_PRESETS:
            raise InputError("unknown augmentation '{}'; choose from {}".format(
                name, ", ".join(AUGMENT_PRESETS)))
        return cls(*AUGMENT_PRESETS[name])

    @property
    def enabled(self):
        return bool(self.rotate_deg or self.shift_px or self.noise_sigma)

    def to_dict(self):
        return {"rotate_deg": self.rotate_deg, "shift_px": self.shift_px,
                "noise_sigma": self.noise_sigma}


#: Named augmentations, (rotation degrees, shift px, noise sigma): ``default`` for clean data
#: (``digits``); ``hard`` for data as distorted as ``digits-hard`` (there it lifts every model of
#: the pool and CBNet by about a point; on clean 8x8 ``digits`` it costs several); ``off``.
AUGMENT_PRESETS = {"default": (10.0, 1.0, 0.0), "hard": (30.0, 2.0, 0.1), "off": (0.0, 0.0, 0.0)}


def augment(batch, config, generator):
    """A randomly rotated/shifted (and noised) copy of the NCHW tensor ``batch``."""
    if not config.enabled:
        return batch
    count, _, height, width = batch.shape
    angle = (torch.rand(count, generator=generator) * 2 - 1) * math.radians(config.rotate_deg)
    shift = (torch.rand(count, 2, generator=generator) * 2 - 1) * config.shift_px
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0] * 2 / width], 1),
                         torch.stack([sin, cos, shift[:, 1] * 2 / height], 1)], 1)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    out = F.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if config.noise_sigma:
        out = (out + torch.randn(out.shape, generator=generator) * config.noise_sigma).clamp(0, 1)
    return out


class FitConfig(object):
    """One training run: epochs, batch size, peak learning rate (Adam, one-cycle schedule),
    weight decay, seed and input augmentation."""

    def __init__(self, epochs=20, batch_size=64, lr=3e-3, weight_decay=1e-4, seed=0, augment=None):
        self.epochs = _positive_int(epochs, "epochs")
        self.batch_size = _positive_int(batch_size, "batch size")
        if not isinstance(lr, (int, float)) or not lr > 0:
            raise InputError("learning rate must be positive, got {!r}".format(lr))
        if not isinstance(weight_decay, (int, float)) or weight_decay < 0:
            raise InputError("weight decay must be >= 0, got {!r}".format(weight_decay))
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.seed = int(seed)
        self.augment = AugmentConfig() if augment is None else augment

    def to_dict(self):
        return {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                "weight_decay": self.weight_decay, "seed": self.seed,
                "augment": self.augment.to_dict()}


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError("{} must be a positive integer, got {!r}".format(name, value))
    return int(value)


def fit(model, images, targets, config, loss="ce", desc="train", progress=True):
    """Train ``model`` on numpy ``images`` (N, C, H, W) against ``targets`` (class indices for
    ``loss="ce"``, images for ``loss="mse"``); returns the model in eval mode and the last epoch's
    mean loss. Deterministic for a seed (on one machine and thread count)."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.RandomState(config.seed)
    inputs = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    wanted = torch.from_numpy(np.ascontiguousarray(targets))
    if len(inputs) != len(wanted):
        raise InputError("{} images but {} targets".format(len(inputs), len(wanted)))
    loss_fn = nn.CrossEntropyLoss() if loss == "ce" else nn.MSELoss()
    steps_per_epoch = (len(inputs) + config.batch_size - 1) // config.batch_size
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr,
                                                   total_steps=config.epochs * steps_per_epoch)
    bar = progress_bar(config.epochs, desc, "epoch", progress)
    last = float("nan")
    model.train()
    try:
        for _ in range(config.epochs):
            order = torch.from_numpy(rng.permutation(len(inputs)))
            total = 0.0
            for start in range(0, len(order), config.batch_size):
                index = order[start:start + config.batch_size]
                batch = augment(inputs[index], config.augment, generator)
                optimizer.zero_grad()
                value = loss_fn(model(batch), wanted[index])
                value.backward()
                optimizer.step()
                schedule.step()
                total += float(value.detach()) * len(index)
            last = total / len(inputs)
            bar.set_postfix_str("loss {:.4f}".format(last), refresh=False)
            bar.update(1)
    finally:
        bar.close()
    return model.eval(), last


@torch.no_grad()
def predict(model, images, batch_size=256):
    """``model``'s outputs (eval mode) for a float32 NCHW numpy array, as numpy."""
    model.eval()
    parts = [model(torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size],
                                                         dtype=np.float32))).numpy()
             for i in range(0, len(images), batch_size)]
    return np.concatenate(parts)


def softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def accuracy(logits, labels):
    """Share of rows whose arg-max is the label."""
    return float(np.mean(np.argmax(logits, axis=1) == np.asarray(labels)))


def count_parameters(model):
    return int(sum(p.numel() for p in model.parameters()))


def save_weights(model, path):
    """The model's state dict as a ``.pt`` file (atomic); ``toolkit export --weights`` reads it."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def export_onnx(model, path, input_shape, data, source, output_name="logits", class_names=True):
    """Export ``model`` (input ``input`` N x C x H x W) with parity check and metadata sidecar
    through :func:`export.onnx_export.export_to_onnx`; returns its ExportResult."""
    from engines.model_metadata import ModelMetadata
    from export.onnx_export import export_to_onnx
    metadata = ModelMetadata(class_names=data.class_names if class_names else None,
                             preprocessing=data.preprocessing, source=source)
    return export_to_onnx(model, path, (1,) + tuple(input_shape), input_names=("input",),
                          output_names=(output_name,), dynamic_batch=True, metadata=metadata,
                          parity_inputs=data.val.images[:16])


class Stopwatch(object):
    """``with Stopwatch() as watch: ...``; ``watch.seconds`` afterwards."""

    def __enter__(self):
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start
        return False
