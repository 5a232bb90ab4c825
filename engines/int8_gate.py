"""The INT8 accuracy gate: an INT8 model is compared with its fp32 model before it is written.

:class:`Int8Gate` holds what to compare on and the bounds: calibration ``samples`` (top-1
agreement and max abs output difference; agreement below ``min_agreement`` fails), optional
labelled held-out data (``eval_images``/``eval_labels``: INT8 and fp32 top-1 accuracy; a drop of
more than ``max_accuracy_drop`` points fails) and ``auto_fallback``: measure each quantized layer's
sensitivity (every layer quantized but that one, one at a time) and keep the most sensitive
layers in floating point until the gate passes. :func:`run_gate` does it for any pair of
"model -> engine" functions, so ONNX Runtime and TensorRT builds share it.
"""
import time

import numpy as np

from basics.errors import InputError
from engines.confidence_head import scores_output

MIN_AGREEMENT = 0.95  # top-1 agreement with fp32 on calibration samples
MAX_RELATIVE_ERROR = 0.1  # outputs without classes: RMS difference / RMS of the fp32 output
MAX_ACCURACY_DROP = 1.0  # points of top-1 accuracy on --eval-data
GATE_SAMPLES = 256  # calibration samples compared


class Int8GateError(InputError):
    """The INT8 model lost too much accuracy: nothing was written."""


class Int8Gate(object):
    """What the INT8 accuracy gate compares on, and its bounds (see the module docstring)."""

    def __init__(self, samples, input_name=None, eval_images=None, eval_labels=None,
                 min_agreement=MIN_AGREEMENT, max_accuracy_drop=MAX_ACCURACY_DROP,
                 auto_fallback=False, progress=False):
        samples = np.asarray(getattr(samples, "images", samples), dtype=np.float32)
        if samples.size == 0:
            raise InputError("the INT8 accuracy gate needs calibration samples, got none")
        if (eval_images is None) != (eval_labels is None):
            raise InputError("the evaluation data needs images and labels")
        if not 0.0 <= float(max_accuracy_drop) <= 100.0:
            raise InputError("the largest accuracy drop is in points (0..100), got {}".format(
                max_accuracy_drop))
        self.samples = np.ascontiguousarray(samples[:GATE_SAMPLES])
        self.input_name = input_name
        self.eval_images = None if eval_images is None else \
            np.ascontiguousarray(eval_images, dtype=np.float32)
        self.eval_labels = None if eval_labels is None else np.asarray(eval_labels)
        if self.eval_images is not None and len(self.eval_images) != len(self.eval_labels):
            raise InputError("the evaluation data has {} images but {} labels".format(
                len(self.eval_images), len(self.eval_labels)))
        if self.eval_images is not None and len(self.eval_images) == 0:
            raise InputError("the evaluation data is empty")
        self.min_agreement = float(min_agreement)
        self.max_accuracy_drop = float(max_accuracy_drop)
        self.auto_fallback = bool(auto_fallback)
        self.progress = bool(progress)


class Int8Report(object):
    """How an INT8 model compares with fp32: ``agreement`` (top-1, None without classes),
    ``max_abs_error``, ``relative_error``, ``compared`` samples; with eval data ``fp32_top1``,
    ``int8_top1`` and ``eval_agreement``; ``float_layers`` kept in floating point, ``speed``
    (ms per batch: fp32, all INT8, INT8 with the float layers) when layers were kept."""

    def __init__(self):
        self.agreement = None
        self.max_abs_error = 0.0
        self.relative_error = 0.0
        self.compared = 0
        self.fp32_top1 = None
        self.int8_top1 = None
        self.eval_agreement = None
        self.eval_samples = 0
        self.float_layers = []
        self.sensitivity = []
        self.speed_ms = None
        self.failure = None

    @property
    def accuracy_drop(self):
        """Points of top-1 accuracy lost on the eval data (None without it)."""
        if self.fp32_top1 is None:
            return None
        return 100.0 * (self.fp32_top1 - self.int8_top1)

    def to_dict(self):
        return {"top1_agreement": self.agreement, "max_abs_error": self.max_abs_error,
                "relative_error": self.relative_error, "samples": self.compared,
                "fp32_top1": self.fp32_top1, "int8_top1": self.int8_top1,
                "eval_agreement": self.eval_agreement, "eval_samples": self.eval_samples,
                "accuracy_drop_points": self.accuracy_drop, "float_layers": list(self.float_layers),
                "sensitivity": [{"layer": name, "score": score} for name, score in self.sensitivity],
                "speed_ms_per_batch": self.speed_ms}

    def lines(self):
        """What the CLI prints."""
        rows = []
        if self.agreement is not None:
            rows.append("INT8 vs fp32 on {} calibration samples: top-1 agreement {:.1%}, max abs "
                        "output difference {:.4g}".format(self.compared, self.agreement,
                                                          self.max_abs_error))
        else:
            rows.append("INT8 vs fp32 on {} calibration samples: max abs output difference {:.4g} "
                        "(relative RMS {:.3g})".format(self.compared, self.max_abs_error,
                                                       self.relative_error))
        if self.fp32_top1 is not None:
            rows.append("eval data ({} labelled samples): INT8 top-1 {:.2%}, fp32 top-1 {:.2%} "
                        "({:+.2f} points), agreement {:.2%}".format(
                            self.eval_samples, self.int8_top1, self.fp32_top1,
                            -self.accuracy_drop, self.eval_agreement))
        if self.float_layers:
            rows.append("auto-fallback kept {} layer(s) in floating point: {}".format(
                len(self.float_layers), ", ".join(self.float_layers)))
        if self.speed_ms:
            rows.append("speed (ms per batch of {} on this machine): fp32 {:.3f}, all INT8 {:.3f}, "
                        "INT8 with float layers {:.3f}".format(
                            self.speed_ms["batch"], self.speed_ms["fp32"],
                            self.speed_ms["int8"], self.speed_ms["int8_fallback"]))
        return rows


def _outputs(engine, input_name, images, chunk=64):
    name = scores_output(engine).name
    parts = [engine.infer({input_name: images[start:start + chunk]})[name]
             for start in range(0, len(images), chunk)]
    return np.concatenate(parts)


def _reference_outputs(reference, gate):
    """``(samples, eval)`` outputs of ``reference`` (fp32) on the gate's data (eval: None without
    eval data)."""
    name = gate.input_name or reference.inputs[0].name
    evals = None if gate.eval_images is None else _outputs(reference, name, gate.eval_images)
    return _outputs(reference, name, gate.samples), evals


def measure(reference, engine, gate, expected=None):
    """:class:`Int8Report` of ``engine`` (INT8) against ``reference`` (fp32), both open;
    ``expected``: :func:`_reference_outputs` of ``reference`` when already computed (the
    auto-fallback measures many engines against one reference)."""
    name = gate.input_name or reference.inputs[0].name
    want_samples, want_eval = expected or _reference_outputs(reference, gate)
    report = Int8Report()
    want = want_samples.astype(np.float64)
    got = _outputs(engine, name, gate.samples).astype(np.float64)
    report.compared = len(gate.samples)
    diff = want - got
    report.max_abs_error = float(np.max(np.abs(diff))) if diff.size else 0.0
    scale = float(np.sqrt(np.mean(want ** 2))) if want.size else 0.0
    report.relative_error = float(np.sqrt(np.mean(diff ** 2)) / scale) if scale > 0 else 0.0
    if want.ndim == 2 and want.shape[1] >= 2:
        report.agreement = float(np.mean(want.argmax(1) == got.argmax(1)))
    if gate.eval_images is not None:
        want = want_eval
        got = _outputs(engine, name, gate.eval_images)
        if want.ndim != 2 or want.shape[1] < 2:
            raise InputError("the evaluation data needs a classifier (outputs N x classes); the model's "
                             "first output is {}".format("x".join(str(d) for d in want.shape)))
        report.eval_samples = len(want)
        report.fp32_top1 = float(np.mean(want.argmax(1) == gate.eval_labels))
        report.int8_top1 = float(np.mean(got.argmax(1) == gate.eval_labels))
        report.eval_agreement = float(np.mean(want.argmax(1) == got.argmax(1)))
    report.failure = _failure(report, gate)
    return report


def _failure(report, gate):
    """Why ``report`` fails ``gate`` (one line), or None."""
    if report.agreement is not None and report.agreement < gate.min_agreement:
        return ("INT8 top-1 agrees with fp32 on only {:.1%} of {} calibration samples (the gate "
                "needs {:.0%}; max abs output difference {:.4g})".format(
                    report.agreement, report.compared, gate.min_agreement, report.max_abs_error))
    if report.agreement is None and report.relative_error > MAX_RELATIVE_ERROR:
        return ("INT8 outputs differ from fp32 by {:.1%} (relative RMS on {} calibration samples; "
                "the gate allows {:.0%})".format(report.relative_error, report.compared,
                                                 MAX_RELATIVE_ERROR))
    if report.accuracy_drop is not None and report.accuracy_drop > gate.max_accuracy_drop + 1e-9:
        return ("INT8 top-1 accuracy {:.2%} is {:.2f} points below fp32's {:.2%} on {} eval "
                "samples (--max-accuracy-drop {:g})".format(
                    report.int8_top1, report.accuracy_drop, report.fp32_top1,
                    report.eval_samples, gate.max_accuracy_drop))
    return None


def _score(report):
    """Higher is better: eval accuracy when there is eval data, else agreement / -error."""
    if report.int8_top1 is not None:
        return report.int8_top1 + 1e-3 * (report.agreement or 0.0)
    if report.agreement is not None:
        return report.agreement - 1e-6 * report.max_abs_error
    return -report.relative_error


def run_gate(open_reference, open_int8, layers, gate):
    """Check an INT8 model with ``gate``; ``open_reference()`` opens the fp32 engine,
    ``open_int8(float_layers)`` the INT8 one with ``float_layers`` (names among ``layers``) kept
    in floating point. Returns ``(report, float_layers)``; raises :class:`Int8GateError` (one
    line) when the gate fails, after the auto-fallback when it is on."""
    from basics.progress import progress_bar
    with open_reference() as reference:
        expected = _reference_outputs(reference, gate)  # once: every measure compares with it
        with open_int8([]) as engine:
            report = measure(reference, engine, gate, expected)
        if report.failure is None or not gate.auto_fallback or not layers:
            if report.failure is not None:
                raise Int8GateError(report.failure + _fallback_hint(gate, layers))
            return report, []
        first = report
        scores = []
        bar = progress_bar(len(layers), "sensitivity", "layer", gate.progress)
        try:
            for layer in layers:  # every layer quantized but this one
                with open_int8([layer]) as engine:
                    scores.append((layer, _score(measure(reference, engine, gate, expected))))
                bar.update(1)
        finally:
            bar.close()
        base = _score(first)
        ranked = sorted(scores, key=lambda item: -item[1])
        kept = []
        for layer, _ in ranked:
            kept.append(layer)
            with open_int8(list(kept)) as engine:
                report = measure(reference, engine, gate, expected)
            if report.failure is None:
                break
        report.sensitivity = [(layer, round(score - base, 6)) for layer, score in ranked]
        if report.failure is not None:
            raise Int8GateError("{} even with every quantized layer ({}) in floating point"
                                .format(report.failure, len(kept)))
        report.float_layers = [layer for layer in layers if layer in kept]
        report.speed_ms = _speed(reference, open_int8, report.float_layers, gate)
    return report, report.float_layers


def _fallback_hint(gate, layers):
    if gate.auto_fallback or not layers:
        return ""
    return ("; --auto-fallback keeps the most sensitive layers in floating point, or build "
            "fp16/fp32")


def _speed(reference, open_int8, float_layers, gate, rounds=20):
    """ms per batch (interleaved, best of ``rounds``) of fp32, all-INT8 and INT8 with
    ``float_layers``, on one batch of the calibration samples."""
    name = gate.input_name or reference.inputs[0].name
    batch = gate.samples[:32]
    feeds = {name: batch}
    with open_int8([]) as int8, open_int8(float_layers) as mixed:
        engines = (("fp32", reference), ("int8", int8), ("int8_fallback", mixed))
        best = dict((key, float("inf")) for key, _ in engines)
        for _ in range(rounds):
            for key, engine in engines:
                started = time.perf_counter()
                engine.infer(feeds)
                best[key] = min(best[key], 1000.0 * (time.perf_counter() - started))
    best["batch"] = len(batch)
    return best
