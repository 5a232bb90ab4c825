"""The metadata sidecar of a model: ``model.onnx`` -> ``model.onnx.json``.

Written by ``toolkit export``; read on the device to know a model's inputs and outputs, class names
and preprocessing without PyTorch or ONNX installed. An engine's own sidecar (``X.engine.json``)
embeds :meth:`ModelMetadata.to_dict` of the ONNX it was built from.
"""
import json
import os

from basics.errors import InputError
from basics.fileio import sha256_file, write_json_atomic
from engines.preprocess import Preprocessing
from engines.base import TensorSpec

FORMAT_VERSION = 1
_FIELDS = ("format", "inputs", "outputs", "class_names", "preprocessing", "onnx_sha256", "opset",
           "source", "parity")


def sidecar_path(model_path):
    """``model.onnx`` -> ``model.onnx.json``."""
    return os.fspath(model_path) + ".json"


class ModelMetadata(object):
    """Inputs/outputs (:class:`TensorSpec` lists), class names, :class:`Preprocessing`, ONNX sha256.

    Optional provenance: ``opset``, ``source`` (what was exported, e.g. ``export.models:small_cnn``)
    and ``parity`` (the export's parity check: max_abs_error, max_rel_error ...).
    """

    def __init__(self, inputs=(), outputs=(), class_names=None, preprocessing=None,
                 onnx_sha256=None, opset=None, source=None, parity=None):
        self.inputs = [_spec(s) for s in inputs]
        self.outputs = [_spec(s) for s in outputs]
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        if preprocessing is None:
            preprocessing = Preprocessing()
        elif isinstance(preprocessing, dict):
            preprocessing = Preprocessing.from_dict(preprocessing)
        elif not isinstance(preprocessing, Preprocessing):
            raise InputError("preprocessing must be a Preprocessing, got {}".format(
                type(preprocessing).__name__))
        self.preprocessing = preprocessing
        self._normalize()
        self.onnx_sha256 = onnx_sha256
        self.opset = None if opset is None else int(opset)
        self.source = source
        self.parity = parity

    @property
    def num_classes(self):
        return None if self.class_names is None else len(self.class_names)

    def class_name(self, index):
        """The name of class ``index`` (its number as text when no names are known)."""
        index = int(index)
        if self.class_names is not None and 0 <= index < len(self.class_names):
            return self.class_names[index]
        return str(index)

    def _normalize(self):
        """The one place metadata is made canonical, so that models of every toolkit command
        compose in one spec: an unset channel order becomes what the input takes ("L" for 1
        channel, "RGB" for 3), as ``toolkit export`` records it."""
        prep = self.preprocessing
        shape = self.inputs[0].shape if self.inputs else ()
        if prep.channel_order is None and len(shape) == 4 and shape[1] in (1, 3):
            data = prep.to_dict()
            data["channel_order"] = "L" if shape[1] == 1 else "RGB"
            self.preprocessing = Preprocessing.from_dict(data)

    def to_dict(self):
        self._normalize()  # inputs may have been set after construction
        return {"format": FORMAT_VERSION,
                "inputs": [s.to_dict() for s in self.inputs],
                "outputs": [s.to_dict() for s in self.outputs],
                "class_names": self.class_names,
                "preprocessing": self.preprocessing.to_dict(),
                "onnx_sha256": self.onnx_sha256, "opset": self.opset, "source": self.source,
                "parity": self.parity}

    @classmethod
    def from_dict(cls, data):
        """Inverse of :meth:`to_dict`; InputError on a malformed mapping."""
        if not isinstance(data, dict):
            raise InputError("model metadata must be a JSON object, got {}".format(
                type(data).__name__))
        version = data.get("format", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise InputError("model metadata format {} is not supported (this toolkit reads {})".format(
                version, FORMAT_VERSION))
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise InputError("unknown model metadata field(s): {}".format(", ".join(unknown)))
        class_names = data.get("class_names")
        if class_names is not None and not isinstance(class_names, list):
            raise InputError("class_names must be a list, got {}".format(type(class_names).__name__))
        return cls(inputs=_spec_list(data.get("inputs", []), "inputs"),
                   outputs=_spec_list(data.get("outputs", []), "outputs"),
                   class_names=class_names,
                   preprocessing=Preprocessing.from_dict(data.get("preprocessing")),
                   onnx_sha256=data.get("onnx_sha256"), opset=data.get("opset"),
                   source=data.get("source"), parity=data.get("parity"))

    def save(self, path_json):
        """Write the sidecar JSON atomically."""
        write_json_atomic(path_json, self.to_dict())

    @classmethod
    def load(cls, path_json):
        """Read a sidecar JSON; InputError (one line) when missing or malformed."""
        path_json = os.fspath(path_json)
        if not os.path.isfile(path_json):
            raise InputError("no such metadata file: {}".format(path_json))
        try:
            with open(path_json, "rb") as handle:
                data = json.loads(handle.read().decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError("{} is not valid JSON: {}".format(path_json, exc)) from None
        try:
            return cls.from_dict(data)
        except InputError as exc:
            raise InputError("{}: {}".format(path_json, exc)) from None

    @classmethod
    def for_model(cls, onnx_path, verify=True):
        """The metadata next to ``onnx_path`` (``<onnx>.json``), or None when there is none.

        With ``verify``, a sidecar whose ``onnx_sha256`` is not the file's hash (the ONNX was
        replaced after export) is an InputError rather than silently wrong class names.
        """
        path_json = sidecar_path(onnx_path)
        if not os.path.isfile(path_json):
            return None
        meta = cls.load(path_json)
        if verify and meta.onnx_sha256 and os.path.isfile(os.fspath(onnx_path)):
            actual = sha256_file(onnx_path)
            if actual != meta.onnx_sha256:
                raise InputError("{} describes another model (sha256 {}..., the file has {}...): "
                                 "re-export it or delete the stale sidecar".format(
                                     path_json, meta.onnx_sha256[:12], actual[:12]))
        return meta

    def __eq__(self, other):
        return isinstance(other, ModelMetadata) and self.to_dict() == other.to_dict()

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return "ModelMetadata(inputs={}, outputs={}, classes={}, preprocessing={!r})".format(
            self.inputs, self.outputs, self.num_classes, self.preprocessing)


def _spec(value):
    if isinstance(value, TensorSpec):
        return value
    if isinstance(value, dict):
        return _spec_list([value], "tensor")[0]
    raise InputError("a tensor spec must be a TensorSpec or a mapping, got {}".format(
        type(value).__name__))


def _spec_list(values, what):
    if not isinstance(values, list):
        raise InputError("{} must be a list, got {}".format(what, type(values).__name__))
    specs = []
    for value in values:
        try:
            specs.append(TensorSpec.from_dict(value))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError("bad {} entry {!r}: {}".format(what, value, exc)) from None
    return specs
