"""Parity of an exported ONNX model with the PyTorch model it came from.

Both run the same inputs (random batches of several sizes, plus the user's own inputs when given);
every output element must satisfy ``|onnx - torch| <= atol + rtol * |torch|`` (numpy's ``allclose``
rule). The report gives, per output, the largest absolute error and the relative error
``max |onnx - torch| / max |torch|`` (relative to the output's scale, so that elements near zero do
not blow it up).
"""
import os

import numpy as np

from basics.errors import InputError
from basics.lazy import lazy_import

DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-4
DYNAMIC_BATCHES = (1, 3)
RANDOM = "random"  # the source label of random inputs (one report row per batch size)
CHUNK = 64  # user inputs run in chunks of this many samples when the batch is dynamic


class Tolerance(object):
    """Absolute and relative error bounds of the parity check (fp32 defaults: 1e-4 and 1e-4)."""

    def __init__(self, atol=DEFAULT_ATOL, rtol=DEFAULT_RTOL):
        for name, value in (("absolute tolerance", atol), ("relative tolerance", rtol)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0 \
                    or not np.isfinite(value):
                raise InputError("{} must be a finite number >= 0, got {!r}".format(name, value))
        self.atol = float(atol)
        self.rtol = float(rtol)

    @classmethod
    def coerce(cls, value):
        """None -> the default, a number -> that absolute bound (default relative), or a Tolerance."""
        if value is None:
            return cls()
        if isinstance(value, Tolerance):
            return value
        return cls(atol=value)

    def to_dict(self):
        return {"atol": self.atol, "rtol": self.rtol}

    def __repr__(self):
        return "Tolerance(atol={:g}, rtol={:g})".format(self.atol, self.rtol)


def compare(reference, actual, tolerance=None):
    """Errors of ``actual`` against ``reference``: dict max_abs_error, max_rel_error, passed."""
    tolerance = Tolerance.coerce(tolerance)
    ref = np.asarray(reference, dtype=np.float64)
    got = np.asarray(actual, dtype=np.float64)
    if ref.shape != got.shape:
        return {"max_abs_error": float("inf"), "max_rel_error": float("inf"), "passed": False,
                "note": "shape {} != {}".format(list(got.shape), list(ref.shape))}
    if ref.size == 0:
        return {"max_abs_error": 0.0, "max_rel_error": 0.0, "passed": True}
    bad_ref, bad_got = int(np.sum(~np.isfinite(ref))), int(np.sum(~np.isfinite(got)))
    if bad_ref or bad_got:  # a NaN compared with a NaN proves nothing: fail, and say so
        return {"max_abs_error": float("inf"), "max_rel_error": float("inf"), "passed": False,
                "note": "NaN/Inf in the outputs: {} from PyTorch, {} from ONNX Runtime".format(
                    bad_ref, bad_got)}
    diff = np.abs(got - ref)
    both_nan = np.isnan(ref) & np.isnan(got)
    diff[both_nan] = 0.0
    diff[np.isnan(diff)] = np.inf  # NaN on one side only
    magnitude = np.nan_to_num(np.abs(ref))
    passed = bool(np.all(diff <= tolerance.atol + tolerance.rtol * magnitude))
    max_abs, scale = float(np.max(diff)), float(np.max(magnitude))
    max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
    return {"max_abs_error": max_abs, "max_rel_error": max_rel, "passed": passed}


class ParityReport(object):
    """One row per (input batch, output) compared, and their worst errors."""

    def __init__(self, tolerance):
        self.tolerance = tolerance
        self.checks = []

    def add(self, source, batch, output, errors):
        """Add one comparison; chunks of the same user inputs merge into one row (worst errors)."""
        if source != RANDOM:
            for row in self.checks:
                if row["source"] == source and row["output"] == output:
                    row["samples"] += int(batch)
                    row["batch"] = max(row["batch"], int(batch))
                    for key in ("max_abs_error", "max_rel_error"):
                        row[key] = max(row[key], errors[key])
                    row["passed"] = row["passed"] and errors["passed"]
                    if errors.get("note"):
                        row["note"] = errors["note"]
                    return
        row = {"source": source, "batch": int(batch), "samples": int(batch), "output": output}
        row.update(errors)
        self.checks.append(row)

    @property
    def passed(self):
        return bool(self.checks) and all(row["passed"] for row in self.checks)

    @property
    def max_abs_error(self):
        return max([row["max_abs_error"] for row in self.checks] or [0.0])

    @property
    def max_rel_error(self):
        return max([row["max_rel_error"] for row in self.checks] or [0.0])

    def to_dict(self):
        out = {"max_abs_error": self.max_abs_error, "max_rel_error": self.max_rel_error,
               "passed": self.passed, "checks": [dict(row) for row in self.checks]}
        out.update(self.tolerance.to_dict())
        return out

    def lines(self):
        rows = ["parity ONNX Runtime vs PyTorch (pass: |err| <= {:g} + {:g} * |torch|):".format(
            self.tolerance.atol, self.tolerance.rtol)]
        for row in self.checks:
            size = "batch {}".format(row["batch"]) if row["samples"] == row["batch"] else \
                "{} samples".format(row["samples"])
            rows.append("  {:<22} {:<12} {:<12} max abs {:.3g}  max rel {:.3g}  {}".format(
                row["source"], size, row["output"], row["max_abs_error"],
                row["max_rel_error"], "ok" if row["passed"] else "MISMATCH"))
        return rows

    def failure_text(self):
        """One line naming the worst failing check."""
        bad = [row for row in self.checks if not row["passed"]]
        worst = max(bad, key=lambda row: row["max_abs_error"])
        return ("ONNX Runtime output '{}' differs from PyTorch on {} (batch {}): max abs error {:.3g}, "
                "max rel error {:.3g}, beyond the tolerance atol {:g} + rtol {:g}{}".format(
                    worst["output"], worst["source"], worst["batch"], worst["max_abs_error"],
                    worst["max_rel_error"], self.tolerance.atol, self.tolerance.rtol,
                    " ({})".format(worst["note"]) if worst.get("note") else ""))


def random_batches(input_shape, dynamic_batch, batches=None, seed=0):
    """``[(label, float32 array)]``: standard-normal inputs at each batch size (dynamic) or at the
    exported batch (static)."""
    rng = np.random.RandomState(seed)
    sizes = (batches or DYNAMIC_BATCHES) if dynamic_batch else (input_shape[0],)
    return [(RANDOM, rng.standard_normal((int(n),) + tuple(input_shape[1:])).astype(np.float32))
            for n in sizes]


def load_parity_inputs(path):
    """The array ``images`` (or ``x``) of an ``.npz`` file, or the array of an ``.npy`` file."""
    from basics.npz import numeric, read_arrays
    path = os.fspath(path)
    loaded = read_arrays(path, "parity input file")
    if "" in loaded:  # an .npy
        return numeric(loaded[""], "the array", path)
    for key in ("images", "x"):
        if key in loaded:
            return numeric(loaded[key], key, path)
    raise InputError("{} has no 'images' (or 'x') array; it has {}".format(
        path, sorted(loaded)))


def user_batches(images, input_shape, dynamic_batch, source="user inputs"):
    """Split the user's model-ready float inputs into batches the exported model accepts."""
    images = np.asarray(images)
    if not np.issubdtype(images.dtype, np.floating):
        raise InputError("{}: model inputs must be float, got {}".format(source, images.dtype))
    if images.ndim != len(input_shape) or tuple(images.shape[1:]) != tuple(input_shape[1:]):
        raise InputError("{}: shape {} does not fit the model input {} (N{})".format(
            source, "x".join(str(d) for d in images.shape), "x".join(str(d) for d in input_shape),
            "".join("x{}".format(d) for d in input_shape[1:])))
    if len(images) == 0:
        raise InputError("{}: no samples".format(source))
    images = images.astype(np.float32)
    step = CHUNK if dynamic_batch else input_shape[0]
    out = []
    for start in range(0, len(images), step):
        batch = images[start:start + step]
        if len(batch) < step and not dynamic_batch:  # pad a static batch by repeating samples
            batch = np.resize(batch, (step,) + batch.shape[1:])  # whole samples, cyclically
        out.append((source, batch))
    return out


def torch_outputs(model, array):
    """The model's outputs on ``array`` as a list of numpy arrays (no grad)."""
    torch = lazy_import("torch", "the parity check")
    with torch.no_grad():
        result = model(torch.from_numpy(np.ascontiguousarray(array)))
    return [t.detach().cpu().numpy() for t in flatten_outputs(result)]


def flatten_outputs(result):
    """A tensor, or nested tuples/lists of tensors -> flat list; InputError on anything else."""
    torch = lazy_import("torch", "the parity check")
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (tuple, list)):
        flat = []
        for item in result:
            flat.extend(flatten_outputs(item))
        return flat
    raise InputError("the model returns {}; export needs tensors (or tuples of tensors)".format(
        type(result).__name__))


def check_parity(model, engine, batches, output_names, tolerance=None):
    """Run each ``(label, array)`` batch through ``model`` (torch) and ``engine`` (ONNX Runtime)
    and compare every output; returns a :class:`ParityReport` (does not raise on mismatch)."""
    report = ParityReport(Tolerance.coerce(tolerance))
    input_name = engine.input.name
    for label, array in batches:
        bad = int(np.sum(~np.isfinite(np.asarray(array, dtype=np.float64))))
        if bad:
            report.add(label, len(array), "(input)", {
                "max_abs_error": float("inf"), "max_rel_error": float("inf"), "passed": False,
                "note": "the input holds {} NaN/Inf value(s)".format(bad)})
            continue
        try:
            expected = torch_outputs(model, array)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - the model's forward may raise anything
            raise InputError("PyTorch fails on a batch of {} ({}: {}); export with a static batch if "
                             "the model only takes batch {}".format(
                                 len(array), type(exc).__name__, _first_line(exc),
                                 batches[0][1].shape[0])) from None
        feeds = {input_name: array}
        engine.check_feeds(feeds)
        try:
            got = engine.run_unchecked(feeds)
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own error types (or wrapped)
            raise InputError("ONNX Runtime fails on a batch of {}: {} (a batch size hard-coded in "
                             "the model, e.g. x.view(1, -1)? use torch.flatten(x, 1), or export "
                             "with a static batch)".format(len(array), _first_line(exc))) from None
        for name, ref in zip(output_names, expected):
            report.add(label, len(array), name, compare(ref, got[name], report.tolerance))
    return report


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
