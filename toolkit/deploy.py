"""Data for deployments: encoded files (:class:`FileSet`), decoding and preprocessing them for a
loaded deployment, and the paper's duplicated-samples protocol (:func:`duplicate`).

The spec schema is :mod:`toolkit.spec`, loading :mod:`toolkit.deployment`, running
:mod:`toolkit.running`, writing specs :mod:`toolkit.spec_writing`.
"""
import io
import os

import numpy as np

from basics.errors import InputError
from basics.lazy import lazy_import


# -- data ------------------------------------------------------------------------------------------
class _Blob(bytes):
    """File bytes that remember where they came from (for error messages)."""

    source = None


class FileSet(object):
    """Encoded samples (file bytes) to classify through the memo's encoded path: ``sources``
    (names), ``blobs`` (bytes), ``labels`` (int64 or None), ``class_names``."""

    def __init__(self, sources, blobs, labels=None, class_names=None, name="files"):
        if not len(blobs):
            raise InputError("{}: the data set is empty".format(name))
        if len(sources) != len(blobs):
            raise InputError("{} sources for {} files".format(len(sources), len(blobs)))
        self.sources = list(sources)
        self.blobs = []
        for source, blob in zip(self.sources, blobs):
            tagged = _Blob(blob)
            tagged.source = source
            self.blobs.append(tagged)
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.class_names = list(class_names or [])
        self.name = name

    def __len__(self):
        return len(self.blobs)

    @classmethod
    def from_folder(cls, root, ref=None):
        """Every image of an image folder (one sub-folder per class), read as bytes; with
        ``ref`` (a :class:`calibration.datasets.DataRef` of the folder), only its part."""
        from calibration.datasets import list_image_folder
        files, classes = list_image_folder(root)
        name = os.path.basename(os.path.normpath(root))
        index = None if ref is None else ref.index(files=files)
        if index is not None:
            files, name = [files[i] for i in index], ref.name
        if not files:
            raise InputError("{}: the data set is empty".format(name))
        blobs = []
        for path, _ in files:
            try:
                with open(path, "rb") as handle:
                    blobs.append(handle.read())
            except OSError as exc:
                raise InputError("cannot read {}: {}".format(path, exc.strerror or exc)) from None
        return cls([p for p, _ in files], blobs, [label for _, label in files], classes, name)


def make_decoder(deployment):
    """``decode(blob) -> float32 (C, H, W)``: decode the image, convert it to the model's
    channels and size, and apply the deployment's preprocessing."""
    image_module = lazy_import("PIL.Image", "reading image files")
    prep = deployment.preprocessing
    channels, height, width = deployment.input_shape
    if height < 1 or width < 1:
        if prep.resize_hw is None:
            raise InputError("the model's input size is dynamic; set preprocessing.resize_hw")
        height, width = prep.resize_hw
    mode = "L" if channels == 1 and prep.channel_order is None else "RGB"

    def decode(blob):
        try:
            image = image_module.open(io.BytesIO(blob))
            image = image.convert(mode)
        except Exception as exc:  # noqa: BLE001 - PIL raises many kinds
            raise InputError("cannot read image {}: {}".format(
                getattr(blob, "source", None) or "(bytes)", exc)) from None
        if prep.resize_hw is None and image.size != (width, height):
            image = image.resize((width, height), image_module.BILINEAR)
        return prep.apply(np.asarray(image, dtype=np.uint8)[None])[0]
    return decode


DUPLICATE_TRANSFORMS = ("none", "rotate", "flip")


def _transform_images(images, transform):
    if transform == "rotate":
        return np.ascontiguousarray(np.rot90(images, 1, axes=(2, 3)))
    if transform == "flip":
        return np.ascontiguousarray(images[:, :, :, ::-1])
    return images


def duplicated_indices(size, fraction, seed=0):
    """The indices of the samples :func:`duplicate` appends, in the order it appends them."""
    count = int(round(float(fraction) * size))
    return np.random.RandomState(seed).permutation(size)[:count]


def duplicate(data, fraction, transform="none", seed=0):
    """The paper's protocol: append a shuffled copy of a share ``fraction`` (0..1) of the samples
    (``transform``: ``none``, ``rotate`` by 90 degrees, or ``flip`` left-right). Works on a
    :class:`calibration.datasets.Dataset` or a :class:`FileSet` (transformed files are re-encoded
    as PNG, so they are different bytes)."""
    fraction = float(fraction)
    if not 0.0 <= fraction <= 1.0:
        raise InputError("the duplicated share must be between 0 and 1, got {:g}".format(fraction))
    if transform not in DUPLICATE_TRANSFORMS:
        raise InputError("the duplicate transform must be one of {}, got '{}'".format(
            ", ".join(DUPLICATE_TRANSFORMS), transform))
    picked = duplicated_indices(len(data), fraction, seed)
    if len(picked) == 0:
        return data
    suffix = "+dup{:g}{}".format(fraction, "" if transform == "none" else "-" + transform)
    if isinstance(data, FileSet):
        blobs = [data.blobs[i] if transform == "none" else _transform_blob(data.blobs[i], transform)
                 for i in picked]
        sources = [data.sources[i] + ("" if transform == "none" else "#" + transform)
                   for i in picked]
        labels = None if data.labels is None else np.concatenate([data.labels, data.labels[picked]])
        return FileSet(data.sources + sources, data.blobs + blobs, labels, data.class_names,
                       data.name + suffix)
    from calibration.datasets import Dataset
    images = np.concatenate([data.images, _transform_images(data.images[picked], transform)])
    labels = None if data.labels is None else np.concatenate([data.labels, data.labels[picked]])
    sources = None if data.sources is None else list(data.sources) + [
        data.sources[i] for i in picked]
    return Dataset(images, labels, data.class_names, data.name + suffix, sources)


def _transform_blob(blob, transform):
    image_module = lazy_import("PIL.Image", "reading image files")
    try:
        image = image_module.open(io.BytesIO(blob))
        image.load()
    except Exception as exc:  # noqa: BLE001
        raise InputError("cannot read image {}: {}".format(
            getattr(blob, "source", None) or "(bytes)", exc)) from None
    method = image_module.ROTATE_90 if transform == "rotate" else image_module.FLIP_LEFT_RIGHT
    out = io.BytesIO()
    image.transpose(method).save(out, format="PNG")
    return out.getvalue()


def prepare_images(deployment, images):
    """Float32 NCHW data-set images (in [0, 1]) -> the deployment's input (its preprocessing),
    with a one-line error when the result does not fit the model."""
    prep = deployment.preprocessing
    out = images if prep.is_identity else prep.apply(images)
    want = deployment.input_shape
    if out.ndim != 4 or any(w not in (-1, g) for w, g in zip(want, out.shape[1:])):
        raise InputError("the data's images are {} but the deployment takes {} (set "
                         "preprocessing.resize_hw / channel_order in the spec)".format(
                             "x".join(str(d) for d in out.shape[1:]),
                             "x".join("N" if d == -1 else str(d) for d in want)))
    return np.ascontiguousarray(out, dtype=np.float32)
