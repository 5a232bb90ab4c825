"""``toolkit pair``: choose a complementary pair from a model pool, and its handoff threshold."""
import os

import click
import numpy as np

from basics.errors import InputError
from basics.fileio import write_json_atomic
from toolkit.cli.options import (
    batch_option,
    data_option,
    force_option,
    option,
    progress_option,
    threads_option,
)
from toolkit.cli.outputs import Output, data_reads, guard, sidecar_reads
from toolkit.strategies.scores import SCORES
from toolkit.strategies.thresholds import DEFAULT_TOLERANCE, RULES

COSTS = ("latency", "energy-model")


def _rule_options(func):
    """``--rule`` and its goal values, shared by ``pair select`` and ``pair threshold``."""
    options = [
        click.option("--rule", type=click.Choice(list(RULES)), default=None,
                     help="How to choose: near-best = the cheapest within --tolerance of the best "
                          "accuracy [the default]; best-accuracy = the paper's (most accurate, "
                          "however costly); target = the cheapest reaching --target-accuracy; "
                          "budget = the most accurate within --budget. --target-accuracy or "
                          "--budget alone imply their rule."),
        click.option("--tolerance", type=float, default=None,
                     help="near-best: accuracy (a fraction) the choice may lose against the best "
                          "one reached [default: {:g}, half a point].".format(DEFAULT_TOLERANCE)),
        click.option("--target-accuracy", type=float, default=None,
                     help="target: the validation accuracy to reach at the lowest cost."),
    ]
    for decorator in reversed(options):
        func = decorator(func)
    return func


def _common(func):
    options = [
        data_option("Validation data, SOURCE:val: SOURCE is digits, digits16, digits-hard, a "
                    ".npz/.npy file, an image folder, or the split file a recipe wrote "
                    "(pool/split.json:val). The same 60/20/20 split for every source."),
        click.option("--score", default="max_softmax", show_default=True,
                     type=click.Choice(list(SCORES)), help="Confidence score of model A."),
        click.option("--post-check", is_flag=True,
                     help="Answer with the more confident of A and B after a handoff."),
        click.option("--cost", default="latency", show_default=True, type=click.Choice(COSTS),
                     help="Cost per sample: median latency measured here, or the analytical "
                          "energy model's estimate (toolkit energy; needs .onnx files)."),
        batch_option(help="Batch size for inference and latency timing."),
        threads_option(),
        option("--report", "json_path", default=None, metavar="OUT.json", aliases=("--json",),
               help="Write the full result (curves included) as JSON."),
        click.option("--plot", "plot_path", default=None, metavar="CURVE.png",
                     help="Plot accuracy vs expected cost and vs threshold (needs matplotlib)."),
        click.option("--write-spec", "spec_path", default=None, metavar="DEPLOY.yaml",
                     help="Write a deployment spec of the chosen cascade (for toolkit run)."),
        click.option("--memo", default="exact", show_default=True,
                     type=click.Choice(["exact", "dhash", "off"]),
                     help="Memo mode put into the written spec."),
        progress_option(),
        force_option(),
    ]
    for decorator in reversed(options):
        func = decorator(func)
    return func


@click.group("pair")
def pair():
    """Complementary pairs with early handoff (Kinnas et al., 2024): pick a pair from a pool of
    models by complementarity and cost, and pick the threshold below which model A hands a sample
    to model B.

    \b
    Examples:
      toolkit pair select tiny.onnx small.onnx large.onnx --data digits:val --target-accuracy 0.97
      toolkit pair select *.onnx --data pool/split.json:val --write-spec deploy.yaml
      toolkit pair threshold tiny.onnx large.onnx --data digits:val --plot curve.png
    """


@pair.command("select")
@click.argument("models", nargs=-1, required=True, metavar="MODEL.onnx|MODEL.engine ...")
@_rule_options
@click.option("--budget", type=float, default=None, metavar="FRACTION",
              help="budget: the most accurate pair whose expected cost is at most FRACTION of "
                   "the most accurate single model's cost (e.g. 0.27). Carries over to new data "
                   "better than a target on a few hundred validation samples.")
@click.option("--second", "second_models", multiple=True, metavar="NAME",
              help="Only pairs handing off to this model (file name without extension; "
                   "repeatable), e.g. the large model.")
@_common
def select(models, rule, tolerance, target_accuracy, budget, second_models, data, score,
           post_check, cost, batch, threads, json_path, plot_path, spec_path, memo, no_progress,
           force):
    """Evaluate every ordered pair (A first, B second) of MODELS on validation --data: the
    complementarity matrix (the share of A's errors B gets right; also the share exactly one of
    the two gets right), each pair's best-accuracy threshold and its threshold by --rule, and
    recommend a pair. By default (near-best) that is the cheapest pair and threshold within
    --tolerance (half a point) of the best accuracy any pair reaches; --rule best-accuracy is the
    paper's rule (the most accurate, however costly). The output says so when the recommended
    pair saves nothing over the most accurate single model.

    Expected cost per sample = cost(A) + handoff rate x cost(B), with costs measured as median
    latency per sample here (--cost latency) or estimated by the energy model (--cost energy-model).

    \b
    Examples:
      toolkit pair select tiny.onnx small.onnx large.onnx --data digits:val --target-accuracy 0.97
      toolkit pair select a.engine b.engine c.engine --data digits:val --tolerance 0.003 \\
          --report pairs.json --plot pairs.png --write-spec deploy.yaml
      toolkit pair select *.onnx --data digits:val --budget 0.27 --second large_cnn
      toolkit pair select *.onnx --data pool/split.json:val --rule best-accuracy
    """
    from toolkit.strategies.pairs import evaluate_pool
    if len(models) < 2:
        raise InputError("give at least two models to choose a pair from")
    _check_goal(rule, target_accuracy, tolerance, budget)
    _guard(models, data, json_path, plot_path, spec_path, force)
    names = _names(models)
    unknown = [n for n in second_models if n not in names]
    if unknown:
        raise InputError("--second {}: not one of the models ({})".format(
            unknown[0], ", ".join(names)))
    pool = _evaluate(models, data, cost, batch, threads, not no_progress)
    cost_budget = None
    if budget is not None:
        cost_budget = budget * pool["costs"][int(np.argmax(_accuracies(pool)))]
    evaluation = evaluate_pool(pool["names"], pool["probs"], pool["labels"], pool["costs"],
                               pool["unit"], score=score, post_check=post_check,
                               target_accuracy=target_accuracy, tolerance=tolerance,
                               cost_budget=cost_budget, second_models=list(second_models) or None,
                               rule=rule)
    click.echo("data: {} ({} samples)".format(pool["data"], len(pool["labels"])))
    for line in evaluation.lines():
        click.echo(line)
    candidate, choice, _ = evaluation.recommended()
    if json_path:
        result = evaluation.to_dict()
        result["recommended"]["curve"] = candidate.curve.to_dict()
        result["models_paths"] = list(models)
        result["data"] = pool["data"]
        write_json_atomic(json_path, result)
        click.echo("json: {}".format(json_path))
    if plot_path:
        _plot(plot_path, evaluation, candidate, choice)
        click.echo("plot: {}".format(plot_path))
    if spec_path:
        _write_spec(spec_path, models, pool["names"], candidate.first, candidate.second, choice,
                    score, post_check, memo)


@pair.command("threshold")
@click.argument("first", metavar="A")
@click.argument("second", metavar="B")
@_rule_options
@click.option("--budget", type=float, default=None, metavar="FRACTION",
              help="budget: the most accurate threshold whose expected cost is at most FRACTION "
                   "of B's cost.")
@_common
def threshold(first, second, rule, tolerance, target_accuracy, budget, data, score, post_check,
              cost, batch, threads, json_path, plot_path, spec_path, memo, no_progress, force):
    """The threshold curve of the fixed pair A -> B on validation --data (accuracy, handoff rate
    and expected cost at every threshold of a fine grid) and the threshold chosen by --rule: by
    default the cheapest within --tolerance (half a point) of the pair's best accuracy;
    best-accuracy is the paper's rule (highest accuracy, ties to the cheapest); target the
    cheapest reaching --target-accuracy; budget the most accurate within --budget.

    \b
    Examples:
      toolkit pair threshold tiny.onnx large.onnx --data digits:val
      toolkit pair threshold tiny.onnx large.onnx --data digits:val --tolerance 0.003 \\
          --cost energy-model --plot curve.png --write-spec deploy.yaml
    """
    from toolkit.strategies.thresholds import resolve_rule, threshold_curve
    _check_goal(rule, target_accuracy, tolerance, budget)
    _guard((first, second), data, json_path, plot_path, spec_path, force)
    pool = _evaluate((first, second), data, cost, batch, threads, not no_progress)
    curve = threshold_curve(pool["probs"][0], pool["probs"][1], pool["labels"], score=score,
                            post_check=post_check, cost_first=pool["costs"][0],
                            cost_second=pool["costs"][1], cost_unit=pool["unit"])
    best = curve.best_accuracy()
    cost_budget = None if budget is None else budget * curve.cost_second
    rule, tolerance = resolve_rule(rule, target_accuracy, tolerance, cost_budget)
    chosen = curve.choose(rule, target_accuracy, tolerance, cost_budget)
    names = pool["names"]
    click.echo("{} -> {} on {} samples of {} ({}{}), cost in {}".format(
        names[0], names[1], curve.samples, pool["data"], score, ", post-check" if post_check
        else "", curve.cost_unit))
    click.echo("  {}: accuracy {:.4f}, cost {:.4g}".format(names[0], curve.accuracy_first,
                                                         curve.cost_first))
    click.echo("  {}: accuracy {:.4f}, cost {:.4g}".format(names[1], curve.accuracy_second,
                                                         curve.cost_second))
    click.echo("rule {}{}".format(rule, " (tolerance {:g} below the best accuracy)".format(
        tolerance) if rule == "near-best" else ""))
    click.echo("best accuracy: " + best.line())
    if chosen is None:
        click.echo("no threshold {}; using the best-accuracy threshold".format(
            "fits the budget" if rule == "budget" else "reaches the target accuracy"))
        chosen = best
    elif chosen is not best:
        click.echo("chosen: " + chosen.line())
    useless = _saves_nothing(curve, chosen, names)
    if useless:
        click.echo("note: {} -> {} saves nothing: {}".format(names[0], names[1], useless))
    if json_path:
        write_json_atomic(json_path, {"first": names[0], "second": names[1],
                                      "models_paths": [first, second],
                                      "curve": curve.to_dict(), "best_accuracy": best.to_dict(),
                                      "chosen": chosen.to_dict()})
        click.echo("json: {}".format(json_path))
    if plot_path:
        from toolkit.strategies.plots import plot_curves
        marks = [("best accuracy", best)] + ([] if chosen is best else [("chosen", chosen)])
        plot_curves(plot_path, [("{} -> {}".format(*names), curve)], marks,
                    title="{} -> {} ({})".format(names[0], names[1], score))
        click.echo("plot: {}".format(plot_path))
    if spec_path:
        _write_spec(spec_path, (first, second), names, 0, 1, chosen, score, post_check, memo)


def _saves_nothing(curve, chosen, names):
    """Why the pair at ``chosen`` saves nothing over the more accurate of its two models, or
    None (the rule of ``PoolEvaluation.saves_nothing`` for a fixed pair)."""
    if curve.cost_first > curve.cost_second:
        return "its first model {} is the more expensive one".format(names[0])
    better = 1 if curve.accuracy_second >= curve.accuracy_first else 0
    cost = curve.cost_second if better else curve.cost_first
    if chosen.expected_cost >= cost:
        return "its expected cost {:.4g} is not below the {:.4g} of the more accurate model " \
               "{}".format(chosen.expected_cost, cost, names[better])
    return None


def _guard(models, data, json_path, plot_path, spec_path, force):
    reads = data_reads(data)
    for path in models:
        reads += sidecar_reads(path, "the model " + path)
    guard([Output("--report", json_path, "JSON file"), Output("--plot", plot_path, "PNG image"),
           Output("--write-spec", spec_path, "deployment spec")], reads, force)


def _check_goal(rule, target_accuracy, tolerance, budget=None):
    if sum(v is not None for v in (target_accuracy, tolerance, budget)) > 1:
        raise InputError("give one of --target-accuracy, --tolerance and --budget")
    wants = {"near-best": "--tolerance", "target": "--target-accuracy", "budget": "--budget"}
    given = [name for name, value in (("--target-accuracy", target_accuracy),
                                      ("--tolerance", tolerance), ("--budget", budget))
             if value is not None]
    if rule is not None and given and wants.get(rule) != given[0]:
        raise InputError("--rule {} does not take {}".format(rule, given[0]))
    if rule in ("target", "budget") and not given:
        raise InputError("--rule {} needs {}".format(rule, wants[rule]))
    if budget is not None and not budget > 0.0:
        raise InputError("--budget must be a fraction > 0 of a model's cost, got {}".format(budget))
    if target_accuracy is not None and not 0.0 <= target_accuracy <= 1.0:
        raise InputError("--target-accuracy must be in [0, 1], got {}".format(target_accuracy))
    if tolerance is not None and not 0.0 <= tolerance <= 1.0:
        raise InputError("--tolerance must be in [0, 1], got {}".format(tolerance))


def _evaluate(models, data, cost, batch, threads, progress):
    """Open the models, run them on the validation data, measure or estimate their costs."""
    from calibration.datasets import load_dataset
    from toolkit.deployment import open_engine
    from toolkit.running import engine_images
    from toolkit.strategies import Single
    from toolkit.strategies.thresholds import latency_cost_ms, model_energy_cost
    if cost == "energy-model":
        not_onnx = [m for m in models if not m.lower().endswith(".onnx")]
        if not_onnx:
            raise InputError("--cost energy-model estimates .onnx files; {} is not one (use "
                             "--cost latency)".format(not_onnx[0]))
    names = _names(models)
    engines = []
    try:
        for path in models:
            engines.append(open_engine(path, threads=threads))
        shape = engines[0].input.shape[1:]
        dataset = load_dataset(data, shape_chw=shape if -1 not in shape else None)
        from calibration.datasets import check_labels_fit
        check_labels_fit(dataset.labels, Single(engines[0]).num_classes, data)  # before the work
        probs, costs = [], []
        bar = _bar(len(engines), progress)
        for path, engine in zip(models, engines):
            images = engine_images(engine, dataset.images)
            single = Single(engine)
            probs.append(np.concatenate([single.classify(images[i:i + batch]).probs
                                         for i in range(0, len(images), batch)]))
            if cost == "latency":
                costs.append(latency_cost_ms(engine, images, batch_size=batch))
                unit = "ms per sample (median, measured)"
            else:
                value, unit = model_energy_cost(path)
                costs.append(value)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
    finally:
        for engine in engines:
            engine.close()
    if dataset.labels is None:
        raise InputError("{} has no labels; choosing a pair needs labelled data".format(data))
    classes = {p.shape[1] for p in probs}
    if len(classes) != 1:
        raise InputError("the models disagree on the number of classes: {}".format(
            ", ".join("{} {}".format(n, p.shape[1]) for n, p in zip(names, probs))))
    check_labels_fit(dataset.labels, classes.pop(), data)
    return {"names": names, "probs": probs, "labels": dataset.labels, "costs": costs, "unit": unit,
            "data": dataset.name}


def _accuracies(pool):
    return [float(np.mean(np.argmax(p, axis=1) == pool["labels"])) for p in pool["probs"]]


def _names(models):
    names = []
    for path in models:
        base = os.path.splitext(os.path.basename(path))[0] or "model"
        name, k = base, 2
        while name in names:
            name, k = "{}_{}".format(base, k), k + 1
        names.append(name)
    return names


def _bar(total, enabled):
    if not enabled:
        return None
    from basics.lazy import lazy_import
    return lazy_import("tqdm", "progress bars").tqdm(total=total, unit="model", desc="evaluate",
                                                     leave=False)


def _plot(path, evaluation, candidate, choice):
    from toolkit.strategies.plots import plot_curves
    names = evaluation.names
    ranked = sorted(evaluation.candidates, key=lambda c: (-c.best.accuracy, c.best.expected_cost))
    shown = [candidate] + [c for c in ranked if c is not candidate][:3]
    curves = [("{} -> {}".format(names[c.first], names[c.second]), c.curve) for c in shown]
    plot_curves(path, curves, [("recommended", choice)],
                title="pairs on {} samples ({})".format(evaluation.samples, evaluation.score))


def _write_spec(spec_path, models, names, first, second, choice, score, post_check, memo):
    from toolkit.spec_writing import cascade_spec, write_spec
    data = cascade_spec(spec_path, models[first], models[second], choice.threshold,
                        score=score, post_check=post_check, memo=memo,
                        names=(names[first], names[second]))
    write_spec(spec_path, data)
    click.echo("spec: {} (toolkit run {} --data ...)".format(spec_path, spec_path))
