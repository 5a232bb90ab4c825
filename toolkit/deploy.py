"""Deployment specs: which engines, which strategy, which memo and preprocessing; and running one.

A spec is a YAML file (read with ``yaml.safe_load``); engine paths are relative to the spec file::

    engines:
      small: small.onnx             # .onnx (ONNX Runtime) or .engine (+ sidecar) files
      large: {path: large.engine, output_is_probs: false, output: logits}
    strategy:
      type: cascade                 # single | cascade | convert
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
classifier: light}``. :func:`load_spec` validates everything with one-line errors and loads the
engines; :func:`run_deployment` runs a data set through it and returns a :class:`RunReport`.
"""
import csv
import io
import os
import time

import numpy as np

from basics.errors import InputError, ToolkitError
from basics.fileio import write_json_atomic, write_text_atomic
from basics.lazy import lazy_import
from basics.progress import progress_bar
from basics.stats import latency_summary
from toolkit.strategies import Cascade, Convert, Memo, MemoConfig, Single
from toolkit.strategies.cascade import check_threshold
from toolkit.strategies.scores import check_score

STRATEGIES = ("single", "cascade", "convert")
_TOP_KEYS = ("version", "engines", "strategy", "memo", "preprocessing", "threads")
_ENGINE_KEYS = ("path", "output_is_probs", "output")
_STRATEGY_KEYS = {"single": ("type", "engine"),
                  "cascade": ("type", "first", "second", "threshold", "score", "post_check"),
                  "convert": ("type", "converter", "classifier")}
_MEMO_KEYS = ("mode", "max_entries", "max_mb", "hamming", "invariant", "file")


# -- typed configuration ---------------------------------------------------------------------------
class EngineRef(object):
    """One named engine of a spec: its file, and whether its output is already probabilities."""

    def __init__(self, name, path, output_is_probs=False, output=None):
        self.name = name
        self.path = path
        self.output_is_probs = bool(output_is_probs)
        self.output = output

    def to_dict(self):
        return {"path": self.path, "output_is_probs": self.output_is_probs, "output": self.output}


class StrategyConfig(object):
    """A strategy node: ``kind`` plus its fields; ``first``/``second``/``classifier`` are engine
    names or nested :class:`StrategyConfig`."""

    def __init__(self, kind, engine=None, first=None, second=None, threshold=None,
                 score="max_softmax", post_check=False, converter=None, classifier=None):
        self.kind = kind
        self.engine = engine
        self.first = first
        self.second = second
        self.threshold = threshold
        self.score = score
        self.post_check = post_check
        self.converter = converter
        self.classifier = classifier

    def engine_names(self):
        """Every engine name this node uses."""
        names = []
        for part in (self.engine, self.first, self.second, self.converter, self.classifier):
            if isinstance(part, StrategyConfig):
                names.extend(part.engine_names())
            elif part is not None:
                names.append(part)
        return names

    def entry_engines(self):
        """The engines that see the raw (preprocessed) input."""
        if self.kind == "single":
            return [self.engine]
        if self.kind == "convert":
            return [self.converter]
        return [n for part in (self.first, self.second)
                for n in (part.entry_engines() if isinstance(part, StrategyConfig) else [part])]

    def to_dict(self):
        fields = _STRATEGY_KEYS[self.kind][1:]
        data = {"type": self.kind}
        for key in fields:
            value = getattr(self, key)
            data[key] = value.to_dict() if isinstance(value, StrategyConfig) else value
        return data


class DeploymentSpec(object):
    """A validated spec: ``engines`` {name: EngineRef}, ``strategy`` (StrategyConfig), ``memo``
    (MemoConfig or None), ``preprocessing`` (Preprocessing or None: from metadata), ``threads``."""

    def __init__(self, engines, strategy, memo=None, preprocessing=None, threads=0, path=None):
        self.engines = engines
        self.strategy = strategy
        self.memo = memo
        self.preprocessing = preprocessing
        self.threads = threads
        self.path = path

    @classmethod
    def from_dict(cls, data, base_dir=".", path=None):
        """Validate a parsed spec; InputError (one line) on anything wrong."""
        if not isinstance(data, dict):
            raise InputError("a deployment spec must be a mapping, got {}".format(
                type(data).__name__ if data is not None else "an empty file"))
        _no_unknown(data, _TOP_KEYS, "spec")
        if data.get("version", 1) != 1:
            raise InputError("spec version {} is not supported (this toolkit reads 1)".format(
                data.get("version")))
        engines = _parse_engines(data.get("engines"), base_dir)
        if "strategy" not in data:
            raise InputError("the spec has no 'strategy' section")
        strategy = _parse_strategy(data["strategy"], engines, "strategy")
        if not isinstance(strategy, StrategyConfig):  # `strategy: small` = a single engine
            strategy = StrategyConfig("single", engine=strategy)
        memo = _parse_memo(data.get("memo"), base_dir)
        prep = None
        if data.get("preprocessing") is not None:
            from engines.preprocess import Preprocessing
            prep = Preprocessing.from_dict(data["preprocessing"])
        threads = _integer(data.get("threads", 0), "threads", minimum=0)
        unused = sorted(set(engines) - set(strategy.engine_names()))
        if unused:
            raise InputError("engine(s) {} are defined but not used by the strategy".format(
                ", ".join(unused)))
        return cls(engines, strategy, memo, prep, threads, path)

    def to_dict(self):
        data = {"version": 1, "engines": {n: e.to_dict() for n, e in self.engines.items()},
                "strategy": self.strategy.to_dict(), "threads": self.threads}
        data["memo"] = None if self.memo is None else self.memo.to_dict()
        data["preprocessing"] = None if self.preprocessing is None else self.preprocessing.to_dict()
        return data


def _no_unknown(mapping, allowed, where):
    unknown = sorted(str(k) for k in set(mapping) - set(allowed))
    if unknown:
        raise InputError("unknown key(s) in {}: {} (allowed: {})".format(
            where, ", ".join(unknown), ", ".join(allowed)))


def _integer(value, name, minimum=None):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise InputError("{} must be an integer, got {!r}".format(name, value))
    if minimum is not None and value < minimum:
        raise InputError("{} must be at least {}, got {}".format(name, minimum, value))
    return int(value)


def _boolean(value, name):
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
        _no_unknown(value, _ENGINE_KEYS, where)
        if not isinstance(value.get("path"), str) or not value["path"]:
            raise InputError("{} needs a 'path'".format(where))
        path = os.path.normpath(os.path.join(base_dir, os.path.expanduser(value["path"])))
        if not os.path.isfile(path):
            raise InputError("{}: no such engine file {}".format(where, path))
        output = value.get("output")
        if output is not None and not isinstance(output, str):
            raise InputError("{}: 'output' must be an output name".format(where))
        engines[str(name)] = EngineRef(str(name), path, _boolean(
            value.get("output_is_probs", False), where + " output_is_probs"), output)
    return engines


def _parse_strategy(data, engines, where):
    if isinstance(data, str):
        if data not in engines:
            raise InputError("{} names engine '{}', which the spec does not define (it has {})"
                             .format(where, data, ", ".join(sorted(engines))))
        return data
    if not isinstance(data, dict):
        raise InputError("{} must be an engine name or a mapping with a 'type'".format(where))
    kind = data.get("type")
    if kind not in STRATEGIES:
        raise InputError("{}: unknown strategy type {!r}; use one of {}".format(
            where, kind, ", ".join(STRATEGIES)))
    _no_unknown(data, _STRATEGY_KEYS[kind], "{} ({})".format(where, kind))

    def engine_name(key):
        value = data.get(key)
        if not isinstance(value, str):
            raise InputError("{} ({}) needs '{}': an engine name".format(where, kind, key))
        return _parse_strategy(value, engines, "{}.{}".format(where, key))

    def part(key):
        if key not in data:
            raise InputError("{} ({}) needs '{}'".format(where, kind, key))
        return _parse_strategy(data[key], engines, "{}.{}".format(where, key))

    if kind == "single":
        return StrategyConfig("single", engine=engine_name("engine"))
    if kind == "convert":
        return StrategyConfig("convert", converter=engine_name("converter"),
                              classifier=part("classifier"))
    if "threshold" not in data:
        raise InputError("{} (cascade) needs a 'threshold' in [0, 1]".format(where))
    try:
        threshold = check_threshold(data["threshold"])
        score = check_score(data.get("score", "max_softmax"))
    except InputError as exc:
        raise InputError("{}: {}".format(where, exc)) from None
    return StrategyConfig("cascade", first=part("first"), second=part("second"),
                          threshold=threshold, score=score,
                          post_check=_boolean(data.get("post_check", False), where + " post_check"))


def _parse_memo(data, base_dir):
    if data is None or data is False or data == "off":
        return None
    if isinstance(data, str):
        data = {"mode": data}
    if not isinstance(data, dict):
        raise InputError("memo must be off, exact, dhash or a mapping")
    _no_unknown(data, _MEMO_KEYS, "memo")
    if data.get("mode", "exact") == "off":
        return None
    path = data.get("file")
    if path is not None:
        if not isinstance(path, str) or not path:
            raise InputError("memo 'file' must be a file path")
        path = os.path.normpath(os.path.join(base_dir, os.path.expanduser(path)))
    max_mb = data.get("max_mb", 64)
    if isinstance(max_mb, bool) or not isinstance(max_mb, (int, float)) or not max_mb > 0:
        raise InputError("memo max_mb must be a positive number, got {!r}".format(max_mb))
    return MemoConfig(mode=data.get("mode", "exact"),
                      max_entries=_integer(data.get("max_entries", 100000), "memo max_entries", 1),
                      max_bytes=int(max_mb * (1 << 20)),
                      hamming=_integer(data.get("hamming", 0), "memo hamming", 0),
                      invariant=_boolean(data.get("invariant", False), "memo invariant"),
                      path=path)


# -- loading ---------------------------------------------------------------------------------------
class Deployment(object):
    """A loaded spec: ``engines`` {name: Engine}, the ``strategy`` (a Strategy, memo included),
    the ``preprocessing`` (a Preprocessing), ``class_names`` (or None) and ``input_shape`` (C, H, W,
    -1 where dynamic). Close it (or use ``with``) to free the engines and save the memo file."""

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
        return _describe(self.spec.strategy) + (
            "" if self.spec.memo is None else " + memo ({})".format(self.spec.memo.key_kind()))

    def close(self):
        self.strategy.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _describe(node):
    if not isinstance(node, StrategyConfig):
        return str(node)
    if node.kind == "single":
        return "single({})".format(node.engine)
    if node.kind == "convert":
        return "convert({} -> {})".format(node.converter, _describe(node.classifier))
    return "cascade({} -> {}, {} < {:g}{})".format(
        _describe(node.first), _describe(node.second), node.score, node.threshold,
        ", post-check" if node.post_check else "")


def open_engine(path, threads=0, confidence_head=False):
    """An engine file (``.engine`` + sidecar) or an ``.onnx`` as an Engine (via
    ``engines.load.load_engine``; plain ONNX Runtime if that module is missing).
    ``confidence_head``: see :func:`engines.load.load_engine`."""
    try:
        from engines.load import load_engine
    except ImportError as exc:
        if getattr(exc, "name", None) != "engines.load":
            raise
        load_engine = None
    if load_engine is not None:
        return load_engine(path, threads=threads, confidence_head=confidence_head)
    if not str(path).lower().endswith(".onnx"):
        raise InputError("{}: loading .engine files needs engines.load".format(path))
    from basics.fileio import sha256_file
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    return OnnxRuntimeEngine(str(path), threads=threads, identity=sha256_file(path))


def load_spec(path):
    """Read, validate and load the deployment spec at ``path`` -> :class:`Deployment`."""
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
        spec = DeploymentSpec.from_dict(data, os.path.dirname(os.path.abspath(path)), path)
        return build_deployment(spec)
    except ToolkitError as exc:
        raise type(exc)("{}: {}".format(path, exc)) from None


def build_deployment(spec):
    """Load the engines of a validated :class:`DeploymentSpec` and compose its strategy."""
    engines = {}
    heads = set(_classifier_names(spec.strategy))
    try:
        for name, ref in spec.engines.items():
            try:
                # classifiers get softmax and top-1 in their graph (not converters)
                engines[name] = open_engine(
                    ref.path, threads=spec.threads,
                    confidence_head=name in heads and not ref.output_is_probs)
            except ToolkitError as exc:
                raise type(exc)("engine '{}': {}".format(name, exc)) from None
        strategy = _compose(spec.strategy, spec, engines)
        if spec.memo is not None:
            strategy = Memo(strategy, spec.memo)
        preprocessing = _preprocessing(spec, engines)
        if -1 not in strategy.inputs[0].shape[1:]:
            preprocessing.check_input_shape(strategy.inputs[0].shape)
        class_names = _class_names(spec.strategy, engines, strategy.num_classes)
    except BaseException:
        for engine in engines.values():
            engine.close()
        raise
    return Deployment(spec, engines, strategy, preprocessing, class_names)


def _classifier_names(node):
    """The engine names ``_compose`` wraps in ``Single`` (every leaf but converters)."""
    if not isinstance(node, StrategyConfig):
        return [node]
    if node.kind == "single":
        return _classifier_names(node.engine)
    if node.kind == "convert":
        return _classifier_names(node.classifier)
    return _classifier_names(node.first) + _classifier_names(node.second)


def _compose(node, spec, engines):
    if not isinstance(node, StrategyConfig):
        ref = spec.engines[node]
        return Single(engines[node], output_is_probs=ref.output_is_probs, output=ref.output)
    if node.kind == "single":
        return _compose(node.engine, spec, engines)
    if node.kind == "convert":
        return Convert(engines[node.converter], _compose(node.classifier, spec, engines))
    first, second = _compose(node.first, spec, engines), _compose(node.second, spec, engines)
    names_a = _output_class_names(node.first, engines)
    names_b = _output_class_names(node.second, engines)
    if names_a is not None and names_b is not None and len(names_a) != len(names_b):
        raise InputError("the pair's models disagree on the number of classes: {} vs {}".format(
            len(names_a), len(names_b)))
    return Cascade(first, second, node.threshold, score=node.score, post_check=node.post_check)


def _metadata(engine):
    return getattr(engine, "metadata", None)


def _output_class_names(node, engines):
    """Class names from the metadata of the engine(s) whose output is the answer."""
    if not isinstance(node, StrategyConfig):
        meta = _metadata(engines[node])
        return None if meta is None else meta.class_names
    if node.kind == "single":
        return _output_class_names(node.engine, engines)
    if node.kind == "convert":
        return _output_class_names(node.classifier, engines)
    return _output_class_names(node.first, engines) or _output_class_names(node.second, engines)


def _class_names(node, engines, num_classes):
    names = _output_class_names(node, engines)
    if names is not None and num_classes is not None and len(names) != num_classes:
        return None
    return names


def _preprocessing(spec, engines):
    from engines.preprocess import Preprocessing
    if spec.preprocessing is not None:
        return spec.preprocessing
    found = {}
    for name in spec.strategy.entry_engines():
        meta = _metadata(engines[name])
        if meta is not None:
            found[name] = meta.preprocessing
    distinct = {repr(p.to_dict()) for p in found.values()}
    if len(distinct) > 1:
        raise InputError("engines {} expect different preprocessing; one input feeds them all, so "
                         "give 'preprocessing' in the spec".format(", ".join(sorted(found))))
    return next(iter(found.values())) if found else Preprocessing()


# -- data ------------------------------------------------------------------------------------------
class _Blob(bytes):
    """File bytes that remember where they came from (for error messages)."""

    source = None


class FileSet(object):
    """Encoded samples (file bytes) to classify through the memo's encoded path: ``sources``
    (names), ``blobs`` (bytes), ``labels`` (int64 or None), ``class_names``."""

    def __init__(self, sources, blobs, labels=None, class_names=None, name="files"):
        if not len(blobs):
            raise InputError("{}: the data set is empty".format(name))
        if len(sources) != len(blobs):
            raise InputError("{} sources for {} files".format(len(sources), len(blobs)))
        self.sources = list(sources)
        self.blobs = []
        for source, blob in zip(self.sources, blobs):
            tagged = _Blob(blob)
            tagged.source = source
            self.blobs.append(tagged)
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.class_names = list(class_names or [])
        self.name = name

    def __len__(self):
        return len(self.blobs)

    @classmethod
    def from_folder(cls, root, ref=None):
        """Every image of an image folder (one sub-folder per class), read as bytes; with
        ``ref`` (a :class:`calibration.datasets.DataRef` of the folder), only its part."""
        from calibration.datasets import list_image_folder
        files, classes = list_image_folder(root)
        name = os.path.basename(os.path.normpath(root))
        index = None if ref is None else ref.index(files=files)
        if index is not None:
            files, name = [files[i] for i in index], ref.name
        if not files:
            raise InputError("{}: the data set is empty".format(name))
        blobs = []
        for path, _ in files:
            try:
                with open(path, "rb") as handle:
                    blobs.append(handle.read())
            except OSError as exc:
                raise InputError("cannot read {}: {}".format(path, exc.strerror or exc)) from None
        return cls([p for p, _ in files], blobs, [label for _, label in files], classes, name)


def make_decoder(deployment):
    """``decode(blob) -> float32 (C, H, W)``: decode the image, convert it to the model's
    channels and size, and apply the deployment's preprocessing."""
    image_module = lazy_import("PIL.Image", "reading image files")
    prep = deployment.preprocessing
    channels, height, width = deployment.input_shape
    if height < 1 or width < 1:
        if prep.resize_hw is None:
            raise InputError("the model's input size is dynamic; set preprocessing.resize_hw")
        height, width = prep.resize_hw
    mode = "L" if channels == 1 and prep.channel_order is None else "RGB"

    def decode(blob):
        try:
            image = image_module.open(io.BytesIO(blob))
            image = image.convert(mode)
        except Exception as exc:  # noqa: BLE001 - PIL raises many kinds
            raise InputError("cannot read image {}: {}".format(
                getattr(blob, "source", None) or "(bytes)", exc)) from None
        if prep.resize_hw is None and image.size != (width, height):
            image = image.resize((width, height), image_module.BILINEAR)
        return prep.apply(np.asarray(image, dtype=np.uint8)[None])[0]
    return decode


DUPLICATE_TRANSFORMS = ("none", "rotate", "flip")


def _transform_images(images, transform):
    if transform == "rotate":
        return np.ascontiguousarray(np.rot90(images, 1, axes=(2, 3)))
    if transform == "flip":
        return np.ascontiguousarray(images[:, :, :, ::-1])
    return images


def duplicate(data, fraction, transform="none", seed=0):
    """The paper's protocol: append a shuffled copy of a share ``fraction`` (0..1) of the samples
    (``transform``: ``none``, ``rotate`` by 90 degrees, or ``flip`` left-right). Works on a
    :class:`calibration.datasets.Dataset` or a :class:`FileSet` (transformed files are re-encoded
    as PNG, so they are different bytes)."""
    fraction = float(fraction)
    if not 0.0 <= fraction <= 1.0:
        raise InputError("the duplicated share must be between 0 and 1, got {:g}".format(fraction))
    if transform not in DUPLICATE_TRANSFORMS:
        raise InputError("the duplicate transform must be one of {}, got '{}'".format(
            ", ".join(DUPLICATE_TRANSFORMS), transform))
    count = int(round(fraction * len(data)))
    if count == 0:
        return data
    picked = np.random.RandomState(seed).permutation(len(data))[:count]
    suffix = "+dup{:g}{}".format(fraction, "" if transform == "none" else "-" + transform)
    if isinstance(data, FileSet):
        blobs = [data.blobs[i] if transform == "none" else _transform_blob(data.blobs[i], transform)
                 for i in picked]
        sources = [data.sources[i] + ("" if transform == "none" else "#" + transform)
                   for i in picked]
        labels = None if data.labels is None else np.concatenate([data.labels, data.labels[picked]])
        return FileSet(data.sources + sources, data.blobs + blobs, labels, data.class_names,
                       data.name + suffix)
    from calibration.datasets import Dataset
    images = np.concatenate([data.images, _transform_images(data.images[picked], transform)])
    labels = None if data.labels is None else np.concatenate([data.labels, data.labels[picked]])
    sources = None if data.sources is None else list(data.sources) + [
        data.sources[i] for i in picked]
    return Dataset(images, labels, data.class_names, data.name + suffix, sources)


def _transform_blob(blob, transform):
    image_module = lazy_import("PIL.Image", "reading image files")
    try:
        image = image_module.open(io.BytesIO(blob))
        image.load()
    except Exception as exc:  # noqa: BLE001
        raise InputError("cannot read image {}: {}".format(
            getattr(blob, "source", None) or "(bytes)", exc)) from None
    method = image_module.ROTATE_90 if transform == "rotate" else image_module.FLIP_LEFT_RIGHT
    out = io.BytesIO()
    image.transpose(method).save(out, format="PNG")
    return out.getvalue()


def prepare_images(deployment, images):
    """Float32 NCHW data-set images (in [0, 1]) -> the deployment's input (its preprocessing),
    with a one-line error when the result does not fit the model."""
    prep = deployment.preprocessing
    out = images if prep.is_identity else prep.apply(images)
    want = deployment.input_shape
    if out.ndim != 4 or any(w not in (-1, g) for w, g in zip(want, out.shape[1:])):
        raise InputError("the data's images are {} but the deployment takes {} (set "
                         "preprocessing.resize_hw / channel_order in the spec)".format(
                             "x".join(str(d) for d in out.shape[1:]),
                             "x".join("N" if d == -1 else str(d) for d in want)))
    return np.ascontiguousarray(out, dtype=np.float32)


# -- running ---------------------------------------------------------------------------------------
class RunReport(object):
    """What a run measured: accuracy (when labels exist), latency per batch and per sample,
    throughput, the strategy's counters (handoffs, memo hits), energy (when a meter was given)
    and the predictions."""

    def __init__(self, name, strategy, data_name, batch_size, labels, confidence, true_labels,
                 sources, class_names, batch_ms, batch_sizes, stats, energy=None,
                 energy_lines=None):
        self.name = name
        self.strategy = strategy
        self.data_name = data_name
        self.batch_size = batch_size
        self.labels = labels
        self.confidence = confidence
        self.true_labels = true_labels
        self.sources = sources
        self.class_names = class_names
        self.batch_ms = np.asarray(batch_ms, dtype=np.float64)
        self.batch_sizes = np.asarray(batch_sizes, dtype=np.int64)
        self.stats = stats
        self.energy = energy
        self.energy_lines = energy_lines or []

    @property
    def samples(self):
        return int(len(self.labels))

    @property
    def accuracy(self):
        if self.true_labels is None:
            return None
        return float(np.mean(self.labels == self.true_labels))

    @property
    def total_s(self):
        return float(self.batch_ms.sum()) / 1000.0

    @property
    def throughput_per_s(self):
        return self.samples / self.total_s if self.total_s > 0 else float("inf")

    def latency_batch(self):
        return latency_summary(self.batch_ms, self.batch_size)

    def latency_sample(self):
        return latency_summary(self.batch_ms / self.batch_sizes, 1)

    def to_dict(self):
        stats = dict(self.stats)
        return {"deployment": self.name, "strategy": self.strategy, "data": self.data_name,
                "samples": self.samples, "batch_size": self.batch_size, "accuracy": self.accuracy,
                "total_s": self.total_s, "throughput_per_s": self.throughput_per_s,
                "latency_per_batch": self.latency_batch(),
                "latency_per_sample": self.latency_sample(),
                "handoff_rate": stats.get("handoff_rate"),
                "memo_hit_rate": stats.get("memo_hit_rate"), "counters": stats,
                "energy": self.energy}

    def lines(self):
        out = ["{} on {}: {} samples, batch {}".format(self.strategy, self.data_name, self.samples,
                                                        self.batch_size)]
        if self.accuracy is not None:
            out.append("accuracy            {:.4f}".format(self.accuracy))
        per_batch, per_sample = self.latency_batch(), self.latency_sample()
        out.append("latency per batch   median {:.3f} ms  p95 {:.3f} ms  p99 {:.3f} ms".format(
            per_batch["latency_median_ms"], per_batch["latency_p95_ms"],
            per_batch["latency_p99_ms"]))
        out.append("latency per sample  median {:.4f} ms  p95 {:.4f} ms  mean {:.4f} ms".format(
            per_sample["latency_median_ms"], per_sample["latency_p95_ms"],
            per_sample["latency_mean_ms"]))
        out.append("throughput          {:.1f} samples/s ({:.3f} s in all)".format(
            self.throughput_per_s, self.total_s))
        if "handoff_rate" in self.stats:
            out.append("handoff rate        {:.3f} ({} of {} samples the pair ran)".format(
                self.stats["handoff_rate"], self.stats.get("handoffs", 0),
                self.stats.get("inner_samples", self.stats.get("samples", 0))))
        if "memo_hit_rate" in self.stats:
            out.append("memo hit rate       {:.3f} ({} hits, {} entries, {} evictions)".format(
                self.stats["memo_hit_rate"], self.stats["memo_hits"], self.stats["memo_entries"],
                self.stats["memo_evictions"]))
        out.extend(self.energy_lines)
        return out

    def predictions_csv(self):
        """CSV text: index, [source,] label, [class,] confidence, true_label."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        with_source = self.sources is not None
        with_names = bool(self.class_names)
        header = ["index"] + (["source"] if with_source else []) + ["label"] + (
            ["class_name"] if with_names else []) + ["confidence", "true_label"]
        writer.writerow(header)
        for i in range(self.samples):
            label = int(self.labels[i])
            row = [i] + ([self.sources[i]] if with_source else []) + [label]
            if with_names:
                row.append(self.class_names[label] if label < len(self.class_names) else label)
            row.append("{:.6f}".format(float(self.confidence[i])))
            row.append("" if self.true_labels is None else int(self.true_labels[i]))
            writer.writerow(row)
        return buffer.getvalue()

    def write_predictions(self, path):
        write_text_atomic(path, self.predictions_csv())

    def write_json(self, path):
        write_json_atomic(path, self.to_dict())


def run_deployment(deployment, data=None, batch_size=32, meter=None, files=None, progress=False):
    """Run ``data`` (a :class:`calibration.datasets.Dataset`) or ``files`` (a :class:`FileSet`,
    classified through the memo's encoded path: files hashed before decoding) through the
    deployment in batches of ``batch_size`` -> :class:`RunReport`.

    Every engine is warmed up first (3 untimed calls, not memoized); the strategy's counters are
    reset.
    ``meter``: a started ``toolkit.power.meter.PowerMeter`` (or None): the timed run is its window
    ``"run"`` and its report is included.
    """
    if (data is None) == (files is None):
        raise InputError("give either data or files to run")
    batch_size = int(batch_size)
    if batch_size < 1:
        raise InputError("the batch size must be at least 1, got {}".format(batch_size))
    source = data if files is None else files
    total = len(source)
    if total == 0:
        raise InputError("{}: the data set is empty".format(getattr(source, "name", "data")))
    strategy = deployment.strategy
    from calibration.datasets import check_labels_fit
    check_labels_fit(source.labels, strategy.num_classes, getattr(source, "name", "data"))
    if files is not None:
        decode = make_decoder(deployment)
        warm = np.stack([decode(files.blobs[0])])

        def run_batch(start):
            return strategy.classify_encoded(files.blobs[start:start + batch_size], decode)
    else:
        warm = prepare_images(deployment, data.images[:min(batch_size, total)])

        def run_batch(start):
            return strategy.classify(prepare_images(deployment, data.images[start:start + batch_size]))
    for _ in range(3):
        strategy.warmup(warm)
    strategy.reset_stats()
    labels = np.empty(total, dtype=np.int64)
    confidence = np.empty(total, dtype=np.float32)
    batch_ms, batch_sizes = [], []
    starts = range(0, total, batch_size)
    bar = progress_bar(len(starts), "run", "batch", progress)

    def timed_loop():
        clock = time.perf_counter
        for start in starts:
            begin = clock()
            result = run_batch(start)
            batch_ms.append((clock() - begin) * 1000.0)
            batch_sizes.append(len(result))
            labels[start:start + len(result)] = result.labels
            confidence[start:start + len(result)] = result.confidence
            bar.update(1)
    energy, energy_lines = None, None
    try:
        if meter is None:
            timed_loop()
        else:
            with meter.window("run") as window:
                timed_loop()
                window.inferences = total
            report = meter.report()
            energy, energy_lines = report.to_dict(), list(report.lines())
    finally:
        bar.close()
    class_names = deployment.class_names or (source.class_names or None)
    return RunReport(deployment.name, deployment.describe(), source.name, batch_size, labels,
                     confidence, source.labels, getattr(source, "sources", None), class_names,
                     batch_ms, batch_sizes, strategy.stats(), energy, energy_lines)


# -- writing ---------------------------------------------------------------------------------------
def cascade_spec(spec_path, first_path, second_path, threshold, score="max_softmax",
                 post_check=False, memo="exact", names=("first", "second")):
    """The spec mapping of a cascade over two model files, with paths relative to ``spec_path``."""
    folder = os.path.dirname(os.path.abspath(spec_path))
    first_name, second_name = names
    if first_name == second_name:
        first_name, second_name = first_name + "_a", second_name + "_b"
    data = {"version": 1,
            "engines": {first_name: os.path.relpath(os.path.abspath(first_path), folder),
                        second_name: os.path.relpath(os.path.abspath(second_path), folder)},
            "strategy": {"type": "cascade", "first": first_name, "second": second_name,
                         "threshold": float(threshold), "score": check_score(score),
                         "post_check": bool(post_check)}}
    if memo and memo != "off":
        data["memo"] = {"mode": memo}
    return data


def write_spec(path, data):
    """Write a spec mapping as YAML (atomically); it is validated by parsing it back first."""
    yaml = lazy_import("yaml", "writing deployment specs")
    DeploymentSpec.from_dict(data, os.path.dirname(os.path.abspath(path)), path)
    write_text_atomic(path, yaml.safe_dump(data, default_flow_style=False, sort_keys=False))
    return path
