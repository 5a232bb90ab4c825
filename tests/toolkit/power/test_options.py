import click
from click.testing import CliRunner

from toolkit.cli.options import power_options
from toolkit.power.options import config_from_options


@click.command()
@power_options(default_source="none")
def probe(power_source, power_rate_hz, idle_s, power_sysfs_root):
    config = config_from_options(power_source, power_rate_hz, idle_s, power_sysfs_root)
    click.echo("{} {:g} {:g} {}".format(config.source, config.rate_hz, config.idle_s,
                                        config.sysfs_root))


def test_power_options_build_a_config():
    runner = CliRunner()
    assert runner.invoke(probe, []).output == "none 100 2 /\n"
    result = runner.invoke(probe, ["--power", "rapl", "--power-rate-hz", "20", "--idle-s", "0.5",
                                   "--power-sysfs-root", "/tmp"])
    assert result.output == "rapl 20 0.5 /tmp\n"
    assert runner.invoke(probe, ["--power", "battery"]).exit_code == 2
    result = runner.invoke(probe, ["--power-rate-hz", "0"])
    assert result.exit_code == 1 and "sampling rate must be between" in str(result.exception)
