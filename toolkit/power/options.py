"""Click options that let any command measure energy (``toolkit bench``, ``toolkit run``).

    @click.command()
    @power_options(default_source="auto")
    def bench(..., power_source, power_rate_hz, idle_s, power_sysfs_root):
        config = config_from_options(power_source, power_rate_hz, idle_s, power_sysfs_root)
        with PowerMeter(config) as meter: ...
"""
import click

from toolkit.power.config import SOURCES, PowerConfig


def power_options(default_source="auto"):
    """Decorator adding ``--power``, ``--power-rate-hz``, ``--idle-s``, ``--power-sysfs-root``."""
    options = [
        click.option("--power", "power_source", type=click.Choice(SOURCES),
                     default=default_source, show_default=True,
                     help="Measure energy with this power source: auto = the first that works "
                          "(INA3221, tegrastats, jtop, RAPL, NVML); none = do not measure."),
        click.option("--power-rate-hz", type=float, default=100.0, show_default=True,
                     help="Power samples per second."),
        click.option("--idle-s", type=float, default=2.0, show_default=True,
                     help="Seconds of idle power measured before the run (the baseline "
                          "subtracted for energy above idle)."),
        click.option("--power-sysfs-root", default="/", show_default=True, metavar="DIR",
                     help="Root under which /sys and /proc are read for power sensors."),
    ]

    def decorate(function):
        for option in reversed(options):
            function = option(function)
        return function
    return decorate


def config_from_options(power_source, power_rate_hz, idle_s, power_sysfs_root="/"):
    """The :class:`PowerConfig` of :func:`power_options`' values (one-line errors)."""
    return PowerConfig(source=power_source, sysfs_root=power_sysfs_root, rate_hz=power_rate_hz,
                       idle_s=idle_s)
