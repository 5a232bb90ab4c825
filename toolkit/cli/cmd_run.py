"""``toolkit run``: run a deployment spec on data; write predictions and a report."""
import click

from basics.errors import InputError
from toolkit.cli.options import (
    FRACTION,
    batch_option,
    data_option,
    force_option,
    option,
    power_options,
    progress_option,
)
from toolkit.cli.outputs import Output, data_reads, guard, spec_reads
from toolkit.power.options import config_from_options


def duplicate_options(command):
    """The paper's duplicated-input protocol, shared by ``toolkit run`` and ``toolkit bench``:
    ``--duplicate`` and ``--duplicate-transform`` (see :func:`load_run_data`)."""
    command = click.option(
        "--duplicate-transform", default="none", show_default=True,
        type=click.Choice(["none", "rotate", "flip"]),
        help="Copies as they are, rotated by 90 degrees, or mirrored left-right.")(command)
    return click.option(
        "--duplicate", default=0.0, show_default=True, type=FRACTION,
        help="Append a shuffled copy of this share of the samples (the paper's protocol: 1.0 "
             "shows every sample twice).")(command)


@click.command("run")
@click.argument("spec", metavar="SPEC.yaml")
@data_option("An image folder (one sub-folder per class; files are hashed before decoding), "
             "digits, digits16, digits-hard, a .npz/.npy file or a split file written by toolkit "
             "train, with :train, :val or :test for a part (the same 60/20/20 split for every "
             "source; split.json:test).")
@duplicate_options
@batch_option()
@click.option("-o", "--output", default=None, metavar="PREDICTIONS.csv",
              help="Write the predictions: index, source (image folders), label, class name, "
                   "confidence, true label.")
@option("--report", "report_path", default=None, metavar="REPORT.json", aliases=("--json",),
        help="Write the report as JSON.")
@power_options(default_source="auto")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the duplicate shuffle.")
@progress_option()
@force_option()
@click.option("--triton", "triton_url", default=None, metavar="URL",
              help="Classify on a Triton server instead (http://HOST:8000 or grpc://HOST:8001; "
                   "`toolkit triton export`): SPEC is then the model's name there.")
def run(spec, data, duplicate, duplicate_transform, batch, output, report_path, power_source,
        power_rate_hz, idle_s, power_sysfs_root, seed, no_progress, force, triton_url):
    """Run the deployment SPEC.yaml (a YAML file naming engines, strategy, memo) on --data, print a
    report (accuracy, latency per batch and per sample, throughput, handoff rate, memo hit rate,
    energy) and optionally write the predictions as CSV.

    Energy: with a power source (--power auto finds INA3221 rails on a Jetson, tegrastats, jtop,
    RAPL or NVML) the idle power is measured first (--idle-s), then the timed run is one window:
    total energy, average power, energy per inference in total and above idle, and the source.
    When nothing can be measured the report says "not measured" (with each source's reason) and
    shows the analytical energy model's estimate per sample instead, labelled ESTIMATE (for a
    cascade E(A) + handoff rate x E(B), with a memo x (1 - hit rate)). --power none: no energy.

    \b
    Examples:
      toolkit run deploy.yaml --data digits:test -o predictions.csv
      toolkit run deploy.yaml --data digits:test --duplicate 1.0 --report report.json
      toolkit run deploy.yaml --data images/ --duplicate 1.0 --duplicate-transform rotate
      toolkit run deploy.yaml --data digits:test --power ina3221 --idle-s 5
      toolkit run deploy.yaml --data digits:test --power none
      toolkit run --triton http://127.0.0.1:8000 deploy --data digits:test -o predictions.csv
    """
    from toolkit.deployment import load_spec
    reads, memo_file = ([], None) if triton_url else spec_reads(spec)
    guard([Output("-o", output, "CSV file"), Output("--report", report_path, "JSON file"),
           Output("the spec's memo file", memo_file, ".npz data file")],
          reads + data_reads(data), force)
    power = config_from_options(power_source, power_rate_hz, idle_s, power_sysfs_root)
    if triton_url:
        report = _run_on_triton(triton_url, spec, data, duplicate, duplicate_transform, seed,
                                batch, not no_progress)
    else:
        with load_spec(spec) as deployment:
            dataset, files = load_run_data(data, duplicate, duplicate_transform, seed)
            report = run_with_power(deployment, dataset, files, batch, power, not no_progress)
    for line in report.lines():
        click.echo(line)
    if output:
        report.write_predictions(output)
        click.echo("predictions: {}".format(output))
    if report_path:
        report.write_json(report_path)
        click.echo("report: {}".format(report_path))


def _run_on_triton(url, model, data, duplicate, transform, seed, batch, progress):
    """``toolkit run --triton``: the same report and predictions from a Triton server."""
    from toolkit.triton.client import run_remote
    dataset, files = load_run_data(data, duplicate, transform, seed)
    if files is not None:
        raise InputError("--triton sends image arrays: give digits or a .npz, not an image folder")
    return run_remote(url, model, dataset, batch, progress)


def load_run_data(data, duplicate=0.0, transform="none", seed=0):
    """``(Dataset, None)`` for bundled digits / .npz / .npy, ``(None, FileSet)`` for an image
    folder (or a split of one: ``images/:test``, ``split.json:test``)."""
    from calibration.datasets import load_dataset, resolve_data
    from toolkit import deploy
    ref = resolve_data(data)
    if ref.kind == "folder":
        files = deploy.FileSet.from_folder(ref.source, ref)
        return None, deploy.duplicate(files, duplicate, transform, seed)
    return deploy.duplicate(load_dataset(data), duplicate, transform, seed), None


def run_with_power(deployment, dataset, files, batch, power, progress):
    """Run the deployment (``toolkit run``, ``toolkit bench SPEC``) with the energy report of
    ``power`` (a PowerConfig): idle first, the timed run as window ``run``; the analytical
    estimate when the run was not measured. ``source none``: no energy at all."""
    from toolkit.running import run_deployment
    if power.source == "none":
        return run_deployment(deployment, dataset, batch_size=batch, files=files,
                              progress=progress)
    from toolkit.power.meter import PowerMeter
    with PowerMeter(power) as meter:
        if meter.measuring:
            meter.measure_idle()
        report = run_deployment(deployment, dataset, batch_size=batch, meter=meter, files=files,
                                progress=progress)
        from toolkit.energy_estimate import estimate_deployment, measured_or_estimated
        report.energy, report.energy_lines = measured_or_estimated(
            meter, "run", estimate_deployment, deployment)
    return report

