"""``toolkit power``: show the power rails live, record a trace, plot it."""
import os
import shutil
import sys
import time

import click

from basics.errors import InputError, ToolkitError
from toolkit.cli.options import power_options
from toolkit.cli.outputs import Output, Read, guard



@click.command("power")
@power_options(default_source="auto", idle=False, aliases=True)
@click.option("--duration", type=float, default=None, metavar="S",
              help="Stop after S seconds (default: run until Ctrl-C, SIGTERM or SIGHUP).")
@click.option("--record", "record_path", type=click.Path(dir_okay=False), default=None,
              metavar="CSV", help="Write the samples to this CSV file as they come (flushed "
              "every second: a recording killed with SIGKILL is readable up to then).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              metavar="PNG", help="Draw the trace (this run's, or --from's) to this PNG file.")
@click.option("--from", "from_path", type=click.Path(dir_okay=False), default=None,
              metavar="CSV", help="Plot an earlier recording instead of sampling (with --plot).")
@click.option("--refresh-s", type=float, default=0.5, show_default=True,
              help="Seconds between display updates.")
@click.option("--tegrastats-cmd", default="tegrastats", show_default=True,
              help="tegrastats command ('--interval MS' is appended).")
@click.option("--list", "list_sources", is_flag=True,
              help="Only say which sources work here, and why the others do not.")
def power(power_source, power_rate_hz, power_sysfs_root, duration, record_path, plot_path, from_path, refresh_s,
          tegrastats_cmd, list_sources):
    """Show the power rails live (voltage, current, power, running energy), record a trace,
    plot it.

    On a Jetson the INA3221 rails are read from sysfs (JetPack 4 iio or JetPack 5/6 hwmon
    driver); otherwise tegrastats, jetson-stats (jtop), RAPL (Intel/AMD CPUs) or NVML (desktop
    NVIDIA GPUs). The total is the board's input rail, or the sum of its rails where there is
    none (said so). The display refreshes in place on a terminal and prints plain lines
    otherwise. Ctrl-C, SIGTERM and SIGHUP stop it cleanly (the recording gets its end line),
    also when started in the background by a script.

    \b
    Examples:
      toolkit power                                   # live view until Ctrl-C
      toolkit power --duration 30 --record trace.csv --plot trace.png
      toolkit power --plot trace.png --from trace.csv
      toolkit power --list                            # which sources work here
      toolkit power --power rapl --power-rate-hz 20   # a PC's CPU package energy
    """
    from toolkit.power.config import PowerConfig

    source, sysfs_root, rate_hz = power_source, power_sysfs_root, power_rate_hz
    guard([Output("--record", record_path, "CSV file"), Output("--plot", plot_path, "PNG image")],
          [Read("the --from recording", from_path)])
    if from_path is not None:
        if plot_path is None:
            raise InputError("--from reads a recording to plot: give --plot PNG as well")
        if record_path is not None or duration is not None:
            raise InputError("--from plots an existing recording: it cannot be combined with "
                             "--record or --duration")
        from toolkit.power.tracefile import plot_trace, read_trace_csv
        trace, meta = read_trace_csv(from_path)
        plot_trace(plot_path, trace, meta)
        click.echo("plotted {} samples of {} to {}".format(len(trace), from_path, plot_path))
        return
    if duration is not None and duration <= 0:
        raise InputError("--duration must be positive, got {:g}".format(duration))
    if refresh_s <= 0:
        raise InputError("--refresh-s must be positive, got {:g}".format(refresh_s))
    config = PowerConfig(source=source, sysfs_root=sysfs_root, rate_hz=rate_hz,
                         tegrastats_cmd=tegrastats_cmd, voltage_current=True)
    if list_sources:
        _list(config)
        return
    _live(config, duration, refresh_s, record_path, plot_path)


def _list(config):
    from toolkit.power.config import PowerConfig
    from toolkit.power.sources import AUTO_ORDER, find_source
    names = AUTO_ORDER if config.source == "auto" else (config.source,)
    for name in names:
        one = PowerConfig(source=name, sysfs_root=config.sysfs_root, rate_hz=config.rate_hz,
                          tegrastats_cmd=config.tegrastats_cmd)
        try:
            found, _ = find_source(one)
            click.echo("{:<11} works: {} (total = {})".format(
                name, found.description, found.policy.label))
        except ToolkitError as exc:
            click.echo("{:<11} no: {}".format(name, exc))


RECORD_FLUSH_S = 1.0  # a recording is flushed to its file at least this often


def _live(config, duration, refresh_s, record_path, plot_path):
    from toolkit.power.meter import PowerMeter
    from toolkit.power.sources import find_source

    source, reasons = find_source(config)
    if source is None:
        raise InputError("no power source works here: " + "; ".join(
            "{}: {}".format(k, v) for k, v in reasons.items()))
    out = sys.stdout
    tty = out.isatty()
    width = shutil.get_terminal_size((120, 24)).columns - 1 if tty else None
    meter = PowerMeter(config, source=source)
    writer = None
    if record_path is not None:
        from toolkit.power.tracefile import TraceWriter
        try:
            writer = TraceWriter(record_path, source.columns, source.info())
        except (IOError, OSError) as exc:
            raise InputError("cannot write the recording {}: {}".format(
                record_path, exc.strerror or exc)) from None
    tick_s = min(refresh_s, RECORD_FLUSH_S) if writer is not None else refresh_s
    shown = 0
    stopped = None  # why the loop ended early: "interrupted", "terminated by SIGTERM", ...
    try:
        with meter:
            start = meter.t0
            next_show = start
            try:
                while True:
                    now = time.monotonic()
                    left = None if duration is None else start + duration - now
                    if left is not None and left <= 0:
                        break
                    time.sleep(tick_s if left is None else min(tick_s, max(0.0, left)))
                    meter.fetch()
                    if writer is not None:
                        writer.write(meter.trace)
                    if meter.sampler.error:
                        break
                    if time.monotonic() < next_show:
                        continue
                    next_show += refresh_s
                    block = _block(meter, source)
                    if tty and shown:
                        out.write("\x1b[{}F".format(shown))  # back to the block's first line
                    for line in block:
                        out.write(line[:width] + "\x1b[K\n" if tty else line + "\n")
                    out.flush()
                    shown = len(block)
            except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (basics.signals)
                stopped = str(exc) if str(exc) else "interrupted"
        if writer is not None:
            writer.write(meter.trace)  # the samples collected when the sampler stopped
    except BaseException as exc:
        if writer is not None:
            writer.close(stopped or "failed: {}".format(str(exc) or type(exc).__name__))
            if not writer.rows:  # nothing recorded: no file that looks like a recording
                os.remove(record_path)
        raise
    if writer is not None:
        writer.close(stopped or ("sampler died: " + meter.sampler.error if meter.sampler.error
                                 else "completed"))
    trace = meter.trace
    for line in _summary(meter, source, stopped):
        click.echo(line)
    if writer is not None:
        click.echo("recorded {} samples to {}".format(writer.rows, record_path))
    if plot_path is not None:
        from toolkit.power.tracefile import plot_trace
        plot_trace(plot_path, trace, source.info())
        click.echo("plotted the trace to {}".format(plot_path))
    if meter.sampler.error:
        raise ToolkitError("power sampling stopped early: {}".format(meter.sampler.error))


def _fmt(value, digits=0):
    return "-" if value is None else "{:.{}f}".format(value, digits)


def _energies(meter):
    trace = meter.trace
    if len(trace) < 2:
        return {}
    first, last = trace.t[0], trace.t[-1]
    return {rail: trace.energy_mj(rail, first, last) for rail in trace.rails}


def _block(meter, source):
    trace = meter.trace
    policy = source.policy
    span = float(trace.t[-1] - trace.t[0]) if len(trace) > 1 else 0.0
    energies = _energies(meter)
    lines = ["{}  |  t = {:.1f} s, {} samples ({:.1f} Hz)  |  total = {}".format(
        source.kind, span, len(trace), (len(trace) - 1) / span if span > 0 else 0.0,
        policy.label),
        "{:<20} {:>9} {:>9} {:>10} {:>12}".format("rail", "mV", "mA", "mW", "energy mJ")]
    total_mw = 0.0
    for rail in trace.rails:
        power = trace.latest(rail, "power_mw")
        if rail in policy.total_rails and power is not None:
            total_mw += power
        mark = "*" if rail in policy.total_rails else " "
        lines.append("{:<20} {:>9} {:>9} {:>10} {:>12}".format(
            (rail + mark)[:20], _fmt(trace.latest(rail, "voltage_mv")),
            _fmt(trace.latest(rail, "current_ma")), _fmt(power, 1),
            _fmt(energies.get(rail), 1)))
    total_mj = sum(energies[r] for r in policy.total_rails if r in energies) if energies else None
    lines.append("{:<20} {:>9} {:>9} {:>10} {:>12}".format(
        "TOTAL", "", "", _fmt(total_mw, 1), _fmt(total_mj, 1)))
    return lines


def _summary(meter, source, stopped):
    trace = meter.trace
    policy = source.policy
    lines = []
    if len(trace) < 2:
        lines.append("{} sample(s): too few to integrate".format(len(trace)))
        return lines
    span = float(trace.t[-1] - trace.t[0])
    energies = _energies(meter)
    total = sum(energies[r] for r in policy.total_rails)
    lines.append("{}{:.2f} s, {} samples ({:.1f} Hz) from {}".format(
        "{}: stopped after ".format(stopped) if stopped else "", span, len(trace), (len(trace) - 1) / span,
        source.description))
    lines.append("total ({}): {:.1f} mJ, {:.1f} mW average".format(
        policy.label, total, total / span))
    for rail in trace.rails:
        lines.append("  {:<20} {:>12.1f} mJ {:>10.1f} mW".format(
            rail, energies[rail], energies[rail] / span))
    if policy.note:
        lines.append("note: " + policy.note)
    return lines


if __name__ == "__main__":  # pragma: no cover
    sys.exit(power())
