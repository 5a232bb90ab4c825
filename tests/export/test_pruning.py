"""Energy-aware pruning: the least-squares refit, unstructured and channel pruning, energy mapping."""
import copy

import numpy as np
import pytest

from basics.errors import InputError

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from torch import nn  # noqa: E402

from engines.onnxruntime_backend import OnnxRuntimeEngine  # noqa: E402
from export import models  # noqa: E402
from export import pruning_channels as channels_mod  # noqa: E402
from export.pruning import (  # noqa: E402
    PruneConfig,
    PruneResult,
    compare_latency,
    drop_smallest,
    match_layers,
    model_energy,
    onnx_bytes,
    prune_model,
    refit_masked,
)
from export.pruning_refit import build_system, flat_weight, set_weight  # noqa: E402
from energy_model import estimate_onnx  # noqa: E402

SHAPE = (1, 1, 8, 8)
FAST = dict(finetune_epochs=1, calibration_samples=96, max_rounds=2)


def _layer_output(model, name, images):
    captured = {}
    layer = dict(model.named_modules())[name]
    hook = layer.register_forward_hook(lambda mod, args, out: captured.__setitem__("y", out))
    with torch.no_grad():
        model.eval()(torch.from_numpy(images))
    hook.remove()
    return captured["y"].double().numpy()


def test_refit_lowers_the_output_error_and_the_closed_form_is_exact(trained_small_cnn,
                                                                   digits_splits):
    model = copy.deepcopy(trained_small_cnn)
    images = digits_splits[0].images[:128]
    name = "features.1.0"
    system = build_system(model, trained_small_cnn, name, images, batch_size=50)
    weight, bias = flat_weight(model.features[1][0])
    mask = drop_smallest(weight, np.ones_like(weight, dtype=bool), int(0.6 * weight.size))
    assert mask.sum() == weight.size - int(0.6 * weight.size)
    # magnitude pruning alone: keep the surviving weights as they are
    keep_only = np.vstack([(weight * mask).T, bias[None]])
    plain_error = sum(system.residual(0, np.arange(weight.shape[1]), keep_only[:, [m]], [m])[0]
                      for m in range(weight.shape[0])) / system.total_yy
    refit, refit_bias, refit_error = refit_masked(system, mask)
    assert refit_error < 0.5 * plain_error
    assert np.all(refit[~mask] == 0)
    # the Gram-matrix error equals the error of really running the refitted layer
    reference = _layer_output(trained_small_cnn, name, images)
    set_weight(model.features[1][0], refit, refit_bias, model.features[1][1])
    assert model.features[1][0].bias is None  # the bias went into the BatchNorm's mean
    layer = model.features[1][0]
    captured = {}
    hook = layer.register_forward_hook(lambda mod, args, out: captured.__setitem__("y", out))
    with torch.no_grad():
        model(torch.from_numpy(images))
    hook.remove()
    got = captured["y"].double().numpy() + refit_bias[None, :, None, None]
    direct = float(((got - reference) ** 2).sum() / (reference ** 2).sum())
    assert direct == pytest.approx(refit_error, rel=1e-3, abs=1e-6)


def test_layers_map_to_onnx_rows_by_name_and_by_order(trained_small_cnn):
    estimate, rows = model_energy(trained_small_cnn, SHAPE)
    assert set(rows) == {"features.0.0", "features.1.0", "classifier"}
    assert rows["features.1.0"].total == max(r.total for r in rows.values())
    renamed = estimate_onnx(onnx_bytes(trained_small_cnn, SHAPE))
    for row in renamed.rows:
        row.name = "node_{}".format(id(row))  # names no longer say the module
    by_order = match_layers(trained_small_cnn, renamed, SHAPE)
    assert {k: v.total for k, v in by_order.items()} == {k: v.total for k, v in rows.items()}


def test_unstructured_pruning_keeps_zeros_and_the_onnx_shows_the_saving(trained_small_cnn,
                                                                        digits_splits):
    train, val, test = digits_splits
    config = PruneConfig(target_energy=0.7, max_accuracy_drop=0.05, **FAST)
    result = prune_model(trained_small_cnn, train, val, config, test=test)
    assert result.model is not trained_small_cnn
    assert all(p.abs().sum() > 0 for p in trained_small_cnn.parameters())  # caller's model intact
    assert result.energy_fraction < 1.0 and result.energy_reduction > 1.0
    assert result.final["nonzero_weights"] < result.baseline["nonzero_weights"]
    assert result.accuracy_drop <= 0.05 + 1e-9 or "accuracy bound" in result.stop_reason
    stages = [step.stage for step in result.steps]
    assert stages[0] == "baseline" and "fine-tuned" in stages
    # the zeros survive fine-tuning and export (BN folding keeps them): same energy from the file
    exported = estimate_onnx(onnx_bytes(result.model, SHAPE))
    assert exported.total == pytest.approx(result.final["energy_units"])
    assert exported.nonzero_weights == result.final["nonzero_weights"]
    data = result.to_dict()
    assert data["path"][0]["stage"] == "baseline" and data["layers"]
    assert "granularity weights" in "\n".join(result.lines())


def test_channel_pruning_builds_a_smaller_model_that_exports_and_runs(trained_small_cnn,
                                                                      digits_splits):
    train, val, _ = digits_splits
    chains = channels_mod.find_chains(trained_small_cnn)
    assert [(c.producer, c.norms, c.consumer, c.flatten) for c in chains] == [
        ("features.0.0", ["features.0.1"], "features.1.0", False),
        ("features.1.0", ["features.1.1"], "classifier", True)]
    config = PruneConfig(target_energy=0.6, granularity="channels", max_accuracy_drop=0.5,
                         error_bound=0.03, step=0.25, channel_multiple=4, **FAST)
    result = prune_model(trained_small_cnn, train, val, config)
    assert "undone" not in [step.stage for step in result.steps], result.lines()
    model = result.model
    widths = (model.features[0][0].out_channels, model.features[1][0].out_channels)
    assert widths[0] < 16 or widths[1] < 32
    assert widths[0] % 4 == 0 and widths[1] % 4 == 0
    assert model.features[1][0].in_channels == widths[0] == model.features[0][1].num_features
    assert model.classifier.in_features == widths[1]
    assert result.final["energy_units"] < result.baseline["energy_units"]
    engine = OnnxRuntimeEngine(onnx_bytes(model, SHAPE, dynamic_batch=True))
    images = val.images[:5]
    logits = engine.infer({"input": images})["logits"]
    with torch.no_grad():
        expected = model(torch.from_numpy(images)).numpy()
    assert logits.shape == (5, 10)
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    timing = compare_latency(onnx_bytes(result.original, SHAPE, dynamic_batch=True),
                             onnx_bytes(model, SHAPE, dynamic_batch=True), batch_size=4,
                             iterations=3, warmup=1)
    assert timing["original_ms"] > 0 and timing["pruned_ms"] > 0 and timing["batch"] == 4


def test_residual_convolutions_are_not_channel_pruned():
    model = models.ResNetish(widths=(8, 16), blocks=1)
    producers = {chain.producer for chain in channels_mod.find_chains(model)}
    # only the first conv inside each residual block: its output stays inside the block
    assert producers == {"features.1.body.0.0", "features.4.body.0.0"}


def test_depthwise_consumers_are_not_channel_pruned():
    chains = channels_mod.find_chains(models.depthwise_cnn())
    assert [(c.producer, c.consumer) for c in chains] == [("features.4.0", "classifier")]


def test_channel_choice_respects_the_multiple_and_the_floor():
    rng = np.random.RandomState(0)
    x = rng.standard_normal((500, 12))
    y = x[:, :3] @ rng.standard_normal((3, 4))  # only the first 3 of 12 "channels" matter
    a = np.hstack([x, np.ones((500, 1))])
    from export.pruning_refit import LayerSystem
    system = LayerSystem([a.T @ a], [a.T @ y], [(y * y).sum(axis=0)])
    keep, weights, _, error = channels_mod.choose_channels(system, 12, 1, min_keep=4, step=1,
                                                           bound=1e-6, multiple=4)
    assert list(keep) == [0, 1, 2, 3] or (len(keep) == 4 and {0, 1, 2} <= set(keep))
    assert error < 1e-6 and weights.shape == (5, 4)
    assert channels_mod.min_channels(30, 0.05, 8) == 8 and channels_mod.min_channels(4, 0.5, 8) == 4


def test_channels_granularity_needs_a_plain_chain(digits_splits):
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.head = nn.Linear(4, 10)

        def forward(self, x):
            y = self.conv(x)
            return self.head((y + y.mean()).mean(dim=(2, 3)))

    train, val, _ = digits_splits
    with pytest.raises(InputError, match="no convolution of this model has removable channels"):
        prune_model(Tied(), train, val, PruneConfig(granularity="channels"))


def test_a_model_that_does_not_fit_the_data_is_a_one_line_error(digits_splits):
    train, val, _ = digits_splits
    with pytest.raises(InputError, match="cannot run on the data's images of shape 1x1x8x8"):
        prune_model(models.small_cnn(in_channels=3), train, val)


@pytest.mark.parametrize("kwargs, message", [
    ({"target_energy": 0}, "target_energy"), ({"target_energy": 1.5}, "target_energy"),
    ({"granularity": "filters"}, "granularity"), ({"max_accuracy_drop": -0.1}, "max_accuracy_drop"),
    ({"error_bound": 0}, "error_bound"), ({"step": 1.0}, "step"), ({"max_rounds": 0}, "max_rounds"),
    ({"finetune_epochs": -1}, "finetune_epochs"), ({"channel_multiple": 0}, "channel_multiple"),
    ({"error_growth": 0.5}, "error_growth"), ({"energy": {"bits": 8}}, "EnergyModelConfig"),
])
def test_bad_config_values(kwargs, message):
    with pytest.raises(InputError, match=message):
        PruneConfig(**kwargs)


@pytest.mark.parametrize("removed_share", [0.1, 0.9])
def test_both_solve_paths_give_the_ridge_least_squares_solution(removed_share):
    from export.pruning_refit import LayerSystem
    rng = np.random.RandomState(0)
    a = np.hstack([rng.standard_normal((300, 20)), np.ones((300, 1))])
    y = rng.standard_normal((300, 3))
    system = LayerSystem([a.T @ a], [a.T @ y], [(y * y).sum(axis=0)])
    keep = np.sort(rng.permutation(20)[int(removed_share * 20):])
    index = np.append(keep, 20)
    gram = (a.T @ a)[np.ix_(index, index)] + system.ridge(0) * np.eye(len(index))
    expected = np.linalg.solve(gram, (a.T @ y)[index])
    np.testing.assert_allclose(system.solve(0, keep), expected, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(system.solve(0, keep, [1]), expected[:, [1]], rtol=1e-8, atol=1e-10)
    direct = ((a[:, index] @ expected - y) ** 2).sum(axis=0)
    np.testing.assert_allclose(system.residual(0, keep, expected), direct, rtol=1e-6)


def test_only_plain_modules_can_be_pruned(trained_small_cnn, digits_splits):
    train, val, _ = digits_splits
    with pytest.raises(InputError, match="needs a torch.nn.Module"):
        prune_model(torch.jit.script(models.tiny_cnn()), train, val)


def test_a_slowdown_is_printed_as_slower_never_as_fractional_faster():
    base = {"energy_units": 10.0, "val_accuracy": 0.9, "test_accuracy": None}
    result = PruneResult(None, None, PruneConfig(), [], base, dict(base), "done", [])
    result.latency = {"batch": 8, "original_ms": 1.0, "pruned_ms": 1.25, "speedup": 0.8,
                      "iterations": 5, "threads": 1}
    line = [text for text in result.lines() if "latency" in text][0]
    assert "1.25x slower" in line and "faster" not in line
    result.latency.update(pruned_ms=0.5, speedup=2.0)
    assert "2.00x faster" in [text for text in result.lines() if "latency" in text][0]


def test_a_round_whose_fine_tuning_hurts_keeps_its_refitted_weights(trained_small_cnn,
                                                                   digits_splits, monkeypatch):
    """Fine-tuning that lowers validation accuracy used to undo the whole round: the 'pruned'
    model came out identical to the original. The refitted round is kept instead."""
    from export import pruning

    def harmful_finetune(model, train, masks, config, seed):
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.mul_(-1.0)  # wrecks the network (and leaves pruned zeros at zero)
    monkeypatch.setattr(pruning, "_finetune", harmful_finetune)
    train, val, test = digits_splits
    result = prune_model(trained_small_cnn, train, val, PruneConfig(
        granularity="weights", max_rounds=1, finetune_epochs=1, calibration_samples=96,
        max_accuracy_drop=0.2), test=test)
    stages = [step.stage for step in result.steps]
    assert stages[-2:] == ["fine-tuned", "fine-tune undone"]
    assert result.energy_fraction < 0.95
    refitted = [s for s in result.steps if s.stage == "pruned"][-1]
    assert result.final["val_accuracy"] == pytest.approx(refitted.val_accuracy)
