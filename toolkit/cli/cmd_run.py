"""``toolkit run``: run a deployment spec on data; write predictions and a report."""
import os

import click

from toolkit.errors import InputError


@click.command("run")
@click.argument("spec", metavar="SPEC.yaml")
@click.option("--data", required=True,
              help="digits[:train|val|test], digits16, digits-hard, a .npz file, or an image "
                   "folder (one sub-folder per class; files are hashed before decoding).")
@click.option("--duplicate", default=0.0, show_default=True, type=float,
              help="Append a shuffled copy of this share of the samples (the paper's protocol: "
                   "1.0 shows every sample twice).")
@click.option("--duplicate-transform", default="none", show_default=True,
              type=click.Choice(["none", "rotate", "flip"]),
              help="Copies as they are, rotated by 90 degrees, or mirrored left-right.")
@click.option("--batch", default=32, show_default=True, type=int, help="Samples per batch.")
@click.option("-o", "--output", default=None, metavar="PREDICTIONS.csv",
              help="Write the predictions: index, source (image folders), label, class name, "
                   "confidence, true label.")
@click.option("--json", "json_path", default=None, metavar="REPORT.json",
              help="Write the report as JSON.")
@click.option("--power", default="none", show_default=True,
              type=click.Choice(["none", "auto", "ina3221", "tegrastats", "jtop", "rapl", "nvml"]),
              help="Measure energy during the run (idle baseline first, then per inference).")
@click.option("--idle-s", default=2.0, show_default=True, type=float,
              help="With --power: seconds of idle baseline measured before the run.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the duplicate shuffle.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
def run(spec, data, duplicate, duplicate_transform, batch, output, json_path, power, idle_s, seed,
        no_progress):
    """Run the deployment SPEC.yaml (a YAML file naming engines, strategy, memo) on --data, print a
    report (accuracy, latency per batch and per sample, throughput, handoff rate, memo hit rate,
    energy with --power) and optionally write the predictions as CSV.

    \b
    Examples:
      toolkit run deploy.yaml --data digits:test -o predictions.csv
      toolkit run deploy.yaml --data digits:test --duplicate 1.0 --json report.json
      toolkit run deploy.yaml --data images/ --duplicate 1.0 --duplicate-transform rotate
      toolkit run deploy.yaml --data digits:test --power auto --idle-s 5
    """
    from toolkit import deploy
    if batch < 1:
        raise InputError("--batch must be at least 1, got {}".format(batch))
    with deploy.load_spec(spec) as deployment:
        dataset, files = load_run_data(data, duplicate, duplicate_transform, seed)
        report = _run(deployment, dataset, files, batch, power, idle_s, not no_progress)
    for line in report.lines():
        click.echo(line)
    if output:
        report.write_predictions(output)
        click.echo("predictions: {}".format(output))
    if json_path:
        report.write_json(json_path)
        click.echo("report: {}".format(json_path))


def load_run_data(data, duplicate=0.0, transform="none", seed=0):
    """``(Dataset, None)`` for bundled digits / .npz, ``(None, FileSet)`` for an image folder."""
    from toolkit import deploy
    if os.path.isdir(data):
        return None, deploy.duplicate(deploy.FileSet.from_folder(data), duplicate, transform, seed)
    from calibration.datasets import load_dataset
    return deploy.duplicate(load_dataset(data), duplicate, transform, seed), None


def _run(deployment, dataset, files, batch, power, idle_s, progress):
    from toolkit import deploy
    if power == "none":
        return deploy.run_deployment(deployment, dataset, batch_size=batch, files=files,
                                     progress=progress)
    from toolkit.power.config import PowerConfig
    from toolkit.power.meter import PowerMeter
    with PowerMeter(PowerConfig(source=power, idle_s=idle_s)) as meter:
        meter.measure_idle(idle_s)
        return deploy.run_deployment(deployment, dataset, batch_size=batch, meter=meter,
                                     files=files, progress=progress)
