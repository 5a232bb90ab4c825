"""Labelled image data sets as float32 NCHW arrays: bundled digits (and harder variants), image
folders (one sub-folder per class) and ``.npz`` files.

Digits are scikit-learn's bundled digits (1797 real 8x8 scans, 10 classes), the one image data
set that can be had without a download. They ship with the toolkit as ``calibration/data/
digits.npz`` (written by ``tools/make_digits_npz.py``), read with numpy: no scikit-learn on the
device. Harder variants are derived from it deterministically:

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
        images = np.asarray(images)
        if images.dtype.kind not in "biuf":
            raise InputError("{}: images must hold numbers, got {}".format(name, images.dtype))
        images = np.ascontiguousarray(images, dtype=np.float32)
        if images.ndim != 4:
            raise InputError("{}: images must be 4-D (N, C, H, W), got shape {}".format(
                name, images.shape))
        if len(images) == 0:
            raise InputError("{}: the data set is empty".format(name))
        if labels is not None:
            from basics.npz import class_labels
            labels = class_labels(labels, "labels", name)
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
        """Cut into parts (train / validation / test) by the one split rule,
        :func:`calibration.splits.split_indices`."""
        from calibration.splits import split_indices
        parts = split_indices(len(self), seed, fractions)
        names = ("train", "val", "test", "extra")[:len(fractions)]
        return [self.subset(parts[name], "{}:{}".format(self.name, name)) for name in names]


def load_digits_variant(name="digits", seed=0):
    """One of :data:`BUNDLED`, from the bundled digits (:func:`load_bundled_digits`; no download)."""
    if name not in BUNDLED:
        raise InputError("unknown bundled data set '{}'; choose from {}".format(name, list(BUNDLED)))
    digits, labels = load_bundled_digits()
    images = (digits.astype(np.float32) / 16.0)[:, None]
    if name != "digits":
        images = _resize_batch(images, 16)
    if name == "digits-hard":
        images = harden(images, seed=seed)
    return Dataset(images, labels, [str(i) for i in range(10)], name)


DIGITS_NPZ = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "digits.npz")


def load_bundled_digits(path=DIGITS_NPZ):
    """``(images, labels)``: scikit-learn's digits as shipped in ``digits.npz`` (uint8 (1797, 8, 8)
    of 0..16, and int64 (1797,)), read with numpy only."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return archive["images"], archive["labels"].astype(np.int64)
    except (IOError, OSError, KeyError, ValueError) as exc:
        raise InputError("the bundled digits {} cannot be read ({}): reinstall the toolkit".format(
            path, exc)) from None


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


def check_labels_fit(labels, num_classes, name="data"):
    """InputError unless every label is a class of a model with ``num_classes`` outputs: a label
    outside them can never be right, and scoring it as a miss would report a wrong accuracy."""
    if labels is None or num_classes is None or not len(labels):
        return
    low, high = int(np.min(labels)), int(np.max(labels))
    if low < 0 or high >= int(num_classes):
        raise InputError("{}: labels run from {} to {} but the model has {} classes (0 to {}); "
                         "give data labelled for this model".format(
                             name, low, high, num_classes, int(num_classes) - 1))


def load_npz(path):
    """An ``.npz`` with ``images`` (or ``x``) N,C,H,W or N,H,W[,C] and optional ``labels`` (or ``y``)
    and ``class_names``."""
    from basics.npz import class_labels, numeric, read_arrays
    archive = read_arrays(path, "file")
    keys = set(archive)
    image_key = "images" if "images" in keys else "x" if "x" in keys else None
    if image_key is None:
        raise InputError("{} has no 'images' (or 'x') array; it has {}".format(path, sorted(keys)))
    images = numeric(archive[image_key], image_key, path)
    label_key = "labels" if "labels" in keys else "y" if "y" in keys else None
    labels = None if label_key is None else class_labels(archive[label_key], label_key, path)
    names = [str(n) for n in archive["class_names"].reshape(-1)] if "class_names" in keys \
        else None
    images = _nchw(images)
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
    return load_image_files(files, classes, shape_chw, os.path.basename(os.path.normpath(root)))


def load_image_files(files, classes, shape_chw, name):
    """Decode ``files`` (``[(path, class index)]``) to ``shape_chw``."""
    if not files:
        raise InputError("{}: no images to read".format(name))
    images = np.empty((len(files),) + tuple(shape_chw), dtype=np.float32)
    for i, (path, _) in enumerate(files):
        with open(path, "rb") as handle:
            images[i] = decode_image(handle.read(), shape_chw, path)
    labels = np.array([label for _, label in files], dtype=np.int64)
    return Dataset(images, labels, classes, name, sources=[path for path, _ in files])


def load_npy(path):
    """An ``.npy`` array of images (N,C,H,W or N,H,W[,C]; uint8 is scaled to [0, 1]); no labels."""
    from basics.npz import numeric, read_arrays
    arrays = read_arrays(path, "file")
    if "" not in arrays:
        raise InputError("{} is an .npz archive, not an .npy array: name it .npz".format(path))
    images = _nchw(numeric(arrays[""], "the array", path))
    return Dataset(images, None, [], os.path.basename(path))


def _nchw(images):
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    return images


class DataRef(object):
    """What a data spec names, before anything is read: ``kind`` (bundled, npz, npy, folder),
    ``source`` (bundled name or path), ``part`` (train/val/test or None), ``split`` (the
    :class:`calibration.splits.SplitFile` it came through, or None), ``seed`` (of the split rule
    and of derived bundled sets) and a display ``name``."""

    def __init__(self, spec, kind, source, part, split, seed):
        self.spec = spec
        self.kind = kind
        self.source = source
        self.part = part
        self.split = split
        self.seed = seed

    @property
    def name(self):
        if self.split is not None:
            return "{}:{}".format(self.split.path, self.part)
        base = self.source if self.kind == "bundled" else \
            os.path.basename(os.path.normpath(self.source))
        return base if self.part is None else "{}:{}".format(base, self.part)

    def index(self, count=None, files=None):
        """The samples of the part (an index array into the whole source of ``count`` samples or
        folder listing ``files``), or None for the whole source."""
        from calibration.splits import resolve_part, split_indices
        if self.part is None:
            return None
        if self.split is not None:
            return resolve_part(self.split, self.part, count, files)
        return split_indices(len(files) if files is not None else count, self.seed)[self.part]


def resolve_data(spec, split=None, seed=0):
    """The :class:`DataRef` of a data spec ``SOURCE[:PART]`` (see :mod:`calibration.splits`);
    ``split``: the part when the spec gives none."""
    from calibration.splits import (check_part, parse_data_spec, read_split_file,
                                    source_kind)
    source, part = parse_data_spec(spec)
    if part is None and split is not None:
        part = check_part(split)
    kind = source_kind(source)
    if kind == "split":
        if part is None:
            raise InputError("a split file names its parts: give {}:train, :val or :test".format(
                source))
        split_file = read_split_file(source)
        return DataRef(spec, split_file.kind, split_file.source, part, split_file,
                       split_file.data_seed)
    return DataRef(spec, kind, source, part, None, seed)


def load_dataset(spec, shape_chw=None, split=None, seed=0):
    """Load data by one string ``SOURCE[:PART]``: a bundled name (``digits``, ``digits16``,
    ``digits-hard``), an ``.npz``/``.npy`` file, an image folder (decoded to ``shape_chw``) or a
    split file, with an optional ``:train``/``:val``/``:test``: the same 60/20/20 split rule for
    every source (:mod:`calibration.splits`; ``seed`` seeds it and derived bundled sets)."""
    ref = resolve_data(spec, split=split, seed=seed)
    if ref.kind == "folder":
        if shape_chw is None:
            raise InputError("reading the image folder {} needs an image size, and the model's "
                             "input size is dynamic (export it with a fixed image size)".format(
                                 ref.source))
        files, classes = list_image_folder(ref.source)
        index = ref.index(files=files)
        if index is not None:
            files = [files[i] for i in index]
        data = load_image_files(files, classes, shape_chw, ref.name)
        return data
    if ref.kind == "bundled":
        data = load_digits_variant(ref.source, seed=ref.seed)
    elif ref.kind == "npz":
        data = load_npz(ref.source)
    else:
        data = load_npy(ref.source)
    index = ref.index(count=len(data))
    if index is None:
        return data
    if not len(index):
        raise InputError("{}: the '{}' part is empty ({} samples in all)".format(
            ref.name, ref.part, len(data)))
    return data.subset(index, ref.name)
