"""Engine files: ``X.engine`` (a serialized TensorRT engine, or ONNX model bytes for the ONNX
Runtime backend) next to its sidecar ``X.engine.json``.

The sidecar records everything a later load must check before it trusts the bytes: the backend, the
TensorRT version, GPU name and compute capability it was built for, precision, batch profile, the
sha256 of the source ONNX and of the engine bytes, when and by which toolkit version it was built,
the inputs/outputs, and the model's metadata (class names, preprocessing).
"""
import json
import os

from basics.errors import EngineCompatibilityError, InputError
from basics.fileio import sha256_bytes, write_bytes_atomic, write_json_atomic
from engines.backends import backend_names
from engines.base import TensorSpec

FORMAT_VERSION = 1
SIDECAR_SUFFIX = ".json"

_REQUIRED = ("format_version", "backend", "precision", "min_batch", "opt_batch", "max_batch",
             "engine_sha256", "engine_size_bytes", "inputs", "outputs")
# every key of EngineSidecar.to_dict(); unknown keys (from a newer toolkit) are ignored on read
_FIELDS = _REQUIRED + ("workspace_mb", "tensorrt_version", "gpu_name", "compute_capability",
                       "onnxruntime_version", "source_onnx", "source_onnx_sha256", "built_at",
                       "build_seconds", "toolkit_version", "metadata", "notes", "cpu_int8_form")


def sidecar_path(engine_path):
    """``model.engine`` -> ``model.engine.json``."""
    return os.fspath(engine_path) + SIDECAR_SUFFIX


class EngineSidecar(object):
    """What one engine file is and what it was built for (the ``.engine.json`` sidecar).

    ``tensorrt_version``, ``gpu_name`` and ``compute_capability`` are None for ONNX Runtime engines;
    ``onnxruntime_version`` is None for TensorRT engines; ``metadata`` is the model's metadata as a
    dict (see :meth:`model_metadata`) or None.
    """

    def __init__(self, backend, precision, min_batch, opt_batch, max_batch, engine_sha256,
                 engine_size_bytes, inputs, outputs, workspace_mb=None, tensorrt_version=None,
                 gpu_name=None, compute_capability=None, onnxruntime_version=None,
                 source_onnx=None, source_onnx_sha256=None, built_at=None, build_seconds=None,
                 toolkit_version=None, metadata=None, notes=None, format_version=FORMAT_VERSION,
                 cpu_int8_form=None):
        if backend not in backend_names():
            raise EngineCompatibilityError("unknown engine backend '{}' (known: {})".format(
                backend, ", ".join(backend_names())))
        self.format_version = int(format_version)
        self.backend = backend
        self.precision = precision
        self.min_batch = int(min_batch)
        self.opt_batch = int(opt_batch)
        self.max_batch = int(max_batch)
        self.workspace_mb = workspace_mb
        self.engine_sha256 = engine_sha256
        self.engine_size_bytes = int(engine_size_bytes)
        self.inputs = [spec if isinstance(spec, TensorSpec) else TensorSpec.from_dict(spec)
                       for spec in inputs]
        self.outputs = [spec if isinstance(spec, TensorSpec) else TensorSpec.from_dict(spec)
                        for spec in outputs]
        self.tensorrt_version = tensorrt_version
        self.gpu_name = gpu_name
        self.compute_capability = compute_capability
        self.onnxruntime_version = onnxruntime_version
        self.source_onnx = source_onnx
        self.source_onnx_sha256 = source_onnx_sha256
        self.built_at = built_at
        self.build_seconds = build_seconds
        self.toolkit_version = toolkit_version
        self.metadata = metadata
        self.notes = list(notes or [])
        self.cpu_int8_form = cpu_int8_form  # ONNX Runtime INT8: engines.cpu_int8's form

    def to_dict(self):
        return {
            "format_version": self.format_version, "backend": self.backend,
            "precision": self.precision, "min_batch": self.min_batch, "opt_batch": self.opt_batch,
            "max_batch": self.max_batch, "workspace_mb": self.workspace_mb,
            "engine_sha256": self.engine_sha256, "engine_size_bytes": self.engine_size_bytes,
            "inputs": [spec.to_dict() for spec in self.inputs],
            "outputs": [spec.to_dict() for spec in self.outputs],
            "tensorrt_version": self.tensorrt_version, "gpu_name": self.gpu_name,
            "compute_capability": self.compute_capability,
            "onnxruntime_version": self.onnxruntime_version,
            "source_onnx": self.source_onnx, "source_onnx_sha256": self.source_onnx_sha256,
            "built_at": self.built_at, "build_seconds": self.build_seconds,
            "toolkit_version": self.toolkit_version, "metadata": self.metadata,
            "notes": self.notes, "cpu_int8_form": self.cpu_int8_form,
        }

    @classmethod
    def from_dict(cls, data, source="sidecar"):
        """Parse a sidecar dict; EngineCompatibilityError when it is not one this toolkit reads."""
        if not isinstance(data, dict):
            raise EngineCompatibilityError("{} is not an engine sidecar (a JSON object)".format(source))
        missing = [key for key in _REQUIRED if key not in data]
        if missing:
            raise EngineCompatibilityError("{} lacks {}: not an engine sidecar of this toolkit".format(
                source, ", ".join(missing)))
        if data["format_version"] != FORMAT_VERSION:
            raise EngineCompatibilityError(
                "{} has sidecar format {}; this toolkit reads format {} (rebuild the engine)".format(
                    source, data["format_version"], FORMAT_VERSION))
        try:
            return cls(**{key: value for key, value in data.items() if key in _FIELDS})
        except (TypeError, ValueError, KeyError) as exc:
            raise EngineCompatibilityError("{} is malformed: {}".format(source, exc)) from None

    def model_metadata(self):
        """The model's :class:`engines.model_metadata.ModelMetadata`, or None."""
        if not self.metadata:
            return None
        from engines.model_metadata import ModelMetadata
        return ModelMetadata.from_dict(self.metadata)

    def describe(self):
        """One line: backend, precision, batch profile and target."""
        from engines.backends import get_backend
        target = get_backend(self.backend).target_text(self)
        return "{} {}, batch {}/{}/{}{}".format(self.backend, self.precision, self.min_batch,
                                               self.opt_batch, self.max_batch, target)


def version_text(value):
    """A version or compute capability as text: ``(5, 3)`` -> ``"5.3"``, None stays None."""
    if isinstance(value, (tuple, list)):
        return ".".join(str(v) for v in value)
    return None if value is None else str(value)


def write_engine(path, engine_bytes, sidecar):
    """Write the engine bytes, then its sidecar, each atomically; fills in the sha256 and size.

    The engine goes first: a crash between the two leaves an old sidecar whose sha256 no longer
    matches, which a load reports, rather than a new sidecar that vouches for old bytes.
    """
    sidecar.engine_sha256 = sha256_bytes(engine_bytes)
    sidecar.engine_size_bytes = len(engine_bytes)
    write_bytes_atomic(path, engine_bytes)
    write_json_atomic(sidecar_path(path), sidecar.to_dict())
    return sidecar


def read_sidecar(path):
    """The :class:`EngineSidecar` of engine ``path`` (EngineCompatibilityError when missing/bad)."""
    side = sidecar_path(path)
    if not os.path.isfile(side):
        raise EngineCompatibilityError(
            "{} has no sidecar {}: it was not built by `toolkit build` (or the sidecar was not "
            "copied with it); rebuild it or copy both files".format(path, os.path.basename(side)))
    try:
        with open(side, "r") as handle:
            data = json.load(handle)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EngineCompatibilityError("sidecar {} is not valid JSON ({}); rebuild the engine".format(
            side, exc)) from None
    return EngineSidecar.from_dict(data, source="sidecar {}".format(side))


def read_engine(path):
    """``(engine bytes, EngineSidecar)`` of engine ``path``, after checking size and sha256.

    InputError when the file does not exist; EngineCompatibilityError for a missing or bad sidecar,
    a truncated file or any other change to the bytes since the build.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError("no such engine file: {}".format(path))
    sidecar = read_sidecar(path)
    with open(path, "rb") as handle:
        data = handle.read()
    if len(data) != sidecar.engine_size_bytes:
        raise EngineCompatibilityError(
            "{} is {} bytes but was built as {} bytes: the file is truncated or was replaced; "
            "copy it again or rebuild it".format(path, len(data), sidecar.engine_size_bytes))
    digest = sha256_bytes(data)
    if digest != sidecar.engine_sha256:
        raise EngineCompatibilityError(
            "{} is corrupted: its sha256 {} differs from the sidecar's {}; copy it again or "
            "rebuild it".format(path, digest[:12], str(sidecar.engine_sha256)[:12]))
    return data, sidecar
