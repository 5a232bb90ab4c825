"""Power sources: INA3221 sysfs, tegrastats, jetson-stats, RAPL, NVML (see each module).

:func:`find_source` discovers one from a :class:`~toolkit.power.config.PowerConfig`; ``auto``
tries them in :data:`AUTO_ORDER` and collects why each one was not usable.
"""
import collections
import importlib

from basics.errors import ToolkitError

AUTO_ORDER = ("ina3221", "tegrastats", "jtop", "rapl", "nvml")
_MODULES = {"ina3221": "toolkit.power.sources.ina3221",
            "tegrastats": "toolkit.power.sources.tegrastats",
            "jtop": "toolkit.power.sources.jetson_stats",
            "rapl": "toolkit.power.sources.rapl",
            "nvml": "toolkit.power.sources.nvml"}


def discover(name, config):
    """The source ``name`` for ``config`` (not yet opened); ToolkitError if unusable."""
    return importlib.import_module(_MODULES[name]).discover(config)


def find_source(config, probe=True):
    """``(source or None, {name: why not})``.

    A named ``config.source`` must work (its one-line error is raised); ``auto`` returns the first
    that works, ``none`` returns None. With ``probe`` each candidate is opened and read once, so
    permission errors and implausible values show up here.
    """
    reasons = collections.OrderedDict()
    if config.source == "none":
        reasons["none"] = "power measurement switched off (--power none)"
        return None, reasons
    names = AUTO_ORDER if config.source == "auto" else (config.source,)
    for name in names:
        try:
            source = discover(name, config)
            if probe:
                source.probe()
            return source, reasons
        except ToolkitError as exc:
            if config.source != "auto":
                raise
            reasons[name] = str(exc)
    return None, reasons
