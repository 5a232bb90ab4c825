"""Labelled image data sets as float32 NCHW arrays: bundled digits (and harder variants), image
folders (one sub-folder per class) and ``.npz`` files.

Digits come from ``sklearn.datasets.load_digits`` (1797 real 8x8 scans, 10 classes), the one image
data set that can be had without a download. Harder variants are derived from it deterministically:

- ``digits``: the 8x8 images scaled to [0, 1];
- ``digits16``: upscaled to 16x16 (bilinear);
- ``digits-hard``: 16x16, each image randomly rotated (+-30 degrees), shifted (+-2 px) and with
  Gaussian noise (sigma 0.2): hard for a small CNN, still readable for a larger one.

``digits-hard`` is one random draw per image. :func:`hard_redraws` gives more draws of the same
split's images (same base digits, new rotation, shift and noise): a larger evaluation set without
leaking training digits into it.
"""
import os

import numpy as np

from basics.errors import InputError
from basics.lazy import lazy_import

BUNDLED = ("digits", "digits16", "digits-hard")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp")


class Dataset(object):
    """``images`` float32 (N, C, H, W); ``labels`` int64 (N,) or None; ``class_names`` list."""

    def __init__(self, images, labels, class_names, name="data", sources=None):
        images = np.ascontiguousarray(images, dtype=np.float32)
        if images.ndim != 4:
            raise InputError("{}: images must be 4-D (N, C, H, W), got shape {}".format(
                name, images.shape))
        if len(images) == 0:
            raise InputError("{}: the data set is empty".format(name))
        if labels is not None:
            labels = np.asarray(labels, dtype=np.int64)
            if labels.shape != (len(images),):
                raise InputError("{}: {} labels for {} images".format(name, len(labels), len(images)))
        self.images = images
        self.labels = labels
        self.class_names = list(class_names)
        self.name = name
        self.sources = sources  # optional list of file paths, one per image

    def __len__(self):
        return len(self.images)

    @property
    def num_classes(self):
        return len(self.class_names)

    def subset(self, index, name=None):
        """A new Dataset with the samples at ``index`` (an index array or a slice)."""
        labels = None if self.labels is None else self.labels[index]
        sources = None if self.sources is None else list(np.asarray(self.sources, dtype=object)[index])
        return Dataset(self.images[index], labels, self.class_names, name or self.name, sources)

    def split(self, fractions=(0.6, 0.2, 0.2), seed=0):
        """Shuffle once with ``seed`` and cut into parts (e.g. train / validation / test)."""
        order = np.random.RandomState(seed).permutation(len(self))
        cuts = np.cumsum([int(round(f * len(self))) for f in fractions[:-1]])
        names = ("train", "val", "test", "extra")
        return [self.subset(part, "{}:{}".format(self.name, names[i]))
                for i, part in enumerate(np.split(order, cuts))]


def load_digits_variant(name="digits", seed=0):
    """One of :data:`BUNDLED`, from scikit-learn's bundled digits (no download)."""
    if name not in BUNDLED:
        raise InputError("unknown bundled data set '{}'; choose from {}".format(name, list(BUNDLED)))
    sklearn_datasets = lazy_import("sklearn.datasets", "the bundled digits data set")
    raw = sklearn_datasets.load_digits()
    images = (raw.images.astype(np.float32) / 16.0)[:, None]
    if name != "digits":
        images = _resize_batch(images, 16)
    if name == "digits-hard":
        images = harden(images, seed=seed)
    return Dataset(images, raw.target, [str(i) for i in range(10)], name)


def harden(images, rotate_deg=30.0, shift_px=2.0, noise_sigma=0.2, seed=0):
    """Randomly rotate, shift and add Gaussian noise to each image (deterministic for a seed)."""
    ndimage = lazy_import("scipy.ndimage", "making harder digit variants")
    rng = np.random.RandomState(seed)
    out = np.empty_like(images)
    for i, image in enumerate(images):
        angle = rng.uniform(-rotate_deg, rotate_deg)
        shift = rng.uniform(-shift_px, shift_px, size=2)
        plane = ndimage.rotate(image[0], angle, reshape=False, order=1, mode="constant")
        out[i, 0] = ndimage.shift(plane, shift, order=1, mode="constant")
    out += rng.normal(0.0, noise_sigma, size=out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0)


REDRAW_SEED_BASE = 1000
SPLIT_NAMES = ("train", "val", "test")


def hard_redraws(part, draws, fractions=(0.6, 0.2, 0.2), split_seed=0):
    """``draws`` extra ``digits-hard`` draws of one split's base digits: a list of Datasets, draw
    ``k`` (1..draws) being ``harden(base.images, seed=1000 + k)``, where ``base`` is the ``part``
    ("train", "val" or "test") of ``digits16`` split like ``digits-hard`` (``fractions``,
    ``split_seed``). Sample ``i`` of every draw is the same base digit as sample ``i`` of the split
    (so results can be paired or clustered by base digit); deterministic; ``draws=0`` gives []."""
    if part not in SPLIT_NAMES:
        raise InputError("unknown split '{}'; use {}".format(part, ", ".join(SPLIT_NAMES)))
    draws = int(draws)
    if draws < 0:
        raise InputError("the number of redraws must be >= 0, got {}".format(draws))
    if not draws:
        return []
    base = dict(zip(SPLIT_NAMES, load_digits_variant("digits16").split(fractions, seed=split_seed)))
    base = base[part]
    return [Dataset(harden(base.images, seed=REDRAW_SEED_BASE + k), base.labels, base.class_names,
                    "digits-hard:{}:redraw{}".format(part, k))
            for k in range(1, draws + 1)]


def _resize_batch(images, size):
    ndimage = lazy_import("scipy.ndimage", "resizing images")
    factor = (1, 1, size / images.shape[2], size / images.shape[3])
    return np.clip(ndimage.zoom(images, factor, order=1), 0.0, 1.0).astype(np.float32)


def load_npz(path):
    """An ``.npz`` with ``images`` (or ``x``) N,C,H,W or N,H,W[,C] and optional ``labels`` (or ``y``)
    and ``class_names``."""
    if not os.path.isfile(path):
        raise InputError("no such file: {}".format(path))
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy raises several kinds
        raise InputError("{} is not a readable .npz file: {}".format(path, exc)) from None
    with archive:
        keys = set(archive.files)
        image_key = "images" if "images" in keys else "x" if "x" in keys else None
        if image_key is None:
            raise InputError("{} has no 'images' (or 'x') array; it has {}".format(path, sorted(keys)))
        images = archive[image_key]
        labels = archive["labels"] if "labels" in keys else archive["y"] if "y" in keys else None
        names = [str(n) for n in archive["class_names"]] if "class_names" in keys else None
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    if names is None:
        count = int(labels.max()) + 1 if labels is not None and len(labels) else 0
        names = [str(i) for i in range(count)]
    return Dataset(images, labels, names, os.path.basename(path))


def list_image_folder(root):
    """``[(path, class index)]`` and class names of an image folder (one sub-folder per class)."""
    if not os.path.isdir(root):
        raise InputError("no such folder: {}".format(root))
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not classes:
        raise InputError("{} has no class sub-folders (expected one folder per class)".format(root))
    files = []
    for index, cls in enumerate(classes):
        folder = os.path.join(root, cls)
        for fname in sorted(os.listdir(folder)):
            if fname.lower().endswith(IMAGE_SUFFIXES):
                files.append((os.path.join(folder, fname), index))
    if not files:
        raise InputError("{} has no image files ({})".format(root, ", ".join(IMAGE_SUFFIXES)))
    return files, classes


def decode_image(data, shape_chw, source="image"):
    """Encoded image bytes -> float32 (C, H, W) in [0, 1], converted to C channels and resized."""
    image_module = lazy_import("PIL.Image", "reading image files")
    import io
    channels, height, width = shape_chw
    try:
        image = image_module.open(io.BytesIO(data))
        image = image.convert("L" if channels == 1 else "RGB")
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds
        raise InputError("cannot read image {}: {}".format(source, exc)) from None
    if image.size != (width, height):
        image = image.resize((width, height), image_module.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 255.0
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def load_image_folder(root, shape_chw):
    """Decode every image of an image folder to ``shape_chw``."""
    files, classes = list_image_folder(root)
    images = np.empty((len(files),) + tuple(shape_chw), dtype=np.float32)
    for i, (path, _) in enumerate(files):
        with open(path, "rb") as handle:
            images[i] = decode_image(handle.read(), shape_chw, path)
    labels = np.array([label for _, label in files], dtype=np.int64)
    return Dataset(images, labels, classes, os.path.basename(os.path.normpath(root)),
                   sources=[path for path, _ in files])


def load_dataset(spec, shape_chw=None, split=None, seed=0):
    """Load data by one string: a bundled name (``digits``, ``digits16``, ``digits-hard``, optionally
    ``:train``/``:val``/``:test`` for the fixed 60/20/20 split), an ``.npz`` file or an image folder
    (which needs ``shape_chw``)."""
    name, _, part = str(spec).partition(":")
    part = part or split
    if name in BUNDLED:
        data = load_digits_variant(name, seed=seed)
        if part:
            parts = dict(zip(("train", "val", "test"), data.split(seed=seed)))
            if part not in parts:
                raise InputError("unknown split '{}'; use train, val or test".format(part))
            data = parts[part]
        return data
    if name.endswith(".npz"):
        return load_npz(name)
    if os.path.isdir(name):
        if shape_chw is None:
            raise InputError("reading an image folder needs the model's input shape")
        return load_image_folder(name, shape_chw)
    raise InputError("'{}' is neither a bundled data set ({}), an .npz file nor a folder".format(
        spec, ", ".join(BUNDLED)))
