"""Train / validation / test splits: one rule for every kind of data source, and split files.

A data spec is ``SOURCE[:PART]``. ``SOURCE`` is a bundled set (``digits``, ``digits16``,
``digits-hard``), an ``.npz`` or ``.npy`` file, an image folder (one sub-folder per class) or a
split file (``split.json``, written by ``toolkit train``); ``PART`` is ``train``, ``val`` or
``test``. A spec that names an existing file or folder as a whole is that source without a part
(so a path containing ``:`` still works).

The rule (:func:`split_indices`): shuffle the N samples once with ``numpy.random.RandomState(seed)``
(seed 0 unless a command's ``--seed`` says otherwise), then cut 60 / 20 / 20 (the first
``round(0.6 N)`` shuffled samples are train, the next ``round(0.2 N)`` val, the rest test). Samples
are numbered in the source's own order: array order for bundled sets and ``.npz``/``.npy`` files,
sorted class folder then sorted file name for an image folder. So ``digits-hard:val``,
``hard.npz:val`` and ``images/:val`` mean the same thing everywhere.

A split file records a split that was used (by ``toolkit train``, whose models train on its
``train`` part): the source (a bundled name, or a path relative to the split file), the sample
count, the file's sha256 (``.npz``/``.npy``), the samples of each part (indices; for an image
folder, file paths relative to the folder). ``--data out/split.json:val`` gives exactly those
samples, and fails with one line when the source changed since.
"""
import json
import os

import numpy as np

from basics.errors import InputError
from basics.fileio import sha256_file, write_json_atomic

SPLIT_NAMES = ("train", "val", "test")
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)
SPLIT_FILE_FORMAT = "toolkit-split/1"


def split_indices(count, seed=0, fractions=SPLIT_FRACTIONS):
    """``{part: index array}`` of ``count`` samples by the rule in the module docstring (the parts
    are named train, val, test, extra in order)."""
    count = int(count)
    order = np.random.RandomState(seed).permutation(count)
    cuts = np.cumsum([int(round(f * count)) for f in fractions[:-1]])
    names = SPLIT_NAMES + ("extra",)
    return {names[i]: part for i, part in enumerate(np.split(order, cuts))}


def check_part(part, spec=None):
    """``part`` if it is a split name, else a one-line InputError."""
    if part not in SPLIT_NAMES:
        raise InputError("unknown split '{}'{}; use {}".format(
            part, "" if spec is None else " in '{}'".format(spec), ", ".join(SPLIT_NAMES)))
    return part


def parse_data_spec(spec):
    """``(source, part or None)`` of a data spec ``SOURCE[:PART]`` (see the module docstring)."""
    spec = str(spec)
    if os.path.exists(spec) or ":" not in spec:
        return spec, None
    source, _, part = spec.rpartition(":")
    if not source:
        raise InputError("'{}' names no data source".format(spec))
    return source, check_part(part, spec)


def is_split_file(source):
    return str(source).lower().endswith(".json")


class SplitFile(object):
    """A split file's contents: ``source`` (bundled name or a path, resolved against the file's
    folder), ``kind`` (bundled, npz, npy or folder), ``samples`` (the source's sample count),
    ``sha256`` (of an .npz/.npy source, else None), ``seed`` (of the rule that made the split, or
    None), ``data_seed`` (of derived bundled sets such as digits-hard), ``parts``
    ({part: index list}) and, for a folder, ``files`` ({part: [relative path]})."""

    def __init__(self, source, kind, samples, parts, sha256=None, seed=None, data_seed=0,
                 files=None, path=None):
        self.source = source
        self.kind = kind
        self.samples = int(samples)
        self.parts = {k: [int(i) for i in v] for k, v in parts.items()}
        self.sha256 = sha256
        self.seed = seed
        self.data_seed = int(data_seed)
        self.files = files
        self.path = path

    def to_dict(self, folder):
        """The JSON mapping, with a file source written relative to ``folder``."""
        source = self.source
        if self.kind != "bundled":
            source = os.path.relpath(os.path.abspath(source), os.path.abspath(folder))
        data = {"format": SPLIT_FILE_FORMAT, "source": source, "kind": self.kind,
                "samples": self.samples, "sha256": self.sha256, "seed": self.seed,
                "data_seed": self.data_seed, "fractions": list(SPLIT_FRACTIONS),
                "parts": {k: list(v) for k, v in self.parts.items()}}
        if self.files is not None:
            data["files"] = {k: list(v) for k, v in self.files.items()}
        return data

    def write(self, path):
        write_json_atomic(path, self.to_dict(os.path.dirname(os.path.abspath(path))))
        return path


def source_kind(source):
    """``bundled``, ``npz``, ``npy``, ``folder`` or ``split`` for a data source, else InputError."""
    from calibration.datasets import BUNDLED
    source = str(source)
    if source in BUNDLED:
        return "bundled"
    lower = source.lower()
    if lower.endswith(".npz"):
        return "npz"
    if lower.endswith(".npy"):
        return "npy"
    if is_split_file(source):
        return "split"
    if os.path.isdir(source):
        return "folder"
    raise InputError("'{}' is neither a bundled data set ({}), an .npz/.npy file, a split file "
                     "(.json) nor a folder".format(source, ", ".join(BUNDLED)))


def make_split_file(source, count, seed=0, data_seed=0, files=None):
    """The :class:`SplitFile` of the rule's split of ``source`` (``count`` samples; ``files``:
    an image folder's listing, ``[(path, label)]``)."""
    kind = source_kind(source)
    parts = {k: v.tolist() for k, v in split_indices(count, seed).items() if k in SPLIT_NAMES}
    sha = sha256_file(source) if kind in ("npz", "npy") else None
    listing = None
    if kind == "folder":
        names = [os.path.relpath(path, source) for path, _ in files]
        listing = {k: [names[i] for i in v] for k, v in parts.items()}
    return SplitFile(source, kind, count, parts, sha, seed, data_seed, listing)


def read_split_file(path):
    """The :class:`SplitFile` at ``path`` (one-line InputError on any problem)."""
    if not os.path.isfile(path):
        raise InputError("no such split file: {}".format(path))
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise InputError("{} is not a readable split file: {}".format(path, exc)) from None
    if not isinstance(data, dict) or data.get("format") != SPLIT_FILE_FORMAT:
        raise InputError("{} is not a split file (written by toolkit train; format {})".format(
            path, SPLIT_FILE_FORMAT))
    try:
        kind = str(data["kind"])
        source = str(data["source"])
        if kind != "bundled":
            source = os.path.join(os.path.dirname(os.path.abspath(path)), source)
        parts = data["parts"]
        if not isinstance(parts, dict) or not all(isinstance(v, list) for v in parts.values()):
            raise ValueError("'parts' must map split names to index lists")
        split = SplitFile(source, kind, data["samples"], parts, data.get("sha256"),
                          data.get("seed"), data.get("data_seed", 0), data.get("files"), path)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError("{} is not a valid split file: {}".format(path, exc)) from None
    if kind not in ("bundled", "npz", "npy", "folder"):
        raise InputError("{}: unknown source kind '{}'".format(path, kind))
    if kind == "folder" and not isinstance(split.files, dict):
        raise InputError("{}: an image folder's split needs its file lists".format(path))
    return split


def resolve_part(split, part, count=None, folder_files=None):
    """The index array of ``part`` of ``split`` into its source's samples, checked against the
    source as it is now: ``count`` samples (arrays) or ``folder_files`` (``[(path, label)]``)."""
    where = split.path or "the split file"
    check_part(part)
    if part not in split.parts:
        raise InputError("{} has no '{}' part".format(where, part))
    if split.kind in ("npz", "npy") and split.sha256 and os.path.isfile(split.source) and \
            sha256_file(split.source) != split.sha256:
        raise InputError("{} changed since {} was written (its sha256 differs); the split no "
                         "longer applies".format(split.source, where))
    if split.kind == "folder":
        position = {os.path.relpath(p, split.source): i for i, (p, _) in enumerate(folder_files)}
        names = split.files.get(part, [])
        missing = [n for n in names if n not in position]
        if missing:
            raise InputError("{} lists {}, which is not in {} any more".format(
                where, missing[0], split.source))
        return np.array([position[n] for n in names], dtype=np.int64)
    if count is not None and count != split.samples:
        raise InputError("{} has {} samples but {} was written for {}".format(
            split.source, count, where, split.samples))
    index = np.asarray(split.parts[part], dtype=np.int64)
    if len(index) and (index.min() < 0 or index.max() >= split.samples):
        raise InputError("{}: the '{}' indices are outside 0..{}".format(
            where, part, split.samples - 1))
    return index


def whole_data(spec, why):
    """``spec`` unchanged when it names a whole data set; a one-line InputError when it has a
    split suffix or is a split file (``why``: what makes its own split, e.g. "the recipe")."""
    source, part = parse_data_spec(spec)
    if part is not None or is_split_file(source):
        raise InputError("give the whole data set ('{}'), not a split of it: {} makes its own "
                         "train/val/test split".format(source if part else spec, why))
    return spec
