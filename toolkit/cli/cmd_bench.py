"""``toolkit bench``: latency, throughput and energy of an engine (or ONNX), or of a run of a
deployment spec."""
import json
import os

import click

from basics.errors import InputError
from toolkit.cli.cmd_run import duplicate_options
from toolkit.cli.options import (
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    batch_option,
    data_option,
    json_flag,
    power_options,
    progress_option,
    providers_option,
    threads_option,
)
from toolkit.cli.outputs import Output, guard, spec_reads
from toolkit.power.options import config_from_options

SPEC_SUFFIXES = (".yaml", ".yml")


@click.command("bench")
@click.argument("target", metavar="TARGET")
@batch_option(default=None,
              help="Samples per call [default: 1 for an engine, 32 for a deployment spec].")
@click.option("--iterations", default=200, show_default=True, type=POSITIVE_INT,
              help="Timed calls (engine targets).")
@click.option("--warmup", default=20, show_default=True, type=NON_NEGATIVE_INT,
              help="Untimed calls before timing (engine targets).")
@threads_option("ONNX Runtime intra-op threads (0: its default); a spec sets its own.")
@providers_option()
@data_option("Deployment specs: the data to run, e.g. digits:test, digits-hard, a .npz or an "
             "image folder.", required=False)
@duplicate_options
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed of the random batch / the duplicate shuffle.")
@power_options(default_source="auto")
@json_flag("Print the results as one JSON object.")
@progress_option()
def bench(target, batch, iterations, warmup, threads, providers, data, duplicate,
          duplicate_transform, seed, power_source, power_rate_hz, idle_s, power_sysfs_root,
          as_json, no_progress):
    """Measure latency (min/mean/median/p95/p99/max) and throughput of TARGET.

    TARGET is an engine file from `toolkit build` (with its .json sidecar), a plain .onnx (run on
    ONNX Runtime), or a deployment spec (.yaml/.yml) which is run on --data and reported per
    strategy. Engine timing feeds one random batch --warmup times, then --iterations timed calls,
    like trtexec's summary.

    Energy: with a power source (--power auto finds INA3221 rails on a Jetson, tegrastats, jtop,
    RAPL or NVML) the idle power is measured first (--idle-s), then exactly the timed calls (or
    the spec's timed run) form one window: total energy, average power, energy per inference
    (per sample) in total and above idle, and the source. When nothing can be measured the
    report says "not measured" (with each source's reason) and shows the analytical energy
    model's estimate per sample, labelled ESTIMATE. --power none: no energy.

    \b
    Examples:
      toolkit bench model.engine --batch 32 --iterations 500
      toolkit bench model.onnx --threads 1 --json
      toolkit bench model.engine --batch 32 --iterations 2000 --power ina3221 --idle-s 5
      toolkit bench deploy.yaml --data digits:test --duplicate 1.0
      toolkit bench deploy.yaml --data digits:test --power none
    """
    if not os.path.exists(target):
        raise InputError("no such file: {}".format(target))
    power = config_from_options(power_source, power_rate_hz, idle_s, power_sysfs_root)
    if target.lower().endswith(SPEC_SUFFIXES):
        reads, memo_file = spec_reads(target)
        guard([Output("the spec's memo file", memo_file, ".npz data file")], reads)
        _bench_spec(target, 32 if batch is None else batch, data, duplicate, duplicate_transform,
                    seed, as_json, not no_progress, power)
        return
    if data is not None or duplicate or duplicate_transform != "none":
        raise InputError("--data and --duplicate apply to deployment specs (.yaml), not engines")
    _bench_engine(target, 1 if batch is None else batch, iterations, warmup, threads, providers,
                  seed, as_json, not no_progress, power)


def _bench_engine(target, batch, iterations, warmup, threads, providers, seed, as_json, progress,
                  power):
    from engines.load import load_engine
    from toolkit.benchmarking import random_feeds, summary_lines

    with load_engine(target, threads=threads, providers=providers) as engine:
        feeds = random_feeds(engine, batch, seed=seed)
        engine.check_feeds(feeds)  # one clear error before idle and warm-up
        if power.source == "none":
            summary, energy, energy_lines = _timed(engine, feeds, batch, iterations, warmup,
                                                   progress), None, []
        else:
            from toolkit.power.meter import PowerMeter
            with PowerMeter(power) as meter:
                if meter.measuring:
                    meter.measure_idle()
                summary = _timed(engine, feeds, batch, iterations, warmup, progress, meter)
                energy, energy_lines = _engine_energy(meter, target)
        described = _describe(target, engine)
    summary["target"] = target
    summary.update(described)
    summary["energy"] = energy
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
        return
    click.echo("{}: {}".format(target, ", ".join(
        "{} {}".format(k, v) for k, v in sorted(described.items()) if v is not None)))
    for line in summary_lines(summary) + energy_lines:
        click.echo(line)


def _timed(engine, feeds, batch, iterations, warmup, progress, meter=None):
    """Untimed warm-up calls, then the timed calls (the meter's window ``bench`` when given)."""
    from basics.lazy import lazy_import
    from toolkit.benchmarking import bench_engine
    for _ in range(warmup):
        engine.infer(feeds)
    if progress:
        lazy_import("tqdm", "progress bars")  # imported now, not inside the window
    if meter is None:
        summary = bench_engine(engine, batch, iterations, 0, progress=progress, feeds=feeds)
    else:
        with meter.window("bench") as window:
            summary = bench_engine(engine, batch, iterations, 0, progress=progress, feeds=feeds)
            window.inferences = iterations * batch
    summary["warmup"] = warmup
    return summary


def _engine_energy(meter, target):
    """``(report dict, lines)``: measured, or not measured with the energy model's estimate."""
    from toolkit.energy_estimate import estimate_engine_file, measured_or_estimated
    return measured_or_estimated(meter, "bench", estimate_engine_file, target)


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


def _bench_spec(target, batch, data, duplicate, transform, seed, as_json, progress, power):
    from toolkit.deployment import load_spec
    if data is None:
        raise InputError("a deployment spec needs --data (e.g. --data digits:test)")
    from toolkit.cli.cmd_run import load_run_data, run_with_power
    with load_spec(target) as deployment:  # closes the engines and saves the memo file
        dataset, files = load_run_data(data, duplicate, transform, seed)
        report = run_with_power(deployment, dataset, files, batch, power, progress)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True))
        return
    for line in report.lines():
        click.echo(line)
