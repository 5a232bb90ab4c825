"""Shared options: typed ranges, and hidden aliases that keep an old spelling for one release."""
import click
import pytest
from click.testing import CliRunner

from toolkit.cli.options import batch_option, option, power_options


@click.command()
@batch_option(default=8, aliases=("--batch-size",))
@option("--report", "report_path", default=None, aliases=("--json",))
@power_options(idle=False, aliases=True)
def command(batch, report_path, power_source, power_rate_hz, power_sysfs_root):
    click.echo("{} {} {} {} {}".format(batch, report_path, power_source, power_rate_hz,
                                       power_sysfs_root))


def _run(*args):
    return CliRunner().invoke(command, list(args))


@pytest.mark.parametrize("args, out", [
    ((), "8 None auto 100.0 /"),
    (("--batch", "3", "--report", "r.json"), "3 r.json auto 100.0 /"),
    (("--batch-size", "3", "--json", "r.json"), "3 r.json auto 100.0 /"),
    (("--report", "r.json", "--batch-size", "3"), "3 r.json auto 100.0 /"),
    (("--source", "rapl", "--rate-hz", "5", "--sysfs-root", "/x"), "8 None rapl 5.0 /x"),
])
def test_old_spellings_set_the_same_parameter(args, out):
    result = _run(*args)
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == out
    old = [a for a in args if a in ("--batch-size", "--json", "--source", "--rate-hz",
                                     "--sysfs-root")]
    assert result.output.count("is deprecated, use --") == len(old)


@pytest.mark.parametrize("args", [("--batch", "2", "--batch-size", "3"),
                                  ("--batch-size", "3", "--batch", "2")])
def test_both_spellings_are_a_usage_error(args):
    result = _run(*args)
    assert result.exit_code == 2 and "give --batch or its old spelling --batch-size" in \
        result.output


def test_aliases_are_hidden_and_ranges_typed():
    help_text = _run("--help").output
    for old in ("--batch-size", "--json", "--source", "--rate-hz", "--sysfs-root"):
        assert old not in help_text
    result = _run("--batch", "0")
    assert result.exit_code == 2 and "0 is not in the range x>=1" in result.output
    assert _run("--batch-size", "0").exit_code == 2
