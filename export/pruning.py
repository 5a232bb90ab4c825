"""Energy-aware pruning of a PyTorch CNN (Yang, Chen, Sze, CVPR 2017), with the toolkit's energy model.

Each round:

1. estimate every layer's energy with :func:`energy_model.estimate_onnx` on the model
   exported to ONNX (the same formulas as ``toolkit energy``; a torch module is matched to its ONNX
   node by name) and visit the layers from the most to the least energy-hungry;
2. in a layer, remove the smallest-magnitude weights a step at a time (``step`` of the layer at
   first, doubling after an accepted step, back to smaller after a rejected one) and restore the
   layer's output by a closed-form least-squares refit of the kept weights (per output channel,
   on im2col'd calibration inputs; targets = the layer's outputs before the round); stop when the
   relative output error has grown by more than the round's bound, or when the model's energy
   reaches the target;
3. fine-tune the whole network with the pruning masks fixed;
4. repeat, with the error bound multiplied by ``error_growth``, until the energy target (a
   fraction of the original energy) is met, or ``max_rounds`` ran. A round after which the
   validation accuracy fell by more than ``max_accuracy_drop`` is undone and retried with a smaller
   bound and half the step (finer from then on); after ``retries + 1`` such rounds in a row
   pruning stops at the last good model.

Granularity ``weights`` (the paper's): unstructured zeros. They save energy on an accelerator
that skips zeros (the model counts it); TensorRT and ONNX Runtime run the same dense math, so no
speed-up there. Granularity ``channels``: whole output channels of plain conv chains are removed
(:mod:`export.pruning_channels`; convolutions tied by residual adds are left alone), giving
physically smaller dense layers that every runtime runs faster; step 2 then removes the channels
of least contribution to the next layer's output and refits that layer.
"""
import contextlib
import copy
import io
import math
import time
import warnings

import numpy as np
import torch
from torch import nn

from basics.errors import InputError
from export import pruning_channels as channels_mod
from export.pruning_refit import build_system, flat_weight, set_weight
from export.training import TrainConfig, accuracy, predict_logits, train_classifier
from energy_model import EnergyModelConfig, estimate_onnx, layer_energy

GRANULARITIES = ("weights", "channels")


class PruneConfig(object):
    """Settings of :func:`prune_model`.

    ``target_energy``: stop when the estimated energy is at most this fraction of the original;
    ``max_accuracy_drop``: largest allowed fall of validation accuracy (0.01 = 1 point);
    ``error_bound``: first round's bound on the growth of a layer's relative output error
    (||Y - Y_ref||^2 / ||Y_ref||^2), multiplied by ``error_growth`` each round; ``step``: share
    of a layer's weights (or channels) removed per greedy step; ``min_keep``: share of each layer
    always kept; ``calibration_samples``: training images for the least-squares refit;
    ``finetune_epochs`` / ``finetune_lr``: the fine-tuning after each round (Adam, masks fixed);
    ``retries``: rounds that lost too much accuracy are undone and retried this many times in a
    row with a smaller bound (the geometric mean of the last good and the failed one);
    ``channel_multiple``: channel pruning keeps channel counts in multiples of this (8: what
    ONNX Runtime's blocked CPU kernels and TensorRT's tensor cores run fastest; an odd count can
    make a smaller layer slower);
    ``energy``: the :class:`EnergyModelConfig` (bit width ...).
    """

    def __init__(self, target_energy=0.4, granularity="weights", max_accuracy_drop=0.01,
                 error_bound=0.01, error_growth=2.0, step=0.05, min_keep=0.05, max_rounds=8,
                 finetune_epochs=5, finetune_lr=2e-3, batch_size=64, calibration_samples=256,
                 retries=1, channel_multiple=8, energy=None, seed=0):
        _check_range("target_energy", target_energy, 0.0, 1.0, low_open=True)
        if granularity not in GRANULARITIES:
            raise InputError("granularity must be one of {}, got {!r}".format(GRANULARITIES,
                                                                              granularity))
        _check_range("max_accuracy_drop", max_accuracy_drop, 0.0, 1.0)
        _check_range("error_bound", error_bound, 0.0, math.inf, low_open=True)
        _check_range("error_growth", error_growth, 1.0, math.inf)
        _check_range("step", step, 0.0, 1.0, low_open=True, high_open=True)
        _check_range("min_keep", min_keep, 0.0, 1.0, low_open=True)
        _check_range("finetune_lr", finetune_lr, 0.0, math.inf, low_open=True)
        for name, value, low in (("max_rounds", max_rounds, 1), ("finetune_epochs", finetune_epochs, 0),
                                 ("retries", retries, 0), ("channel_multiple", channel_multiple, 1),
                                 ("batch_size", batch_size, 1),
                                 ("calibration_samples", calibration_samples, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise InputError("{} must be an integer >= {}, got {!r}".format(name, low, value))
        if energy is not None and not isinstance(energy, EnergyModelConfig):
            raise InputError("energy must be an EnergyModelConfig, got {}".format(
                type(energy).__name__))
        self.target_energy = float(target_energy)
        self.granularity = granularity
        self.max_accuracy_drop = float(max_accuracy_drop)
        self.error_bound = float(error_bound)
        self.error_growth = float(error_growth)
        self.step = float(step)
        self.min_keep = float(min_keep)
        self.max_rounds = max_rounds
        self.finetune_epochs = finetune_epochs
        self.finetune_lr = float(finetune_lr)
        self.batch_size = batch_size
        self.calibration_samples = calibration_samples
        self.retries = retries
        self.channel_multiple = channel_multiple
        self.energy = energy if energy is not None else EnergyModelConfig()
        self.seed = int(seed)

    def to_dict(self):
        data = {k: v for k, v in vars(self).items() if k != "energy"}
        data["energy"] = self.energy.to_dict()
        return data


class PruneStep(object):
    """One point of the energy/accuracy path."""

    def __init__(self, round_index, stage, energy_units, energy_fraction, val_accuracy,
                 nonzero_weights, weights, note=""):
        self.round = round_index
        self.stage = stage
        self.energy_units = energy_units
        self.energy_fraction = energy_fraction
        self.val_accuracy = val_accuracy
        self.nonzero_weights = nonzero_weights
        self.weights = weights
        self.note = note

    def to_dict(self):
        return dict(vars(self))


class PruneResult(object):
    """The pruned ``model``, the path of :class:`PruneStep`, per-layer before/after, why it stopped.

    ``baseline`` / ``final``: dicts with energy_units, val_accuracy, test_accuracy (None without
    test data), nonzero_weights, weights. ``latency``: filled by :func:`compare_latency` callers.
    """

    def __init__(self, model, original, config, steps, baseline, final, stop_reason, layers):
        self.model = model
        self.original = original
        self.config = config
        self.steps = steps
        self.baseline = baseline
        self.final = final
        self.stop_reason = stop_reason
        self.layers = layers
        self.latency = None

    @property
    def energy_fraction(self):
        return self.final["energy_units"] / self.baseline["energy_units"]

    @property
    def energy_reduction(self):
        """Original energy / pruned energy (the paper's "x times less energy")."""
        return self.baseline["energy_units"] / self.final["energy_units"]

    @property
    def accuracy_drop(self):
        """Fall of test accuracy (validation when there is no test data), in [0, 1] units."""
        key = "test_accuracy" if self.final.get("test_accuracy") is not None else "val_accuracy"
        return self.baseline[key] - self.final[key]

    def to_dict(self):
        return {"config": self.config.to_dict(), "granularity": self.config.granularity,
                "baseline": self.baseline, "final": self.final,
                "energy_fraction": self.energy_fraction, "energy_reduction": self.energy_reduction,
                "accuracy_drop": self.accuracy_drop, "stop_reason": self.stop_reason,
                "path": [step.to_dict() for step in self.steps], "layers": self.layers,
                "latency": self.latency, "energy_unit": "normalized units (16-bit MAC = 1), "
                "{}-bit".format(self.config.energy.bits)}

    def lines(self):
        cfg = self.config
        what = ("unstructured weights: saves energy on accelerators that skip zeros, not time on "
                "TensorRT / ONNX Runtime" if cfg.granularity == "weights" else
                "channels: smaller dense layers, faster on TensorRT / ONNX Runtime too")
        out = ["energy-aware pruning, granularity {} ({})".format(cfg.granularity, what),
               "{:>5} {:<10} {:>10} {:>9} {:>8} {:>17}  {}".format(
                   "round", "stage", "energy", "of orig.", "val acc", "non-zero weights", "note")]
        for step in self.steps:
            out.append("{:>5} {:<10} {:>10.4g} {:>8.1%} {:>8.2%} {:>17}  {}".format(
                step.round, step.stage, step.energy_units, step.energy_fraction, step.val_accuracy,
                "{}/{}".format(step.nonzero_weights, step.weights), step.note))
        out.append("stopped: {}".format(self.stop_reason))
        out.append("{:<28} {:>10} {:>10} {:>7}  {}".format("layer", "energy", "pruned", "ratio",
                                                           "weights non-zero (shape)"))
        for row in self.layers:
            out.append("{:<28} {:>10.4g} {:>10.4g} {:>6.2f}x  {}/{} -> {}/{} ({} -> {})".format(
                row["layer"][-28:], row["energy_before"], row["energy_after"],
                row["energy_before"] / max(row["energy_after"], 1e-12), row["nonzero_before"],
                row["weights_before"], row["nonzero_after"], row["weights_after"],
                "x".join(str(d) for d in row["shape_before"]),
                "x".join(str(d) for d in row["shape_after"])))
        base, final = self.baseline, self.final
        out.append("estimated energy: {:.4g} -> {:.4g} units ({:.1%} of the original, {:.2f}x less; "
                   "{}-bit, normalized)".format(base["energy_units"], final["energy_units"],
                                                 self.energy_fraction, self.energy_reduction,
                                                 cfg.energy.bits))
        for key, label in (("val_accuracy", "validation"), ("test_accuracy", "test")):
            if final.get(key) is not None:
                out.append("{} accuracy: {:.2%} -> {:.2%} ({:+.2f} points)".format(
                    label, base[key], final[key], 100.0 * (final[key] - base[key])))
        if self.latency:
            lat = self.latency
            out.append("ONNX Runtime CPU latency, batch {}: {:.3f} ms -> {:.3f} ms ({}; "
                       "median of {} interleaved runs, {} thread(s))".format(
                           lat["batch"], lat["original_ms"], lat["pruned_ms"],
                           speed_change(lat["speedup"]), lat["iterations"], lat["threads"]))
        return out


def speed_change(speedup):
    """``1.25`` -> "1.25x faster", ``0.8`` -> "1.25x slower" (never "0.80x faster")."""
    if speedup >= 1.0:
        return "{:.2f}x faster".format(speedup)
    return "{:.2f}x slower".format(1.0 / speedup) if speedup > 0 else "slower"


def onnx_bytes(model, input_shape, opset=13, dynamic_batch=False):
    """``model`` exported in memory (TorchScript exporter) at ``input_shape``, the batch axis
    dynamic when ``dynamic_batch``."""
    buffer = io.BytesIO()
    was_training = model.training
    model.eval()
    axes = {"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.zeros(*input_shape),), buffer, dynamo=False,
                              opset_version=opset, input_names=["input"], output_names=["logits"],
                              dynamic_axes=axes, do_constant_folding=True)
    finally:
        model.train(was_training)
    return buffer.getvalue()


def model_energy(model, input_shape, config=None):
    """(ModelEnergy of ``model`` exported to ONNX, {module name: its LayerEnergy row}) for every
    Conv2d / Linear the export kept as a Conv / Gemm / MatMul node."""
    estimate = estimate_onnx(onnx_bytes(model, (1,) + tuple(input_shape[1:])), config)
    return estimate, match_layers(model, estimate, input_shape)


def match_layers(model, estimate, input_shape):
    """Map the estimate's conv/fc rows to the model's Conv2d/Linear modules: by the module name in
    the ONNX node name (``/features/features.1/features.1.0/Conv``), else by execution order."""
    modules = dict(model.named_modules())
    rows = [row for row in estimate.rows if row.kind in ("conv", "fc")]
    mapping = {}
    for row in rows:
        parts = [p for p in row.name.split("/") if p]
        name = parts[-2] if len(parts) >= 2 else None
        module = modules.get(name)
        if isinstance(module, (nn.Conv2d, nn.Linear)) and module.weight.numel() == row.weights:
            mapping[name] = row
    if len(mapping) == len(rows):
        return mapping
    order = _call_order(model, input_shape)
    if len(order) != len(rows) or any(modules[n].weight.numel() != r.weights
                                      for n, r in zip(order, rows)):
        raise InputError("cannot match the exported Conv/Gemm nodes to the model's Conv2d/Linear "
                         "modules ({} nodes, {} modules)".format(len(rows), len(order)))
    return dict(zip(order, rows))


def _call_order(model, input_shape):
    order, hooks = [], []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            hooks.append(module.register_forward_hook(
                lambda mod, args, out, name=name: order.append(name)))
    try:
        with torch.no_grad():
            model.eval()(torch.zeros((1,) + tuple(input_shape[1:])))
    finally:
        for hook in hooks:
            hook.remove()
    return order


def evaluate(model, data):
    """Accuracy of ``model`` on a labelled :class:`calibration.datasets.Dataset`."""
    return accuracy(predict_logits(model, data.images), data.labels)


def prune_model(model, train, val, config=None, test=None, progress=None):
    """Energy-aware pruning of ``model`` (left unchanged: a copy is pruned) on labelled data splits.

    ``train`` feeds the least-squares refit and the fine-tuning, ``val`` the accuracy bound,
    ``test`` (optional) the reported accuracy. ``progress(text)`` gets one line per event.
    Returns a :class:`PruneResult`.
    """
    config = PruneConfig() if config is None else config
    say = progress or (lambda text: None)
    if isinstance(model, torch.jit.ScriptModule) or not isinstance(model, nn.Module):
        raise InputError("pruning needs a torch.nn.Module (not TorchScript), got {}".format(
            type(model).__name__))
    for name, data in (("train", train), ("val", val)):
        if data.labels is None:
            raise InputError("pruning needs labelled {} data".format(name))
    original = copy.deepcopy(model).eval()
    model = copy.deepcopy(model).eval()
    shape = (1,) + tuple(train.images.shape[1:])
    try:
        base_val = evaluate(model, val)
    except RuntimeError as exc:
        raise InputError("the model cannot run on the data's images of shape {}: {}".format(
            "x".join(str(d) for d in shape), str(exc).splitlines()[0])) from None
    calib = train.images[np.random.RandomState(config.seed).permutation(len(train))[
        :config.calibration_samples]]
    estimate, rows = model_energy(model, shape, config.energy)
    chains = None
    if config.granularity == "channels":
        chains = channels_mod.find_chains(model)
        if not chains:
            raise InputError("no convolution of this model has removable channels (a plain "
                             "conv -> [bn/activation/pool] -> conv|linear chain); use --granularity "
                             "weights")
    channels0 = channels_mod.channel_counts(model, chains) if chains else {}
    e0 = estimate.total
    target = config.target_energy * e0
    steps = [PruneStep(0, "baseline", e0, 1.0, base_val, estimate.nonzero_weights, estimate.weights)]
    say("baseline: energy {:.4g} units, validation accuracy {:.2%}".format(e0, base_val))
    masks = {}
    bound = config.error_bound
    stop_reason = "ran {} rounds without meeting the energy target".format(config.max_rounds)
    current, current_acc, failures = estimate, base_val, 0
    step_scale = 1.0
    for round_index in range(1, config.max_rounds + 1):
        if current.total <= target:
            break
        snapshot = (copy.deepcopy(model), {k: v.copy() for k, v in masks.items()})
        reference = copy.deepcopy(model).eval()
        with _single_threaded_blas():  # many small solves: threads only add overhead
            if config.granularity == "weights":
                _weights_round(model, reference, rows, masks, calib, bound, target, current.total,
                               config, say, step_scale)
            else:
                _channels_round(model, reference, calib, bound, target, channels0, config, say,
                                step_scale)
        pruned, rows = model_energy(model, shape, config.energy)
        if pruned.total >= current.total * (1 - 1e-9):
            model, masks = snapshot  # nothing removed: keep the model exactly as it was
            rows = model_energy(model, shape, config.energy)[1]
            steps.append(PruneStep(round_index, "no change", pruned.total, pruned.total / e0,
                                   steps[-1].val_accuracy, pruned.nonzero_weights, pruned.weights,
                                   "error bound {:.3g} too tight; raised".format(bound)))
            bound *= config.error_growth
            continue
        refit_acc = evaluate(model, val)
        steps.append(PruneStep(round_index, "pruned", pruned.total, pruned.total / e0,
                               refit_acc, pruned.nonzero_weights, pruned.weights,
                               "error bound {:.3g}".format(bound)))
        refitted = copy.deepcopy(model)
        _finetune(model, train, masks, config, round_index)
        acc = evaluate(model, val)
        steps.append(PruneStep(round_index, "fine-tuned", pruned.total, pruned.total / e0, acc,
                               pruned.nonzero_weights, pruned.weights))
        if acc < refit_acc:  # the fine-tuning hurt: keep the refitted weights of this round
            model, acc = refitted, refit_acc
            steps.append(PruneStep(round_index, "fine-tune undone", pruned.total,
                                   pruned.total / e0, acc, pruned.nonzero_weights, pruned.weights,
                                   "fine-tuning lowered validation accuracy"))
        say("round {}: energy {:.1%} of the original, validation accuracy {:.2%}".format(
            round_index, pruned.total / e0, acc))
        if base_val - acc > config.max_accuracy_drop + 1e-9:
            model, masks = snapshot
            rows = model_energy(model, shape, config.energy)[1]
            failures += 1
            steps.append(PruneStep(round_index, "undone", current.total, current.total / e0,
                                   current_acc, current.nonzero_weights, current.weights,
                                   "accuracy fell {:.2f} points > {:.2f}".format(
                                       100 * (base_val - acc), 100 * config.max_accuracy_drop)))
            if failures > config.retries:
                stop_reason = ("accuracy bound: round {} lost {:.2f} points of validation accuracy "
                               "(> {:.2f}); kept the previous round".format(
                                   round_index, 100 * (base_val - acc),
                                   100 * config.max_accuracy_drop))
                break
            # retry between the last good bound and this one, with finer steps
            bound /= math.sqrt(config.error_growth)
            step_scale /= 2.0
            continue
        current, current_acc, failures = pruned, acc, 0
        bound *= config.error_growth
    if current.total <= target:
        stop_reason = "energy target met ({:.1%} <= {:.1%} of the original)".format(
            current.total / e0, config.target_energy)
    final_estimate, final_rows = model_energy(model, shape, config.energy)
    baseline = {"energy_units": e0, "val_accuracy": base_val,
                "test_accuracy": evaluate(original, test) if test is not None else None,
                "nonzero_weights": estimate.nonzero_weights, "weights": estimate.weights}
    final = {"energy_units": final_estimate.total, "val_accuracy": evaluate(model, val),
             "test_accuracy": evaluate(model, test) if test is not None else None,
             "nonzero_weights": final_estimate.nonzero_weights, "weights": final_estimate.weights}
    layers = _layer_summary(model_energy(original, shape, config.energy)[1], final_rows)
    return PruneResult(model.eval(), original, config, steps, baseline, final, stop_reason, layers)


def _weights_round(model, reference, rows, masks, calib, bound, target, total, config, say,
                   step_scale=1.0):
    """Unstructured pruning of every layer, most energy-hungry first; returns the new total."""
    modules = dict(model.named_modules())
    norms = channels_mod.following_norms(model)
    for name, row in sorted(rows.items(), key=lambda item: -item[1].total):
        if total <= target:
            break
        layer = modules[name]
        system = build_system(model, reference, name, calib, config.batch_size)
        weight, _ = flat_weight(layer)
        mask = masks.get(name, weight != 0)
        groups = layer.groups if isinstance(layer, nn.Conv2d) else 1
        weight, bias, error0 = refit_masked(system, mask, groups)
        row_now = layer_energy(row.shape, config.energy, weight)
        base_step = max(1, int(round(config.step * step_scale * mask.size)))
        per_step = base_step
        floor = max(1, int(math.ceil(config.min_keep * mask.size)))
        error = error0
        while total > target:
            count = min(per_step, int(mask.sum()) - floor)
            if count < 1:
                break
            trial_mask = drop_smallest(weight, mask, count)
            trial, trial_bias, trial_error = refit_masked(system, trial_mask, groups)
            if trial_error - error0 > bound:
                if per_step == base_step:
                    break
                per_step = max(base_step, per_step // 2)  # overshot: retry with a smaller step
                continue
            mask, weight, bias, error = trial_mask, trial, trial_bias, trial_error
            new_row = layer_energy(row.shape, config.energy, weight)
            total += new_row.total - row_now.total
            row_now = new_row
            per_step *= 2  # accepted: try a bigger step next (few refits per layer)
        set_weight(layer, weight, bias, modules.get(norms.get(name)))
        masks[name] = mask
        say("  {}: {:.1%} of weights kept, output error {:.4f} -> {:.4f}".format(
            name, mask.mean(), error0, error))
    return total


def refit_masked(system, mask, groups=1):
    """Least-squares refit of every output channel over its kept weights (``mask`` (M, D));
    returns (weights (M, D) with zeros where masked, bias (M,), relative output error)."""
    outputs, width = mask.shape
    per_out = outputs // groups
    weight = np.zeros((outputs, width))
    bias = np.zeros(outputs)
    residual = 0.0
    for group in range(groups):
        patterns = {}
        for m in range(group * per_out, (group + 1) * per_out):
            patterns.setdefault(mask[m].tobytes(), []).append(m)
        for members in patterns.values():
            keep = np.flatnonzero(mask[members[0]])
            columns = [m - group * per_out for m in members]
            solution = system.solve(group, keep, columns)
            weight[np.ix_(members, keep)] = solution[:-1].T
            bias[members] = solution[-1]
            residual += float(system.residual(group, keep, solution, columns).sum())
    return weight, bias, residual / (system.total_yy or 1.0)


def drop_smallest(weight, mask, count):
    """``mask`` with its ``count`` kept weights of smallest magnitude removed."""
    kept = np.flatnonzero(mask)
    order = kept[np.argsort(np.abs(weight.reshape(-1)[kept]), kind="stable")]
    out = mask.copy().reshape(-1)
    out[order[:count]] = False
    return out.reshape(mask.shape)


def _channels_round(model, reference, calib, bound, target, channels0, config, say,
                    step_scale=1.0):
    """Channel pruning of every removable chain, most energy-hungry first."""
    shape = (1,) + tuple(calib.shape[1:])
    estimate, rows = model_energy(model, shape, config.energy)
    chains = channels_mod.find_chains(model)

    def chain_energy(chain):
        return sum(rows[n].total for n in (chain.producer, chain.consumer) if n in rows)

    for chain in sorted(chains, key=chain_energy, reverse=True):
        system = build_system(model, reference, chain.consumer, calib, config.batch_size)
        count, per_channel = channels_mod.column_groups(model, chain)
        original = channels0.get(chain.producer, count)
        keep, weights, error0, error = channels_mod.choose_channels(
            system, count, per_channel,
            channels_mod.min_channels(original, config.min_keep, config.channel_multiple),
            max(1, int(round(config.step * step_scale * original))), bound,
            config.channel_multiple)
        channels_mod.apply_channels(model, chain, keep, weights)
        say("  {}: {} of {} channels kept, {} output error {:.4f} -> {:.4f}".format(
            chain.producer, len(keep), count, chain.consumer, error0, error))
        estimate = estimate_onnx(onnx_bytes(model, shape), config.energy)
        if estimate.total <= target:
            break


def _single_threaded_blas():
    """Limit numpy/scipy's BLAS to one thread (threadpoolctl, which scikit-learn brings)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _finetune(model, train, masks, config, seed):
    """Fine-tune all layers with the pruned weights held at zero (gradient masks)."""
    if config.finetune_epochs <= 0:
        return
    modules = dict(model.named_modules())
    tensors = {name: torch.from_numpy(mask.reshape(modules[name].weight.shape)).float()
               for name, mask in masks.items()}
    hooks = [modules[name].weight.register_hook(lambda grad, t=t: grad * t)
             for name, t in tensors.items()]
    try:
        train_classifier(model, train, TrainConfig(
            epochs=config.finetune_epochs, batch_size=config.batch_size, lr=config.finetune_lr,
            seed=config.seed + seed))
    finally:
        for hook in hooks:
            hook.remove()
    with torch.no_grad():
        for name, t in tensors.items():
            modules[name].weight.mul_(t)
    model.eval()


def _layer_summary(before, after):
    rows = []
    for name, row in before.items():
        new = after.get(name)
        rows.append({"layer": name, "op_type": row.op_type,
                     "energy_before": row.total, "energy_after": new.total if new else 0.0,
                     "weights_before": row.weights, "nonzero_before": row.nonzero_weights,
                     "weights_after": new.weights if new else 0,
                     "nonzero_after": new.nonzero_weights if new else 0,
                     "shape_before": list(row.shape.weight_shape),
                     "shape_after": list(new.shape.weight_shape) if new else []})
    return rows


def compare_latency(original, pruned, batch_size=32, iterations=50, warmup=5, threads=1):
    """Measured ONNX Runtime (CPU) latency of two ONNX models (paths or bytes), run interleaved so
    that machine noise hits both alike: {batch, original_ms, pruned_ms, speedup, ...} (medians)."""
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    engines = [OnnxRuntimeEngine(original, threads=threads), OnnxRuntimeEngine(pruned, threads=threads)]
    try:
        spec = engines[0].input
        shape = tuple(batch_size if d == -1 else d for d in spec.shape)
        if shape[0] != batch_size:
            raise InputError("the models have a fixed batch of {}; export with a dynamic batch to "
                             "time batch {}".format(shape[0], batch_size))
        feeds = {spec.name: np.random.RandomState(0).random_sample(shape).astype(spec.dtype)}
        times = [[], []]
        for i in range(warmup + iterations):
            for which in ((0, 1) if i % 2 == 0 else (1, 0)):
                start = time.perf_counter()
                engines[which].run_unchecked(feeds)
                if i >= warmup:
                    times[which].append((time.perf_counter() - start) * 1000.0)
    finally:
        for engine in engines:
            engine.close()
    original_ms, pruned_ms = float(np.median(times[0])), float(np.median(times[1]))
    return {"batch": batch_size, "original_ms": original_ms, "pruned_ms": pruned_ms,
            "speedup": original_ms / pruned_ms, "iterations": iterations, "threads": threads,
            "device": "ONNX Runtime CPUExecutionProvider"}


def _check_range(name, value, low, high, low_open=False, high_open=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else
                                                             value <= high)
    if not ok:
        raise InputError("{} must be in {}{}, {}{}, got {!r}".format(
            name, "(" if low_open else "[", low, high, ")" if high_open else "]", value))
