"""The strategy registry: each strategy type declares itself, in its own module, in one place.

A declaration is a :class:`StrategyType` subclass decorated with :func:`register_strategy` (the
shape of torch2trt's ``@tensorrt_converter``). It says, for its strategy:

- its spec keys and their validation (:meth:`StrategyType.parse`), which of them name engines
  or nested strategies (``engine_keys``, ``part_keys``), which parts see the raw input
  (``entry_keys``) and which give the answer (``answer_keys``);
- how it is built from a parsed spec node (:meth:`StrategyType.build`) and written back
  (:meth:`StrategyType.to_dict`);
- its one-line description (``description``, and :meth:`StrategyType.describe` for a node);
- its analytical energy formula per sample (:meth:`StrategyType.energy`).

A wrapper such as the memo is configured by a top-level spec section instead of a ``type``
(``section = "memo"``: :meth:`StrategyType.parse_section`, :meth:`StrategyType.wrap`).

The spec schema (:mod:`toolkit.spec`), loading (:mod:`toolkit.deployment`) and the energy
estimate (:mod:`toolkit.energy_estimate`) only ask the registry; none of them names a strategy.
The built-in strategies register when :mod:`toolkit.strategies` is imported.
"""
import collections

from basics.errors import InternalError

_TYPES = collections.OrderedDict()  # name -> StrategyType instance, in registration order


class StrategyType(object):
    """The declaration of one strategy type; subclass it and decorate with
    :func:`register_strategy`. Class attributes:

    ``name``: the spec's ``type`` (or the wrapper's section name); ``strategy_class``: the
    :class:`toolkit.strategies.base.Strategy` subclass it builds; ``description``: one line;
    ``keys``: the spec keys besides ``type``, in the order they are written back;
    ``engine_keys``: keys holding one engine's name (built: the raw engine);
    ``part_keys``: keys holding an engine name or a nested strategy (built: a strategy);
    ``entry_keys``: the parts that see the raw (preprocessed) input;
    ``answer_keys``: the parts whose output is the answer, in order of preference (class names
    are read from them); ``section``: for a wrapper, its top-level spec section (else None).
    """

    name = None
    strategy_class = None
    description = ""
    keys = ()
    engine_keys = ()
    part_keys = ()
    entry_keys = ()
    answer_keys = ()
    section = None

    # -- spec ----------------------------------------------------------------------------------
    def parse(self, data, read):
        """The node's values ``{key: value}`` from the spec mapping ``data`` (unknown keys are
        already refused). ``read`` (a :class:`toolkit.spec.SpecReader`) validates values with
        one-line errors: ``read.engine(key)``, ``read.part(key)``, ``read.boolean(key)`` ...
        Parts are engine names or nested nodes; every other value is a plain setting."""
        raise NotImplementedError

    def to_dict(self, node):
        """The spec mapping of a parsed node (nested parts written back too)."""
        data = {"type": self.name}
        for key in self.keys:
            if key in node.values:
                value = node.values[key]
                data[key] = value.to_dict() if hasattr(value, "to_dict") else value
        return data

    # -- building ------------------------------------------------------------------------------
    def build(self, node, parts, context):
        """The strategy for ``node``; ``parts`` maps each of its engine keys to the loaded
        engine and each part key to the built strategy. ``context`` (a
        :class:`toolkit.deployment.BuildContext`) answers questions about the spec's engines,
        e.g. ``context.class_names(node.values[key])``."""
        raise NotImplementedError

    def describe(self, node, parts):
        """One line for a node; ``parts`` maps each part key to its own description."""
        return "{}({})".format(self.name, ", ".join(parts[key] for key in self.keys if key in parts))

    # -- energy --------------------------------------------------------------------------------
    def energy(self, strategy, expected):
        """``(value, formula text)``: the expected energy per sample of a built ``strategy``,
        from its parts' ``expected(part) -> (value, text)`` and the rates its counters observed
        (read after a run, never in the timed loop). :func:`bracket` groups a part's text."""
        raise NotImplementedError("the {} strategy declares no energy formula".format(self.name))

    # -- wrappers (section is not None) --------------------------------------------------------
    def parse_section(self, value, read):
        """A wrapper's configuration from its top-level spec section, or None when off."""
        raise NotImplementedError

    def wrap(self, inner, config):
        """A wrapper's strategy around the built ``inner`` strategy."""
        raise NotImplementedError

    def describe_section(self, config):
        """What a wrapper adds to the deployment's one-line description."""
        return " + {}".format(self.name)


def register_strategy(declaration_class):
    """Class decorator: register a :class:`StrategyType` subclass (one instance) by its name."""
    declaration = declaration_class()
    name = declaration.name
    if not name or declaration.strategy_class is None:
        raise InternalError("{} must set name and strategy_class".format(declaration_class.__name__))
    if name in _TYPES and type(_TYPES[name]) is not declaration_class:
        raise InternalError("strategy type '{}' is registered twice ({} and {})".format(
            name, type(_TYPES[name]).__name__, declaration_class.__name__))
    unknown = set(declaration.engine_keys + declaration.part_keys) - set(declaration.keys)
    if unknown or not set(declaration.entry_keys + declaration.answer_keys) <= set(
            declaration.engine_keys + declaration.part_keys):
        raise InternalError("{}: engine/part/entry/answer keys must be among its keys".format(
            declaration_class.__name__))
    _TYPES[name] = declaration
    return declaration_class


def unregister_strategy(name):
    """Remove a registered type (for tests that register a toy strategy)."""
    _TYPES.pop(name, None)


def strategy_type(name):
    """The declaration registered as ``name``, or None."""
    return _TYPES.get(name)


def spec_types():
    """The names usable as a spec's ``type``, in registration order."""
    return tuple(name for name, declaration in _TYPES.items() if declaration.section is None)


def wrapper_types():
    """The wrapper declarations (configured by a top-level spec section), in registration order."""
    return tuple(declaration for declaration in _TYPES.values() if declaration.section is not None)


def declaration_for(strategy):
    """The declaration that builds ``strategy``'s class (or a base class of it), or None."""
    for cls in type(strategy).__mro__:
        for declaration in _TYPES.values():
            if declaration.strategy_class is cls:
                return declaration
    return None


def bracket(text):
    """A formula term as is when it is one ``E(name)``, else in square brackets."""
    return text if text.startswith("E(") and text.count("E(") == 1 else "[{}]".format(text)
