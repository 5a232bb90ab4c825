"""The deployment spec's schema: which engines, which strategy, which wrappers (memo) and
preprocessing; validated with one-line errors.

A spec is a YAML file (read with ``yaml.safe_load``); engine paths are relative to the spec file::

    engines:
      small: small.onnx             # .onnx (ONNX Runtime) or .engine (+ sidecar) files
      large: {path: large.engine, output_is_probs: false, output: logits}
    strategy:
      type: cascade                 # a registered strategy type: single | cascade | convert
      first: small                  # an engine name or a nested strategy mapping
      second: large
      threshold: 0.93               # in [0, 1]: samples whose score is below go to `second`
      score: max_softmax            # max_softmax | margin | entropy
      post_check: false
    memo:                           # optional; `memo: off` or no memo section: none
      mode: exact                   # exact | dhash
      max_entries: 100000
      max_mb: 64
      hamming: 0                    # dhash only
      invariant: false              # dhash only: rotated/flipped copies share a key
      file: memo.npz                # optional persistence (relative to the spec)
    preprocessing: {mean: [0.5], std: [0.5]}   # optional: default from the engines' metadata
    threads: 0                      # ONNX Runtime intra-op threads (0: its default)

Other strategies: ``{type: single, engine: small}``, ``{type: convert, converter: ae,
classifier: light}``. What each ``type`` (and each wrapper section such as ``memo``) accepts is
declared by the strategy's own module (:mod:`toolkit.strategies.registry`); this module holds
what every spec shares. :func:`read_spec` reads and validates a file; loading its engines is
:mod:`toolkit.deployment`'s job.
"""
import os

from basics.errors import InputError, ToolkitError
from basics.lazy import lazy_import
from toolkit.strategies import registry

SPEC_VERSION = 1
_COMMON_TOP_KEYS = ("version", "engines", "strategy", "preprocessing", "threads")
_ENGINE_KEYS = ("path", "output_is_probs", "output")


class EngineRef(object):
    """One named engine of a spec: its file, and whether its output is already probabilities."""

    def __init__(self, name, path, output_is_probs=False, output=None):
        self.name = name
        self.path = path
        self.output_is_probs = bool(output_is_probs)
        self.output = output

    def to_dict(self):
        return {"path": self.path, "output_is_probs": self.output_is_probs, "output": self.output}


class StrategyNode(object):
    """A strategy of a spec: ``kind`` (its registered type) and ``values`` {key: value}, where
    the values of its engine and part keys are engine names or nested :class:`StrategyNode`."""

    def __init__(self, kind, values):
        self.kind = kind
        self.values = dict(values)

    @property
    def declaration(self):
        return registry.strategy_type(self.kind)

    def parts(self):
        """``[(key, engine name or StrategyNode)]`` of its engine and part keys, in key order."""
        declaration = self.declaration
        keys = declaration.engine_keys + declaration.part_keys
        return [(key, self.values[key]) for key in declaration.keys
                if key in keys and key in self.values]

    def engine_names(self):
        """Every engine name this node uses."""
        names = []
        for _, part in self.parts():
            names.extend(engine_names(part))
        return names

    def entry_engines(self):
        """The engines that see the raw (preprocessed) input."""
        names = []
        for key in self.declaration.entry_keys:
            names.extend(entry_engines(self.values[key]))
        return names

    def to_dict(self):
        return self.declaration.to_dict(self)


def engine_names(part):
    """The engine names of a part (an engine name or a :class:`StrategyNode`)."""
    return part.engine_names() if isinstance(part, StrategyNode) else [part]


def entry_engines(part):
    """The engines of a part that see the raw input."""
    return part.entry_engines() if isinstance(part, StrategyNode) else [part]


class DeploymentSpec(object):
    """A validated spec: ``engines`` {name: EngineRef}, ``strategy`` (a StrategyNode),
    ``wrappers`` [(declaration, config)] from the wrapper sections in registration order,
    ``preprocessing`` (Preprocessing or None: from metadata), ``threads``, ``path``."""

    def __init__(self, engines, strategy, wrappers=(), preprocessing=None, threads=0, path=None):
        self.engines = engines
        self.strategy = strategy
        self.wrappers = list(wrappers)
        self.preprocessing = preprocessing
        self.threads = threads
        self.path = path

    def wrapper_config(self, section):
        """The configuration of the wrapper section ``section`` (e.g. the memo's MemoConfig), or
        None when the spec does not use it."""
        for declaration, config in self.wrappers:
            if declaration.section == section:
                return config
        return None

    @classmethod
    def from_dict(cls, data, base_dir=".", path=None):
        """Validate a parsed spec; InputError (one line) on anything wrong."""
        if not isinstance(data, dict):
            raise InputError("a deployment spec must be a mapping, got {}".format(
                type(data).__name__ if data is not None else "an empty file"))
        wrappers = registry.wrapper_types()
        no_unknown(data, _COMMON_TOP_KEYS[:3] + tuple(w.section for w in wrappers)
                   + _COMMON_TOP_KEYS[3:], "spec")
        if data.get("version", SPEC_VERSION) != SPEC_VERSION:
            raise InputError("spec version {} is not supported (this toolkit reads {})".format(
                data.get("version"), SPEC_VERSION))
        engines = _parse_engines(data.get("engines"), base_dir)
        if "strategy" not in data:
            raise InputError("the spec has no 'strategy' section")
        strategy = SpecReader(engines, base_dir, "strategy").node(data["strategy"])
        if not isinstance(strategy, StrategyNode):  # `strategy: small` = a single engine
            strategy = StrategyNode("single", {"engine": strategy})
        configured = []
        for declaration in wrappers:
            config = declaration.parse_section(
                data.get(declaration.section), SpecReader(engines, base_dir, declaration.section))
            if config is not None:
                configured.append((declaration, config))
        prep = None
        if data.get("preprocessing") is not None:
            from engines.preprocess import Preprocessing
            prep = Preprocessing.from_dict(data["preprocessing"])
        threads = integer(data.get("threads", 0), "threads", minimum=0)
        unused = sorted(set(engines) - set(strategy.engine_names()))
        if unused:
            raise InputError("engine(s) {} are defined but not used by the strategy".format(
                ", ".join(unused)))
        return cls(engines, strategy, configured, prep, threads, path)

    def to_dict(self):
        data = {"version": SPEC_VERSION,
                "engines": {n: e.to_dict() for n, e in self.engines.items()},
                "strategy": self.strategy.to_dict(), "threads": self.threads}
        for declaration in registry.wrapper_types():
            config = self.wrapper_config(declaration.section)
            data[declaration.section] = None if config is None else config.to_dict()
        data["preprocessing"] = None if self.preprocessing is None else self.preprocessing.to_dict()
        return data


class SpecReader(object):
    """Validation helpers for one place of a spec (``where``, e.g. ``strategy.first``), handed to
    each strategy's :meth:`~toolkit.strategies.registry.StrategyType.parse`: every error is one
    line naming the place."""

    def __init__(self, engines, base_dir, where, data=None, kind=None):
        self.engines = engines
        self.base_dir = base_dir
        self.where = where
        self.data = data
        self.kind = kind

    def _label(self):
        return "{} ({})".format(self.where, self.kind) if self.kind else self.where

    def fail(self, message):
        """An InputError ``<where>: <message>``."""
        return InputError("{}: {}".format(self.where, message))

    def node(self, data):
        """An engine name (checked) or a :class:`StrategyNode` parsed by its registered type."""
        if isinstance(data, str):
            if data not in self.engines:
                raise InputError("{} names engine '{}', which the spec does not define (it has {})"
                                 .format(self.where, data, ", ".join(sorted(self.engines))))
            return data
        if not isinstance(data, dict):
            raise InputError("{} must be an engine name or a mapping with a 'type'".format(
                self.where))
        kind = data.get("type")
        declaration = registry.strategy_type(kind) if isinstance(kind, str) else None
        if declaration is None or declaration.section is not None:
            raise InputError("{}: unknown strategy type {!r}; use one of {}".format(
                self.where, kind, ", ".join(registry.spec_types())))
        no_unknown(data, ("type",) + tuple(declaration.keys), "{} ({})".format(self.where, kind))
        reader = SpecReader(self.engines, self.base_dir, self.where, data, kind)
        return StrategyNode(kind, declaration.parse(data, reader))

    def has(self, key):
        return key in self.data

    def get(self, key, default=None):
        return self.data.get(key, default)

    def engine(self, key):
        """The required ``key``: the name of one of the spec's engines."""
        value = self.data.get(key)
        if not isinstance(value, str):
            raise InputError("{} needs '{}': an engine name".format(self._label(), key))
        return self._child(key).node(value)

    def part(self, key):
        """The required ``key``: an engine name or a nested strategy."""
        if key not in self.data:
            raise InputError("{} needs '{}'".format(self._label(), key))
        return self._child(key).node(self.data[key])

    def require(self, key, what):
        """The raw value of the required ``key`` (``what`` says what it should be)."""
        if key not in self.data:
            raise InputError("{} needs {}".format(self._label(), what))
        return self.data[key]

    def boolean(self, key, default=False):
        return boolean(self.data.get(key, default), "{} {}".format(self.where, key))

    def integer(self, value, name, minimum=None):
        return integer(value, name, minimum)

    def as_boolean(self, value, name):
        return boolean(value, name)

    def no_unknown(self, mapping, allowed, where):
        no_unknown(mapping, allowed, where)

    def checked(self, check, value):
        """``check(value)`` with its InputError prefixed by this place."""
        try:
            return check(value)
        except InputError as exc:
            raise self.fail(exc) from None

    def path(self, value, what):
        """A file path relative to the spec's folder (``~`` expanded), or InputError."""
        if not isinstance(value, str) or not value:
            raise InputError("{} must be a file path".format(what))
        return os.path.normpath(os.path.join(self.base_dir, os.path.expanduser(value)))

    def _child(self, key):
        return SpecReader(self.engines, self.base_dir, "{}.{}".format(self.where, key))


def no_unknown(mapping, allowed, where):
    """InputError naming the keys of ``mapping`` that are not ``allowed``."""
    unknown = sorted(str(k) for k in set(mapping) - set(allowed))
    if unknown:
        raise InputError("unknown key(s) in {}: {} (allowed: {})".format(
            where, ", ".join(unknown), ", ".join(allowed)))


def integer(value, name, minimum=None):
    """``value`` as an int (a whole number, not a bool), at least ``minimum``; or InputError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise InputError("{} must be an integer, got {!r}".format(name, value))
    if minimum is not None and value < minimum:
        raise InputError("{} must be at least {}, got {}".format(name, minimum, value))
    return int(value)


def boolean(value, name):
    """``value`` if it is true or false, else InputError."""
    if not isinstance(value, bool):
        raise InputError("{} must be true or false, got {!r}".format(name, value))
    return value


def _parse_engines(data, base_dir):
    if not isinstance(data, dict) or not data:
        raise InputError("the spec needs an 'engines' mapping of name: file")
    engines = {}
    for name, value in data.items():
        where = "engine '{}'".format(name)
        if isinstance(value, str):
            value = {"path": value}
        if not isinstance(value, dict):
            raise InputError("{} must be a file path or a mapping with 'path'".format(where))
        no_unknown(value, _ENGINE_KEYS, where)
        if not isinstance(value.get("path"), str) or not value["path"]:
            raise InputError("{} needs a 'path'".format(where))
        path = os.path.normpath(os.path.join(base_dir, os.path.expanduser(value["path"])))
        if not os.path.isfile(path):
            raise InputError("{}: no such engine file {}".format(where, path))
        output = value.get("output")
        if output is not None and not isinstance(output, str):
            raise InputError("{}: 'output' must be an output name".format(where))
        engines[str(name)] = EngineRef(str(name), path, boolean(
            value.get("output_is_probs", False), where + " output_is_probs"), output)
    return engines


def read_spec(path):
    """Read and validate the deployment spec file at ``path`` -> :class:`DeploymentSpec`
    (errors name the file)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError("no such deployment spec: {}".format(path))
    yaml = lazy_import("yaml", "reading deployment specs")
    try:
        with open(path, "rb") as handle:
            data = yaml.safe_load(handle.read().decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError("{} is not valid YAML: {}".format(
            path, " ".join(str(exc).split()))) from None
    try:
        return DeploymentSpec.from_dict(data, os.path.dirname(os.path.abspath(path)), path)
    except ToolkitError as exc:
        raise type(exc)("{}: {}".format(path, exc)) from None
