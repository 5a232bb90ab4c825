"""Loading a deployment: a validated spec's engines opened, its strategy composed (each node by its
registered type), its preprocessing and class names resolved.

``with load_spec("deploy.yaml") as deployment: ...`` -> a :class:`Deployment`; running data
through it is :mod:`toolkit.running`'s job.
"""
import os

from basics.errors import InputError, ToolkitError
from toolkit.spec import StrategyNode, read_spec
from toolkit.strategies import Single


class Deployment(object):
    """A loaded spec: ``engines`` {name: Engine}, the ``strategy`` (a Strategy, wrappers such as
    the memo included), the ``preprocessing`` (a Preprocessing), ``class_names`` (or None) and
    ``input_shape`` (C, H, W, -1 where dynamic). Close it (or use ``with``) to free the engines
    and save the memo file."""

    def __init__(self, spec, engines, strategy, preprocessing, class_names):
        self.spec = spec
        self.engines = engines
        self.strategy = strategy
        self.preprocessing = preprocessing
        self.class_names = class_names
        self.input_shape = tuple(strategy.inputs[0].shape[1:])

    @property
    def name(self):
        return os.path.basename(self.spec.path) if self.spec.path else "deployment"

    def describe(self):
        """One line: the strategy tree."""
        return describe(self.spec.strategy) + "".join(
            declaration.describe_section(config) for declaration, config in self.spec.wrappers)

    def close(self):
        self.strategy.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def describe(part):
    """One line for a part of a spec: an engine name, or its type's description of the node."""
    if not isinstance(part, StrategyNode):
        return str(part)
    return part.declaration.describe(part, {key: describe(value) for key, value in part.parts()})


def open_engine(path, threads=0, confidence_head=False):
    """An engine file (``.engine`` + sidecar) or an ``.onnx`` as an Engine.
    ``confidence_head``: see :func:`engines.load.load_engine`."""
    from engines.load import load_engine
    return load_engine(path, threads=threads, confidence_head=confidence_head)


def load_spec(path):
    """Read, validate and load the deployment spec at ``path`` -> :class:`Deployment`."""
    spec = read_spec(path)
    try:
        return build_deployment(spec)
    except ToolkitError as exc:
        raise type(exc)("{}: {}".format(spec.path, exc)) from None


class BuildContext(object):
    """What a strategy type's ``build`` may ask about the spec's loaded engines."""

    def __init__(self, spec, engines):
        self.spec = spec
        self.engines = engines

    def compose(self, part):
        """The strategy of a part: an engine name -> ``Single`` with the engine's spec options;
        a node -> its type's ``build`` over its composed parts."""
        if not isinstance(part, StrategyNode):
            ref = self.spec.engines[part]
            return Single(self.engines[part], output_is_probs=ref.output_is_probs,
                          output=ref.output)
        declaration = part.declaration
        built = {}
        for key, value in part.parts():
            built[key] = self.engines[value] if key in declaration.engine_keys else \
                self.compose(value)
        return declaration.build(part, built, self)

    def class_names(self, part):
        """Class names from the metadata of the engine(s) whose output is ``part``'s answer."""
        if not isinstance(part, StrategyNode):
            meta = getattr(self.engines[part], "metadata", None)
            return None if meta is None else meta.class_names
        names = None
        for key in part.declaration.answer_keys:
            names = self.class_names(part.values[key])
            if names:
                break
        return names

    def preprocessing(self):
        """The spec's preprocessing, else the one the entry engines' metadata agree on."""
        from engines.preprocess import Preprocessing
        if self.spec.preprocessing is not None:
            return self.spec.preprocessing
        found = {}
        for name in self.spec.strategy.entry_engines():
            meta = getattr(self.engines[name], "metadata", None)
            if meta is not None:
                found[name] = meta.preprocessing
        distinct = {repr(p.to_dict()) for p in found.values()}
        if len(distinct) > 1:
            raise InputError("engines {} expect different preprocessing; one input feeds them all, "
                             "so give 'preprocessing' in the spec".format(", ".join(sorted(found))))
        return next(iter(found.values())) if found else Preprocessing()


def classifier_engines(part):
    """The engine names :meth:`BuildContext.compose` wraps in ``Single``: every engine reached
    through a part key (not an engine key: e.g. not a converter)."""
    if not isinstance(part, StrategyNode):
        return [part]
    names = []
    for key, value in part.parts():
        if key in part.declaration.part_keys:
            names.extend(classifier_engines(value))
    return names


def build_deployment(spec):
    """Load the engines of a validated :class:`toolkit.spec.DeploymentSpec` and compose its
    strategy, wrappers included."""
    engines = {}
    heads = set(classifier_engines(spec.strategy))
    try:
        for name, ref in spec.engines.items():
            try:
                # classifiers get softmax and top-1 in their graph (not converters)
                engines[name] = open_engine(
                    ref.path, threads=spec.threads,
                    confidence_head=name in heads and not ref.output_is_probs)
            except ToolkitError as exc:
                raise type(exc)("engine '{}': {}".format(name, exc)) from None
        context = BuildContext(spec, engines)
        strategy = context.compose(spec.strategy)
        for declaration, config in spec.wrappers:
            strategy = declaration.wrap(strategy, config)
        preprocessing = context.preprocessing()
        if -1 not in strategy.inputs[0].shape[1:]:
            preprocessing.check_input_shape(strategy.inputs[0].shape)
        class_names = context.class_names(spec.strategy)
        if class_names is not None and strategy.num_classes is not None and \
                len(class_names) != strategy.num_classes:
            class_names = None
    except BaseException:
        for engine in engines.values():
            engine.close()
        raise
    return Deployment(spec, engines, strategy, preprocessing, class_names)
