"""The backend registry: one object per engine backend, with what building, loading and
``toolkit info`` need from it. Nothing else in the toolkit switches on a backend's name.

A backend is a :class:`Backend` subclass decorated with :func:`register_backend`:

- ``name`` (what a sidecar's ``backend`` and ``--backend`` say) and ``label`` (for people);
- ``available()``: whether it can build and run engines here (cheap, never raises);
- ``require()``: the same as a one-line error naming what to install, for an explicit choice;
- ``build(onnx_path, model, config, gate) -> (engine bytes, facts)`` (``gate``: the INT8 accuracy
  gate, :class:`engines.int8_gate.Int8Gate`, or None);
- ``load(engine_bytes, sidecar, path, threads, providers, confidence_head) -> Engine``, the engine
  constructed with its metadata and batch bounds (``threads``, ``providers`` and
  ``confidence_head`` are hints a backend may ignore, as TensorRT does);
- ``info() -> dict``: installed, version, usable, and the backend's own facts, and
  ``info_text(facts)``: their line in ``toolkit info``;
- ``target_text(sidecar)``: what one of its engine files was built for.

``auto`` picks the first available backend in registration order (TensorRT, then ONNX Runtime).
"""
import collections

from basics.errors import InputError, InternalError, MissingDependencyError
from basics.lazy import lazy_import

AUTO = "auto"
_BACKENDS = collections.OrderedDict()  # name -> Backend instance, in order of preference


class Backend(object):
    """The declaration of one engine backend (see the module's docstring)."""

    name = None
    label = None
    #: whether it uses ``BuildConfig.workspace_mb`` (written to the sidecar only then)
    uses_workspace = False
    #: whether building fp16/int8 needs the onnx package (to convert or inspect the model)
    precision_needs_onnx = False
    #: whether an INT8 build runs the accuracy gate only when asked (TensorRT calibrates itself;
    #: ONNX Runtime always gates its CPU form)
    int8_gate_optional = False

    def available(self):
        raise NotImplementedError

    def require(self):
        raise NotImplementedError

    def build(self, onnx_path, model, config, gate=None, progress=None):
        raise NotImplementedError

    def load(self, engine_bytes, sidecar, path, threads=0, providers=None, confidence_head=False):
        raise NotImplementedError

    def info(self):
        raise NotImplementedError

    def target_text(self, sidecar):
        """What an engine file of this backend was built for, as ``", <text>"`` (or "")."""
        return ""

    def info_text(self, facts):
        """One line about ``facts`` (what :meth:`info` returned) for ``toolkit info``."""
        if not facts["installed"]:
            return "not installed" + error_suffix(facts)
        return facts["version"] or "installed"


def error_suffix(facts):
    """`` (<error>)`` when ``facts`` hold an error, else ""."""
    return " ({})".format(facts["error"]) if facts.get("error") else ""


def register_backend(backend_class):
    """Class decorator: register one instance of a :class:`Backend` subclass by its name."""
    backend = backend_class()
    if not backend.name or backend.name == AUTO:
        raise InternalError("{} needs a name other than '{}'".format(backend_class.__name__, AUTO))
    if backend.name in _BACKENDS and type(_BACKENDS[backend.name]) is not backend_class:
        raise InternalError("backend '{}' is registered twice".format(backend.name))
    _BACKENDS[backend.name] = backend
    return backend_class


def backend_names():
    """The registered backends' names, in order of preference."""
    return tuple(_BACKENDS)


def all_backends():
    """The registered :class:`Backend` objects, in order of preference."""
    return tuple(_BACKENDS.values())


def build_choices():
    """What ``--backend`` accepts: ``auto`` and every backend's name."""
    return (AUTO,) + backend_names()


def get_backend(name):
    """The backend registered as ``name``; InputError naming the choices otherwise."""
    backend = _BACKENDS.get(name)
    if backend is None:
        raise InputError("unknown backend '{}'; use one of {}".format(
            name, ", ".join(build_choices())))
    return backend


def resolve_backend(name):
    """``auto`` -> the first available backend; a named one checked with ``require()``."""
    if name == AUTO:
        for backend in _BACKENDS.values():
            if backend.available():
                return backend
        return list(_BACKENDS.values())[-1].require()  # the fallback: says what to install
    backend = get_backend(name)
    backend.require()
    return backend


@register_backend
class TensorRTBackend(Backend):
    """NVIDIA TensorRT (on a CUDA GPU, with pycuda or cuda-python)."""

    name = "tensorrt"
    label = "TensorRT"
    uses_workspace = True
    int8_gate_optional = True

    def available(self):
        from engines.tensorrt_backend import tensorrt_available
        return tensorrt_available()

    def require(self):
        lazy_import("tensorrt", "building TensorRT engines")
        if not self.available():
            raise MissingDependencyError(
                "TensorRT is installed but cannot run here (no CUDA device or no CUDA binding: "
                "pip install pycuda or cuda-python); use --backend onnxruntime")
        return self

    def build(self, onnx_path, model, config, gate=None, progress=None):
        from engines.build import build_tensorrt_engine
        return build_tensorrt_engine(onnx_path, model, config, gate, progress)

    def load(self, engine_bytes, sidecar, path, threads=0, providers=None, confidence_head=False):
        from basics.errors import EngineCompatibilityError
        built_for = _tensorrt_target(sidecar)
        if not self.available():
            raise EngineCompatibilityError(
                "{} is a TensorRT engine built for {}, but this machine cannot run TensorRT; "
                "rebuild it here from {} with `toolkit build` (it falls back to ONNX "
                "Runtime)".format(path, built_for, sidecar.source_onnx or "its ONNX"))
        from engines import tensorrt_backend
        from engines.load import check_tensorrt_target
        check_tensorrt_target(sidecar, tensorrt_backend.runtime_facts(), path)
        return tensorrt_backend.TensorRTEngine(
            engine_bytes, identity=sidecar.engine_sha256, metadata=sidecar.model_metadata(),
            max_batch=sidecar.max_batch)

    def target_text(self, sidecar):
        return ", " + _tensorrt_target(sidecar)

    def info_text(self, facts):
        if not facts["installed"]:
            return "not installed" + error_suffix(facts)
        state = "installed but not usable here" + error_suffix(facts)
        if facts["usable"]:
            from engines.engine_file import version_text
            state = "usable on {} (compute capability {})".format(
                facts["gpu_name"], version_text(facts["compute_capability"]))
        return "{} ({})".format(facts["version"], state)

    def info(self):
        from engines.platform_info import module_version
        installed, version, error = module_version("tensorrt")
        usable, gpu = False, None
        if installed:
            try:
                from engines import tensorrt_backend
                usable = bool(tensorrt_backend.tensorrt_available())
                if usable:
                    gpu = tensorrt_backend.runtime_facts()
            except Exception as exc:  # noqa: BLE001 - a broken install: report it, do not crash
                from engines.platform_info import error_text
                error = error or error_text(exc)
        return {"installed": installed, "version": version, "usable": usable, "error": error,
                "gpu_name": gpu["gpu_name"] if gpu else None,
                "compute_capability": gpu["compute_capability"] if gpu else None}


def _tensorrt_target(sidecar):
    """What a TensorRT engine file was built for: TensorRT version, GPU, compute capability."""
    return "TensorRT {} on {} (compute capability {})".format(
        sidecar.tensorrt_version, sidecar.gpu_name, sidecar.compute_capability)


@register_backend
class OnnxRuntimeBackend(Backend):
    """ONNX Runtime (CPU anywhere; its CUDA / TensorRT providers where installed)."""

    name = "onnxruntime"
    label = "ONNX Runtime"
    precision_needs_onnx = True

    def available(self):
        from basics.lazy import is_available
        return is_available("onnxruntime")

    def require(self):
        lazy_import("onnxruntime", "building ONNX Runtime engines")
        return self

    def build(self, onnx_path, model, config, gate=None, progress=None):
        from engines.build import build_onnxruntime
        return build_onnxruntime(onnx_path, model, config, gate)

    def load(self, engine_bytes, sidecar, path, threads=0, providers=None, confidence_head=False):
        from engines.load import check_cpu_int8_form
        check_cpu_int8_form(sidecar, path)
        lazy_import("onnxruntime", "running ONNX Runtime engines")
        from engines.onnxruntime_backend import OnnxRuntimeEngine
        return OnnxRuntimeEngine(engine_bytes, providers=providers, threads=threads,
                                 max_batch=sidecar.max_batch, min_batch=sidecar.min_batch,
                                 identity=sidecar.engine_sha256, metadata=sidecar.model_metadata(),
                                 confidence_head=confidence_head)

    def target_text(self, sidecar):
        return ", onnxruntime {}".format(sidecar.onnxruntime_version) if \
            sidecar.onnxruntime_version else ""

    def info_text(self, facts):
        if not facts["installed"]:
            return "not installed" + error_suffix(facts)
        return "{} (providers: {})".format(facts["version"], ", ".join(facts["providers"]))

    def info(self):
        from engines.platform_info import module_version
        installed, version, error = module_version("onnxruntime")
        providers = []
        if installed:
            from engines.onnxruntime_backend import available_providers
            providers = available_providers()
        return {"installed": installed, "version": version, "usable": installed,
                "providers": providers, "error": error}
