"""Reading user ``.npz`` / ``.npy`` files safely: never unpickling, one-line errors for object
arrays (pickles), damaged archives and non-numeric data."""
import os
import zipfile

import numpy as np

from basics.errors import InputError


def read_arrays(path, what="data file"):
    """``{name: array}`` of an ``.npz`` (``{"": array}`` for an ``.npy``), every array numeric.

    Object arrays (which only a pickle can hold) are refused, never loaded."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError("no such {}: {}".format(what, path))
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            arrays = {"": loaded}
        else:
            with loaded:
                arrays = {name: loaded[name] for name in loaded.files}
    except ValueError as exc:
        if "Object arrays" in str(exc):
            raise InputError("{} holds an object array (a pickle); pickles are never loaded: "
                             "save plain numeric arrays (np.savez)".format(path)) from None
        if "pickled data" in str(exc):
            raise InputError("{} is not a readable .npz/.npy file (neither a zip archive nor an "
                             ".npy array; pickles are never loaded)".format(path)) from None
        raise InputError("{} is not a readable .npz/.npy file: {}".format(
            path, _first_line(exc))) from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise InputError("{} is not a readable .npz/.npy file: {}".format(
            path, _first_line(exc))) from None
    return arrays


def numeric(array, name, path):
    """``array`` when it holds numbers (bool, int, float), else a one-line InputError."""
    if array.dtype.kind not in "biuf":
        raise InputError("{}: '{}' must hold numbers, got {} values".format(
            path, name, _kind_name(array.dtype)))
    return array


def class_labels(array, name, path):
    """``array`` as int64 class labels: integers (or integral floats) of 0 or more, 1-D."""
    array = numeric(np.asarray(array), name, path)
    if array.ndim != 1:
        raise InputError("{}: '{}' must be one label per image (1-D), got shape {}".format(
            path, name, array.shape))
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise InputError("{}: '{}' must be whole class numbers, got fractions or "
                             "NaN".format(path, name))
    if len(array) and array.min() < 0:
        raise InputError("{}: '{}' must be class numbers from 0, got {}".format(
            path, name, int(array.min())))
    return array.astype(np.int64)


def _kind_name(dtype):
    return {"U": "text", "S": "bytes", "O": "object", "M": "date", "m": "time-delta",
            "V": "structured", "c": "complex"}.get(dtype.kind, str(dtype))


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
