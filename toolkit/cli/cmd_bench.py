"""``toolkit bench``: latency and throughput of an engine (or ONNX), or a run of a deployment spec."""
import json
import os

import click

from toolkit.errors import InputError

SPEC_SUFFIXES = (".yaml", ".yml")


@click.command("bench")
@click.argument("target", metavar="TARGET")
@click.option("--batch", type=int, default=None,
              help="Samples per call [default: 1 for an engine, 32 for a deployment spec].")
@click.option("--iterations", default=200, show_default=True, type=int,
              help="Timed calls (engine targets).")
@click.option("--warmup", default=20, show_default=True, type=int,
              help="Untimed calls before timing (engine targets).")
@click.option("--threads", default=0, show_default=True, type=int,
              help="ONNX Runtime intra-op threads (0: its default); a spec sets its own.")
@click.option("--providers", default=None,
              help="ONNX Runtime providers, comma separated: cpu, cuda, tensorrt or auto "
                   "[default: cpu].")
@click.option("--data", default=None,
              help="Deployment specs: the data to run, e.g. digits:test, digits-hard, a .npz or an "
                   "image folder.")
@click.option("--duplicate", default=0.0, show_default=True, type=float,
              help="Deployment specs: share of the samples shown a second time (appended in "
                   "shuffled order); 1.0 shows every sample twice (what memoization gains from).")
@click.option("--duplicate-transform", default="none", show_default=True,
              type=click.Choice(["none", "rotate", "flip"]),
              help="Deployment specs: how the repeated samples are changed (rotate 90 degrees, flip "
                   "left-right).")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed of the random batch / the duplicate shuffle.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
def bench(target, batch, iterations, warmup, threads, providers, data, duplicate,
          duplicate_transform, seed, as_json, no_progress):
    """Measure latency (min/mean/median/p95/p99/max) and throughput of TARGET.

    TARGET is an engine file from `toolkit build` (with its .json sidecar), a plain .onnx (run on
    ONNX Runtime), or a deployment spec (.yaml/.yml) which is run on --data and reported per
    strategy. Engine timing feeds one random batch --warmup times, then --iterations timed calls,
    like trtexec's summary.

    \b
    Examples:
      toolkit bench model.engine --batch 32 --iterations 500
      toolkit bench model.onnx --threads 1 --json
      toolkit bench deploy.yaml --data digits:test --duplicate 1.0
    """
    if not os.path.exists(target):
        raise InputError("no such file: {}".format(target))
    if target.lower().endswith(SPEC_SUFFIXES):
        _bench_spec(target, 32 if batch is None else batch, data, duplicate, duplicate_transform,
                    seed, as_json, not no_progress)
        return
    if data is not None or duplicate or duplicate_transform != "none":
        raise InputError("--data and --duplicate apply to deployment specs (.yaml), not engines")
    _bench_engine(target, 1 if batch is None else batch, iterations, warmup, threads, providers,
                  seed, as_json, not no_progress)


def _bench_engine(target, batch, iterations, warmup, threads, providers, seed, as_json, progress):
    from engines.load import load_engine
    from toolkit.benchmarking import bench_engine, random_feeds, summary_lines

    with load_engine(target, threads=threads, providers=providers) as engine:
        feeds = random_feeds(engine, batch, seed=seed)
        summary = bench_engine(engine, batch, iterations, warmup, progress=progress, feeds=feeds)
        described = _describe(target, engine)
    summary["target"] = target
    summary.update(described)
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
        return
    click.echo("{}: {}".format(target, ", ".join(
        "{} {}".format(k, v) for k, v in sorted(described.items()) if v is not None)))
    for line in summary_lines(summary):
        click.echo(line)


def _describe(target, engine):
    from engines.engine_file import read_sidecar
    providers = getattr(engine, "providers", None)
    facts = {"providers": ",".join(providers) if providers else None,
             "threads": getattr(engine, "threads", None), "max_batch": engine.max_batch}
    if target.lower().endswith(".onnx"):
        facts["backend"] = "onnxruntime (plain ONNX)"
    else:
        sidecar = read_sidecar(target)
        facts["backend"] = sidecar.backend
        facts["precision"] = sidecar.precision
    return facts


def _bench_spec(target, batch, data, duplicate, transform, seed, as_json, progress):
    from toolkit import deploy
    if data is None:
        raise InputError("a deployment spec needs --data (e.g. --data digits:test)")
    if batch < 1:
        raise InputError("--batch must be at least 1, got {}".format(batch))
    from toolkit.cli.cmd_run import load_run_data
    with deploy.load_spec(target) as deployment:  # closes the engines and saves the memo file
        dataset, files = load_run_data(data, duplicate, transform, seed)
        report = deploy.run_deployment(deployment, dataset, batch_size=batch, files=files,
                                       progress=progress)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True))
        return
    for line in report.lines():
        click.echo(line)
