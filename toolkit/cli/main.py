"""Entry point: ``toolkit <command>``. Each command is imported only when it is run or asked for
``--help``, so the CLI starts fast and works without optional packages it does not need."""
import importlib
import importlib.util
import sys
import traceback

import click

from basics import __version__
from basics.errors import ToolkitError
from basics.signals import Terminated, install_termination_handlers

#: the exit code of an internal error (a bug); a user error exits with 1
INTERNAL_ERROR_EXIT_CODE = 2

# command name -> (module, attribute, one-line summary shown by `toolkit --help`)
COMMANDS = {
    "info": ("toolkit.cli.cmd_info", "info", "What this machine is and which backends it can use."),
    "export": ("toolkit.cli.cmd_export", "export", "Export a PyTorch model to ONNX (+ parity check)."),
    "build": ("toolkit.cli.cmd_build", "build", "Build an engine from ONNX (TensorRT or ONNX Runtime)."),
    "calibrate": ("toolkit.cli.cmd_calibrate", "calibrate", "INT8 calibration: cache or Q/DQ ONNX."),
    "bench": ("toolkit.cli.cmd_bench", "bench", "Latency/throughput/energy of an engine or a spec."),
    "run": ("toolkit.cli.cmd_run", "run", "Run a deployment spec on data; write predictions."),
    "pair": ("toolkit.cli.cmd_pair", "pair", "Complementary pairs: select a pair and threshold."),
    "train": ("toolkit.cli.cmd_train", "train", "Host-side recipes: train a model pool or CBNet."),
    "power": ("toolkit.cli.cmd_power", "power", "Show, record and plot the power rails."),
    "energy": ("toolkit.cli.cmd_energy", "energy", "Analytical per-layer energy model of an ONNX."),
    "prune": ("toolkit.cli.cmd_prune", "prune", "Energy-aware pruning of a PyTorch model."),
    "demo": ("toolkit.cli.cmd_demo", "demo", "The end-to-end demo on the bundled digits."),
    "triton": ("toolkit.cli.cmd_triton", "triton", "Serve a deployment from Triton Inference Server."),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx):
        return sorted(name for name in COMMANDS if _module_exists(COMMANDS[name][0]))

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module_name, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _module_exists(module_name):
    return importlib.util.find_spec(module_name) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="toolkit")
def cli():
    """Deploy CNNs on NVIDIA Jetson with TensorRT (or ONNX Runtime anywhere), and measure and cut
    the energy each inference costs.

    \b
    Typical flow:
      toolkit export export.models:small_cnn --weights w.pt --input-shape 1x1x8x8 -o m.onnx
      toolkit build m.onnx --precision fp16 -o m.engine
      toolkit bench m.engine --batch 8
    """


def main(argv=None):
    """Run the CLI. Exit codes: 0 done; 1 a user error (a :class:`ToolkitError`: one line on
    stderr); 2 click's usage errors (one line too) and internal errors (any other exception: a
    bug, reported with its traceback). SIGTERM and SIGHUP unwind like Ctrl-C (files being written are completed
    or removed, never left cut) and exit with 128 + the signal's number."""
    restore = install_termination_handlers()
    try:
        return _run(argv)
    finally:
        restore()


def _run(argv):
    try:
        cli.main(args=argv, prog_name="toolkit", standalone_mode=False)
    except ToolkitError as exc:
        click.echo("error: {}".format(exc), err=True)
        return 1
    except Terminated as exc:
        click.echo(str(exc), err=True)
        return 128 + exc.signum
    except click.exceptions.Abort as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, Terminated):
            click.echo(str(cause), err=True)
            return 128 + cause.signum
        click.echo("aborted", err=True)
        return 1
    except click.UsageError as exc:  # one line too; exit code 2 as click's
        command = exc.ctx.command_path if exc.ctx is not None else "toolkit"
        click.echo("error: {} (see '{} --help')".format(exc.format_message(), command), err=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Exception:  # noqa: BLE001 - anything else escaping a command is a bug
        click.echo("internal error (this is a bug in the toolkit; please report it with the "
                   "traceback below):\n{}".format(traceback.format_exc().rstrip()), err=True)
        return INTERNAL_ERROR_EXIT_CODE
    return 0


if __name__ == "__main__":
    sys.exit(main())
