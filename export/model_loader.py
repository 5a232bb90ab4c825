"""Turn a model spec into a PyTorch module in eval mode.

A spec is one of:

- ``package.module:factory``: a callable (function or class, dotted attributes allowed) that takes no
  arguments and returns an ``nn.Module``; the module is imported from ``sys.path`` and the current
  folder;
- ``path/to/file.py:factory``: the same, from a Python file;
- a TorchScript file saved with ``torch.jit.save`` (``.pt``, ``.ts`` ...).

``weights`` is an optional state-dict file (``torch.save(model.state_dict(), path)``), loaded with
``torch.load(..., weights_only=True)`` so that no code in it runs. A checkpoint dict holding the
state dict under ``state_dict`` or ``model_state_dict`` works too, as do DataParallel ``module.`` keys.
"""
import importlib
import importlib.util
import os
import sys

from basics.errors import InputError
from basics.lazy import lazy_import

_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")


def load_model(spec, weights=None):
    """The ``nn.Module`` that ``spec`` names, with ``weights`` loaded, in eval mode."""
    torch = lazy_import("torch", "loading PyTorch models")
    if isinstance(spec, torch.nn.Module):
        model = spec
    elif not isinstance(spec, (str, os.PathLike)) or not str(spec).strip():
        raise InputError("a model is 'package.module:factory' or a TorchScript file, got {!r}".format(
            spec))
    elif os.path.isfile(os.fspath(spec)):
        model = load_torchscript(os.fspath(spec))
    elif ":" in str(spec):
        model = call_factory(str(spec))
    else:
        raise InputError("'{}' is neither an existing TorchScript file nor 'package.module:factory'"
                         .format(spec))
    if weights is not None:
        load_weights(model, weights)
    return model.eval()


def resolve_factory(spec):
    """The callable named by ``module:attr`` or ``file.py:attr``; InputError when it does not resolve."""
    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise InputError("factory must look like 'package.module:function', got '{}'".format(spec))
    module = _import_module(module_name)
    target = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise InputError("'{}' has no attribute '{}' (from '{}')".format(
                getattr(target, "__name__", module_name), part, spec))
        target = getattr(target, part)
    if not callable(target):
        raise InputError("'{}' is a {}, not a callable factory".format(spec, type(target).__name__))
    return target


def call_factory(spec):
    """Call the factory of ``spec`` without arguments; InputError unless it returns an nn.Module."""
    torch = lazy_import("torch", "loading PyTorch models")
    factory = resolve_factory(spec)
    try:
        model = factory()
    except Exception as exc:  # noqa: BLE001 - the user's code may raise anything
        raise InputError("factory '{}' raised {}: {}".format(
            spec, type(exc).__name__, _first_line(exc))) from None
    if not isinstance(model, torch.nn.Module):
        raise InputError("factory '{}' returned {}, not a torch.nn.Module".format(
            spec, type(model).__name__))
    return model


def load_torchscript(path):
    """``torch.jit.load`` on the CPU; InputError when ``path`` is not a TorchScript file."""
    torch = lazy_import("torch", "loading TorchScript models")
    try:
        return torch.jit.load(path, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, ValueError ...
        raise InputError("{} is not a TorchScript file (save one with torch.jit.save; for a state "
                         "dict give 'module:factory' and --weights): {}".format(
                             path, _first_line(exc).split(". ")[0])) from None


def load_weights(model, path):
    """Load the state dict at ``path`` into ``model`` (strict); InputError on any mismatch."""
    torch = lazy_import("torch", "loading PyTorch weights")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError("no such weights file: {}".format(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors come in many types
        raise InputError("cannot read weights {} with weights_only=True (a state dict saved with "
                         "torch.save(model.state_dict(), path) is expected): {}".format(
                             path, _first_line(exc))) from None
    state = _unwrap_state_dict(state, path)
    own = model.state_dict()
    if _all_prefixed(state) and not _all_prefixed(own):  # saved from DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise InputError("weights {} do not match the model: {}".format(path, "; ".join(
            part for part in (_keys_text("missing", missing), _keys_text("unexpected", unexpected))
            if part)))
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise InputError("weights {}: entry '{}' is a {}, not a tensor".format(
                path, key, type(value).__name__))
        if tuple(value.shape) != tuple(own[key].shape):
            raise InputError("weights {} do not match the model: '{}' has shape {} in the file but {} "
                             "in the model".format(path, key, list(value.shape), list(own[key].shape)))
    model.load_state_dict(state, strict=True)
    return model


def _unwrap_state_dict(state, path):
    if isinstance(state, dict):
        for key in _CHECKPOINT_KEYS:
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not state:
        raise InputError("weights {} hold {}, not a state dict of tensors".format(
            path, "an empty dict" if isinstance(state, dict) else type(state).__name__))
    return state


def _all_prefixed(state):
    return bool(state) and all(isinstance(k, str) and k.startswith("module.") for k in state)


def _keys_text(what, keys):
    if not keys:
        return ""
    shown = ", ".join(keys[:3]) + (" and {} more".format(len(keys) - 3) if len(keys) > 3 else "")
    return "{} {} key(s) ({})".format(len(keys), what, shown)


def _import_module(module_name):
    if module_name.endswith(".py"):
        return _import_file(module_name)
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        parts = module_name.split(".")
        if exc.name in [".".join(parts[:i]) for i in range(1, len(parts) + 1)]:
            raise InputError("no module named '{}' (is it on PYTHONPATH, or run from its folder?)"
                             .format(module_name)) from None
        raise InputError("importing '{}' failed: {}".format(module_name, _first_line(exc))) from None
    except Exception as exc:  # noqa: BLE001 - the user's module may raise anything on import
        raise InputError("importing '{}' failed with {}: {}".format(
            module_name, type(exc).__name__, _first_line(exc))) from None
    finally:
        if added:
            sys.path.remove(cwd)


def _import_file(path):
    if not os.path.isfile(path):
        raise InputError("no such Python file: {}".format(path))
    name = "_toolkit_user_" + os.path.splitext(os.path.basename(path))[0]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001
        raise InputError("importing {} failed with {}: {}".format(
            path, type(exc).__name__, _first_line(exc))) from None
    return module


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
