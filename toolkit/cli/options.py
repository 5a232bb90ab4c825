"""Shared click options: one spelling, one meaning and one typed range for each option that
several commands take (batch, threads, providers, data, power, progress, --force), and hidden
aliases that keep an old spelling working for one release.

Library code validates values without naming flags; the ranges here give the CLI's one-line
usage errors (exit 2) before any work starts.
"""
import click

from toolkit.power.config import SOURCES

POSITIVE_INT = click.IntRange(min=1)
NON_NEGATIVE_INT = click.IntRange(min=0)
POSITIVE_FLOAT = click.FloatRange(min=0.0, min_open=True)
NON_NEGATIVE_FLOAT = click.FloatRange(min=0.0)
FRACTION = click.FloatRange(min=0.0, max=1.0)


def _source(ctx, name):
    source = ctx.get_parameter_source(name)
    return getattr(source, "name", str(source))


def option(*decls, **attrs):
    """``click.option`` plus ``aliases=("--old",)``: hidden, deprecated spellings that set the same
    parameter (a note on stderr says which spelling to use; giving both is a usage error)."""
    aliases = tuple(attrs.pop("aliases", ()))
    if not aliases:
        return click.option(*decls, **attrs)
    if "callback" in attrs:
        raise TypeError("an option with aliases takes no callback")
    holder = {}

    def main_callback(ctx, param, value):
        key = "alias:" + param.name
        if key in ctx.meta:
            if _source(ctx, param.name) == "COMMANDLINE":
                raise click.UsageError("give {} or its old spelling {}, not both".format(
                    param.opts[0], ctx.meta[key][0]), ctx)
            value = ctx.meta[key][1]
        return value

    attrs["callback"] = main_callback
    main = click.option(*decls, **attrs)

    def alias_decorator(alias):
        alias_attrs = {k: v for k, v in attrs.items()
                       if k in ("type", "is_flag", "flag_value", "multiple", "metavar")}

        def alias_callback(ctx, param, value):
            if _source(ctx, param.name) != "COMMANDLINE":
                return
            target = holder["name"]
            click.echo("note: {} is deprecated, use {} (the old spelling goes in the next "
                       "release)".format(alias, holder["opt"]), err=True)
            if target in ctx.params:  # the main option was processed first
                if _source(ctx, target) == "COMMANDLINE":
                    raise click.UsageError("give {} or its old spelling {}, not both".format(
                        holder["opt"], alias), ctx)
                ctx.params[target] = value
            else:
                ctx.meta["alias:" + target] = (alias, value)

        name = "_alias_" + alias.lstrip("-").replace("-", "_")
        return click.option(alias, name, hidden=True, expose_value=False, default=None,
                            callback=alias_callback, **alias_attrs)

    def decorate(function):
        function = main(function)
        param = function.__click_params__[-1]
        holder["name"], holder["opt"] = param.name, param.opts[0]
        for alias in aliases:
            function = alias_decorator(alias)(function)
        return function
    return decorate


def _apply(function, options):
    for item in reversed(options):
        function = item(function)
    return function


def batch_option(default=32, help="Samples per batch.", aliases=()):
    """``--batch N`` (N >= 1)."""
    return option("--batch", default=default, show_default=default is not None, type=POSITIVE_INT,
                  help=help, aliases=aliases)


def workspace_option(help="TensorRT builder workspace (scratch memory for tactics), in MiB."):
    """``--workspace-mb N`` (N >= 1, default 256)."""
    return click.option("--workspace-mb", default=256, show_default=True, type=POSITIVE_INT,
                        help=help)


def threads_option(help="ONNX Runtime intra-op threads (0: its default)."):
    """``--threads N`` (N >= 0; 0: the runtime's default)."""
    return click.option("--threads", default=0, show_default=True, type=NON_NEGATIVE_INT, help=help)


def providers_option():
    """``--providers`` (ONNX Runtime execution providers, comma separated)."""
    return click.option("--providers", default=None,
                        help="ONNX Runtime providers, comma separated: cpu, cuda, tensorrt or auto "
                             "[default: cpu].")


def data_option(help, required=True, default=None):
    """``--data NAME|FILE.npz|FOLDER``."""
    return click.option("--data", required=required and default is None, default=default,
                        show_default=default is not None, metavar="DATA", help=help)


def progress_option():
    """``--no-progress``."""
    return click.option("--no-progress", is_flag=True, help="No progress bars on stderr.")


def int8_gate_options(scope):
    """``--eval-data``, ``--max-accuracy-drop``, ``--auto-fallback``: the INT8 accuracy gate
    (docs/calibration.md); ``scope`` starts their help (when they apply, e.g. ``"int8"``)."""
    return lambda function: _apply(function, [
        click.option("--eval-data", default=None,
                     help="{}: labelled held-out data (e.g. digits:test): report INT8 and fp32 "
                          "top-1 accuracy and their agreement; fail past --max-accuracy-drop."
                          .format(scope)),
        click.option("--max-accuracy-drop", default=None, type=float,
                     help="{}: the most top-1 accuracy INT8 may lose on --eval-data, in points "
                          "[default: 1.0].".format(scope)),
        click.option("--auto-fallback", is_flag=True,
                     help="{}: when the accuracy gate fails, measure each layer's sensitivity and "
                          "keep the most sensitive layers in floating point until it passes."
                          .format(scope)),
    ])


def force_option():
    """``--force``: overwrite an existing file of another kind (a model, a spec, weights ...)."""
    return click.option("--force", is_flag=True,
                        help="Overwrite an existing output of another kind (an ONNX model, an "
                             "engine, a spec, weights, .npz, .py). Never allows writing over a "
                             "file this command reads.")


def json_flag(help="Print the result as JSON on stdout instead of text."):
    """``--json``: a flag everywhere (files are written with ``--report PATH``)."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def power_options(default_source="auto", idle=True, aliases=False):
    """``--power SOURCE``, ``--power-rate-hz``, ``--power-sysfs-root`` (and ``--idle-s`` with
    ``idle``); ``aliases``: also ``toolkit power``'s old ``--source``, ``--rate-hz`` and
    ``--sysfs-root``."""
    old = (lambda name: (name,)) if aliases else (lambda name: ())
    options = [
        option("--power", "power_source", type=click.Choice(SOURCES if idle else
                                                            tuple(s for s in SOURCES
                                                                  if s != "none")),
               default=default_source, show_default=True, aliases=old("--source"),
               help="Power source: auto = the first that works (INA3221, tegrastats, jtop, RAPL, "
                    "NVML){}.".format("; none = do not measure" if idle else "")),
        option("--power-rate-hz", type=float, default=100.0, show_default=True,
               aliases=old("--rate-hz"), help="Power samples per second (tegrastats: at most 20)."),
    ]
    if idle:
        options.append(click.option(
            "--idle-s", type=NON_NEGATIVE_FLOAT, default=2.0, show_default=True,
            help="Seconds of idle power measured before the run (the baseline subtracted for "
                 "energy above idle)."))
    options.append(option("--power-sysfs-root", default="/", show_default=True, metavar="DIR",
                          aliases=old("--sysfs-root"),
                          help="Root under which /sys and /proc are read for power sensors."))
    return lambda function: _apply(function, options)
