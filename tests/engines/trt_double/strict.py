"""Strict, tracing base classes of the TensorRT / pycuda / cuda-python TEST DOUBLE.

Every object of the double (and every class, for class-level names such as ``BuilderFlag.FP16``
or ``Device.count``) exposes only the public names listed for its API and mode in
:mod:`tests.engines.trt_double.api_tables`; any other public name raises AttributeError, as the
real module of that version would. Private names (``_x``) are reachable only from the double's own
code. Each successful access to a public name is recorded in :data:`TRACE` as
``(family, "Class.member", by_double)`` so that tests can check every name the backend touched
against NVIDIA's name lists (``tests/engines/test_trt_api_names.py``).
"""
import sys
import types

PACKAGE = __name__.rsplit(".", 1)[0]  # tests.engines.trt_double

# names pybind11 creates at run time (not in the name lists), allowed on enum values
RUNTIME_NAMES = frozenset(["name", "value"])


class Trace(object):
    """The set of public names accessed on double objects: ``{(family, name, by_double)}``."""

    def __init__(self):
        self.records = set()

    def add(self, family, name, by_double):
        self.records.add((family, name, by_double))

    def clear(self):
        self.records.clear()

    def names(self, family, by_double=None):
        return sorted(set(n for f, n, d in self.records
                          if f == family and (by_double is None or d == by_double)))


TRACE = Trace()


def is_double_module(name):
    """The double's own modules (its tests are outsiders, like the backend)."""
    return str(name).startswith(PACKAGE) and not str(name).rsplit(".", 1)[-1].startswith("test_")


def _from_double(frame):
    return is_double_module(frame.f_globals.get("__name__", ""))


def _qualified(api, name):
    return "{}.{}".format(api, name) if api else name


def is_double_class(klass):
    """True for classes defined by the double (user subclasses of them are not)."""
    return "_double" in klass.__dict__ or is_double_module(klass.__dict__.get("__module__", ""))


def _owner(mro, name):
    for klass in mro:
        if name in klass.__dict__:
            return klass
    return None


class StrictMeta(type):
    """Metaclass: class-level access (``trt.BuilderFlag.FP16``) is checked and traced too."""

    def __getattribute__(cls, name):
        if name[:1] == "_":
            if name[:2] == "__" or _from_double(sys._getframe(1)):
                return type.__getattribute__(cls, name)
            raise AttributeError("type object '{}' has no attribute '{}'".format(
                type.__getattribute__(cls, "__name__"), name))
        owner = _owner(type.__getattribute__(cls, "__mro__"), name)
        api = type.__getattribute__(cls, "_api")
        if owner is not None and not is_double_class(owner):
            return type.__getattribute__(cls, name)  # defined by a user subclass
        if name not in type.__getattribute__(cls, "_exposed"):
            raise AttributeError("type object '{}' has no attribute '{}' (trt_double: not in the "
                                 "{} API)".format(api, name, type.__getattribute__(cls, "_family")))
        TRACE.add(type.__getattribute__(cls, "_family"), _qualified(api, name),
                  _from_double(sys._getframe(1)))
        return type.__getattribute__(cls, name)


class Strict(object, metaclass=StrictMeta):
    """Base of every double object; subclasses set ``_api``, ``_family`` and ``_exposed``."""

    _double = True
    _api = None
    _family = None
    _exposed = frozenset()

    def __getattribute__(self, name):
        if name[:1] == "_":
            if name[:2] == "__" or _from_double(sys._getframe(1)):
                return object.__getattribute__(self, name)
            cls = type(self)
            if not is_double_class(cls):  # a user subclass may use its own private names
                owner = _owner(cls.__mro__, name)
                if name in object.__getattribute__(self, "__dict__") or (
                        owner is not None and not is_double_class(owner)):
                    return object.__getattribute__(self, name)
            raise AttributeError("'{}' object has no attribute '{}'".format(cls.__name__, name))
        cls = type(self)
        api = type.__getattribute__(cls, "_api")
        family = type.__getattribute__(cls, "_family")
        exposed = type.__getattribute__(cls, "_exposed")
        if name in object.__getattribute__(self, "__dict__"):
            return object.__getattribute__(self, name)  # set by user code on its subclass
        owner = _owner(cls.__mro__, name)
        if owner is not None and not is_double_class(owner):
            if name in exposed and _from_double(sys._getframe(1)):
                TRACE.add(family, _qualified(api, name), True)  # a callback TensorRT makes
            return object.__getattribute__(self, name)
        if name not in exposed:
            raise AttributeError("'{}' object has no attribute '{}' (trt_double: not in the {} "
                                 "API)".format(api, name, family))
        TRACE.add(family, _qualified(api, name), _from_double(sys._getframe(1)))
        return object.__getattribute__(self, name)

    def __setattr__(self, name, value):
        if name[:1] == "_" or name in object.__getattribute__(self, "__dict__"):
            return object.__setattr__(self, name, value)
        cls = type(self)
        api = type.__getattribute__(cls, "_api")
        owner = _owner(cls.__mro__, name)
        if owner is None or not is_double_class(owner):
            if is_double_class(cls):  # a pure double object: pybind objects have no __dict__
                raise AttributeError("'{}' object has no attribute '{}'".format(api, name))
            return object.__setattr__(self, name, value)  # a user subclass's own attribute
        if name not in type.__getattribute__(cls, "_exposed") or not isinstance(
                owner.__dict__[name], property) or owner.__dict__[name].fset is None:
            raise AttributeError("'{}' attribute '{}' is not writable here (trt_double, {} API)"
                                 .format(api, name, type.__getattribute__(cls, "_family")))
        TRACE.add(type.__getattribute__(cls, "_family"), _qualified(api, name),
                  _from_double(sys._getframe(1)))
        return object.__setattr__(self, name, value)


def strict_class(name, bases, body, family, api, exposed):
    """A double class named ``name`` for API class ``api`` exposing ``exposed`` in ``family``."""
    bases = tuple(base for base in bases if base is not object)
    if not any(issubclass(base, Strict) for base in bases):
        bases = bases + (Strict,)
    body = dict(body)
    body.update({"_double": True, "_api": api, "_family": family, "_exposed": frozenset(exposed)})
    return StrictMeta(name, bases, body)


class EnumValue(Strict):
    """A pybind11-like enum value: ``int()``, ``==`` within its enum, hashable, ``name``/``value``."""

    def __init__(self, name, value):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_value", int(value))

    @property
    def name(self):
        return self._name

    @property
    def value(self):
        return self._value

    def __int__(self):
        return self._value

    __index__ = __int__

    def __eq__(self, other):
        return type(other) is type(self) and other._value == self._value

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((type(self).__name__, self._value))

    def __repr__(self):
        return "<{}.{}: {}>".format(type(self)._api, self._name, self._value)


def make_enum(family, api, members, exposed=None):
    """An enum class ``api`` with ``members`` (a list of names, or of (name, value) pairs)."""
    pairs = [(m, i) if isinstance(m, str) else m for i, m in enumerate(members)]
    names = [n for n, _ in pairs]
    exposed = set(names if exposed is None else exposed) | RUNTIME_NAMES
    cls = strict_class(api.split(".")[-1], (EnumValue,), {}, family, api, exposed)
    for name, value in pairs:
        type.__setattr__(cls, name, cls(name, value))
    return cls


class StrictModule(types.ModuleType):
    """A module object whose public names are checked against ``exposed`` and traced."""

    def __init__(self, name, family, api, exposed, doc=None):
        super(StrictModule, self).__init__(name, doc)
        object.__setattr__(self, "_family", family)
        object.__setattr__(self, "_api", api)
        object.__setattr__(self, "_exposed", frozenset(exposed))

    def __getattribute__(self, name):
        if name[:1] == "_":
            if name[:2] != "__" or name not in object.__getattribute__(self, "_exposed"):
                return object.__getattribute__(self, name)
        elif name not in object.__getattribute__(self, "_exposed"):
            raise AttributeError("module '{}' has no attribute '{}' (trt_double: not in the {} "
                                 "API)".format(object.__getattribute__(self, "__name__"), name,
                                               object.__getattribute__(self, "_family")))
        TRACE.add(object.__getattribute__(self, "_family"),
                  _qualified(object.__getattribute__(self, "_api"), name),
                  _from_double(sys._getframe(1)))
        return object.__getattribute__(self, name)
