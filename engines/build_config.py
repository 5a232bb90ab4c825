"""The typed settings of one engine build (``toolkit build``), shared by every backend."""
from basics.errors import InputError
from engines.backends import build_choices

PRECISIONS = ("fp32", "fp16", "int8")


class BuildConfig(object):
    """What to build: precision, batch profile (min <= opt <= max), workspace, INT8 cache, backend,
    and ``float_layers``: names of layers an INT8 engine keeps in floating point (the accuracy
    gate's auto-fallback; TensorRT: ``layer.precision``, ONNX Runtime: no Q/DQ in front of them).
    ``confidence_head``: a TensorRT build of a classifier appends softmax and top-1 to its graph
    (:mod:`engines.confidence_head`; False: the engine outputs the logits only). ONNX Runtime
    engines get the head when a deployment loads them, so their build ignores it.

    ``None`` means "the default": ``opt_batch`` defaults to ``max_batch``; ``backend="auto"`` picks
    TensorRT when it is importable, ONNX Runtime otherwise.
    """

    def __init__(self, precision="fp32", min_batch=1, opt_batch=None, max_batch=32,
                 workspace_mb=256, calibration_cache=None, backend="auto", float_layers=None,
                 confidence_head=True):
        if precision not in PRECISIONS:
            raise InputError("precision must be one of {}, got '{}'".format(PRECISIONS, precision))
        if backend not in build_choices():
            raise InputError("backend must be one of {}, got '{}'".format(build_choices(), backend))
        opt_batch = max_batch if opt_batch is None else opt_batch
        if not 1 <= min_batch <= opt_batch <= max_batch:
            raise InputError("batch profile needs 1 <= min ({}) <= opt ({}) <= max ({})".format(
                min_batch, opt_batch, max_batch))
        if workspace_mb <= 0:
            raise InputError("the builder workspace must be a positive number of MiB, got {}".format(workspace_mb))
        self.precision = precision
        self.min_batch = int(min_batch)
        self.opt_batch = int(opt_batch)
        self.max_batch = int(max_batch)
        self.workspace_mb = int(workspace_mb)
        self.calibration_cache = calibration_cache
        self.backend = backend
        self.float_layers = tuple(str(name) for name in (float_layers or ()))
        self.confidence_head = bool(confidence_head)
        if self.float_layers and precision != "int8":
            raise InputError("float layers only apply to INT8 builds")

    @property
    def workspace_bytes(self):
        return self.workspace_mb << 20

    def to_dict(self):
        return {"precision": self.precision, "min_batch": self.min_batch,
                "opt_batch": self.opt_batch, "max_batch": self.max_batch,
                "workspace_mb": self.workspace_mb, "calibration_cache": self.calibration_cache,
                "backend": self.backend, "float_layers": list(self.float_layers),
                "confidence_head": self.confidence_head}

    def __repr__(self):
        return "BuildConfig({})".format(", ".join(
            "{}={!r}".format(k, v) for k, v in sorted(self.to_dict().items())))


    def check_batch_axis(self, spec, source):
        """InputError unless input ``spec`` (of model ``source``) fits this batch profile: a
        fixed batch must equal min = max batch."""
        fixed = spec.shape[0] if spec.shape else -1
        if fixed != -1 and not self.min_batch == self.max_batch == fixed:
            raise InputError(
                "input '{}' of {} has a fixed batch of {}, but the profile asks for {}..{}: export "
                "with a dynamic batch axis, or build with --min-batch/--opt-batch/--max-batch "
                "{}".format(spec.name, source, fixed, self.min_batch, self.max_batch, fixed))
