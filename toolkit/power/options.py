"""The :class:`PowerConfig` of the CLI's shared power options (``--power``, ``--power-rate-hz``,
``--idle-s``, ``--power-sysfs-root``; declared once in ``toolkit/cli/options.py``)."""
from toolkit.power.config import PowerConfig


def config_from_options(power_source, power_rate_hz, idle_s, power_sysfs_root="/"):
    """The :class:`PowerConfig` of the power options' values (one-line errors)."""
    return PowerConfig(source=power_source, sysfs_root=power_sysfs_root, rate_hz=power_rate_hz,
                       idle_s=idle_s)
