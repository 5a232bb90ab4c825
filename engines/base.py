"""The ``Engine`` interface every backend and every runtime strategy implements.

An engine has named inputs and outputs (:class:`TensorSpec`, ``-1`` marks a dynamic axis), runs
``infer({name: array}) -> {name: array}`` on a batch of any size from ``min_batch`` up to
``max_batch``, and is a context manager. Outputs are always fresh arrays owned by the caller (never
reused buffers), so a caller such as the memo may keep them without copying again. ``metadata`` is
the model's :class:`engines.model_metadata.ModelMetadata` (class names, preprocessing) or None.
"""
import numpy as np

from basics.errors import InputError

_NDARRAY = np.ndarray


class TensorSpec(object):
    """Name, shape (``-1`` for a dynamic axis) and numpy dtype of one engine input or output."""

    __slots__ = ("name", "shape", "dtype")

    def __init__(self, name, shape, dtype):
        self.name = str(name)
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)

    def to_dict(self):
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype.name}

    @classmethod
    def from_dict(cls, data):
        return cls(data["name"], data["shape"], data["dtype"])

    def __eq__(self, other):
        return isinstance(other, TensorSpec) and self.to_dict() == other.to_dict()

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((self.name, self.shape, self.dtype.name))

    def __repr__(self):
        return "TensorSpec({!r}, {}, {})".format(self.name, self.shape, self.dtype.name)


class _CheckPlan(object):
    """Pre-computed facts for the fast path of :meth:`Engine.check_feeds`.

    The fast path covers the common case (one input whose only dynamic axis is the batch) with a
    handful of comparisons; anything it does not accept goes through the full check, which either
    accepts it too or raises the one-line error. Rebuilt whenever ``inputs`` or the batch bounds
    change.
    """

    __slots__ = ("inputs", "min_batch", "max_batch", "name", "dtype", "ndim", "tail", "low", "high")

    def __init__(self, inputs, min_batch, max_batch):
        self.inputs = inputs
        self.min_batch = min_batch
        self.max_batch = max_batch
        self.name = None  # None: no fast path
        spec = inputs[0] if len(inputs) == 1 else None
        if spec is not None and spec.shape and spec.shape[0] == -1 and -1 not in spec.shape[1:]:
            self.name = spec.name
            self.dtype = spec.dtype
            self.ndim = len(spec.shape)
            self.tail = spec.shape[1:]
            self.low = max(1, min_batch or 1)
            self.high = float("inf") if max_batch is None else max_batch


class Engine(object):
    """Base class: subclasses set ``inputs``, ``outputs``, ``max_batch`` and implement ``_run``."""

    inputs = ()
    outputs = ()
    max_batch = None  # None: no limit
    min_batch = 1
    metadata = None  # engines.model_metadata.ModelMetadata when the model came with one
    _check_plan = None

    def infer(self, feeds, check=True):
        """Run one batch; returns ``{output name: array}``.

        ``check=True`` first checks ``feeds`` against ``inputs`` (:meth:`check_feeds`).
        ``check=False`` is the declared unchecked path, for a caller that has checked the same
        feeds already (a strategy checks once at the top, then runs its engines unchecked): the
        backend may still fail on bad feeds, with its own error, but never checks twice.
        """
        if check:
            self.check_feeds(feeds)
        return self._run(feeds)

    def run_unchecked(self, feeds):
        """``infer(feeds, check=False)`` as one bound call (backends alias it to ``_run``)."""
        return self._run(feeds)

    def _run(self, feeds):
        raise NotImplementedError

    def check_feeds(self, feeds):
        """Raise InputError unless ``feeds`` has exactly the inputs, with matching dtype and shape,
        and a batch within ``min_batch`` .. ``max_batch``."""
        plan = self._check_plan
        if (plan is None or plan.inputs is not self.inputs or plan.max_batch != self.max_batch
                or plan.min_batch != self.min_batch):
            plan = self._check_plan = _CheckPlan(self.inputs, self.min_batch, self.max_batch)
        if plan.name is not None and type(feeds) is dict and len(feeds) == 1:
            array = feeds.get(plan.name)
            # `is` on dtypes: numpy caches the native dtypes; anything else takes the full check
            if type(array) is _NDARRAY and array.dtype is plan.dtype:
                shape = array.shape
                if len(shape) == plan.ndim and shape[1:] == plan.tail and (
                        plan.low <= shape[0] <= plan.high):
                    return
        self._check_feeds_full(feeds)

    def _check_feeds_full(self, feeds):
        if not isinstance(feeds, dict):
            raise InputError("feeds must be a dict {{input name: array}}, got {}".format(
                type(feeds).__name__))
        names = set(feeds)
        expected = [spec.name for spec in self.inputs]
        if names != set(expected):
            raise InputError("engine inputs are {}, got {}".format(expected, sorted(names)))
        batch = None
        for spec in self.inputs:
            array = feeds[spec.name]
            if not isinstance(array, np.ndarray):
                raise InputError("input '{}' must be a numpy array, got {}".format(
                    spec.name, type(array).__name__))
            if array.dtype != spec.dtype:
                raise InputError("input '{}' must be {}, got {}".format(
                    spec.name, spec.dtype.name, array.dtype.name))
            if array.ndim != len(spec.shape) or any(
                    want not in (-1, got) for want, got in zip(spec.shape, array.shape)):
                raise InputError("input '{}' must have shape {}, got {}".format(
                    spec.name, _shape_text(spec.shape), _shape_text(array.shape)))
            if array.ndim:
                if batch is None:
                    batch = array.shape[0]
                elif array.shape[0] != batch:
                    raise InputError("inputs disagree on the batch size: {} vs {} ('{}')".format(
                        batch, array.shape[0], spec.name))
        if batch is None:
            return
        if batch < 1:
            raise InputError("empty batch: at least one sample is needed")
        if self.max_batch is not None and batch > self.max_batch:
            raise InputError("batch {} is above the engine's maximum batch {} (rebuild with a larger "
                             "--max-batch)".format(batch, self.max_batch))
        if self.min_batch is not None and batch < self.min_batch:
            raise InputError("batch {} is below the engine's minimum batch {} (rebuild with a smaller "
                             "--min-batch)".format(batch, self.min_batch))

    @property
    def input(self):
        """The single input's spec (InputError if the engine has several)."""
        if len(self.inputs) != 1:
            raise InputError("engine has {} inputs; name one".format(len(self.inputs)))
        return self.inputs[0]

    def identity(self):
        """A string that changes whenever the engine's weights or settings change (for cache keys)."""
        raise NotImplementedError

    def close(self):
        """Release the engine's resources; safe to call twice."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _shape_text(shape):
    return "x".join("N" if d == -1 else str(d) for d in shape)


def parse_shape(text):
    """``'1x3x32x32'`` -> ``(1, 3, 32, 32)``; InputError on anything else."""
    try:
        dims = tuple(int(part) for part in str(text).lower().replace(",", "x").split("x"))
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise InputError("shape must look like 1x3x32x32 (positive integers), got '{}'".format(text))
    return dims
