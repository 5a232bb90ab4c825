"""The typed settings of power measurement (``toolkit power``, ``bench``, ``run``)."""
from basics.errors import InputError

SOURCES = ("auto", "ina3221", "tegrastats", "jtop", "rapl", "nvml", "none")
START_METHODS = ("spawn", "forkserver", "fork")


class PowerConfig(object):
    """Where power comes from and how often it is sampled.

    ``source``: ``auto`` tries INA3221 sysfs, tegrastats, jtop, RAPL, NVML in that order and
    measures nothing (the report says so) when none works; a named source must work or it is an
    error. ``sysfs_root``: the root under which ``/sys`` and ``/proc`` are looked up (tests pass a
    fake tree). ``rate_hz``: samples per second (tegrastats is limited to one line per 50 ms).
    ``idle_s``: default duration of :meth:`PowerMeter.measure_idle`. ``tegrastats_cmd``: the
    command (string or list) ``--interval MS`` is appended to. ``voltage_current``: also read each
    rail's voltage and current where they cost extra reads (JetPack 4 sysfs; the live view wants
    them). ``start_method``: multiprocessing start method of the sampler process (``None``:
    ``spawn``, safe beside threads such as ONNX Runtime's pools). ``sampler_nice``: niceness added
    to the sampler process (0: same priority as the run).
    """

    def __init__(self, source="auto", sysfs_root="/", rate_hz=100.0, idle_s=2.0,
                 tegrastats_cmd="tegrastats", voltage_current=False, start_method=None,
                 ready_timeout_s=60.0, sampler_nice=0):
        if source not in SOURCES:
            raise InputError("power source must be one of {}, got '{}'".format(
                ", ".join(SOURCES), source))
        try:
            rate_hz = float(rate_hz)
            idle_s = float(idle_s)
        except (TypeError, ValueError):
            raise InputError("rate_hz and idle_s must be numbers, got {!r} and {!r}".format(
                rate_hz, idle_s)) from None
        if not 0.1 <= rate_hz <= 5000.0:
            raise InputError("the power sampling rate must be between 0.1 and 5000 Hz, "
                             "got {:g}".format(rate_hz))
        if idle_s < 0:
            raise InputError("idle time must be >= 0 s, got {:g}".format(idle_s))
        if start_method is not None and start_method not in START_METHODS:
            raise InputError("start_method must be one of {}, got '{}'".format(
                START_METHODS, start_method))
        if not tegrastats_cmd:
            raise InputError("tegrastats_cmd must name a command")
        self.source = source
        self.sysfs_root = str(sysfs_root)
        self.rate_hz = rate_hz
        self.idle_s = idle_s
        self.tegrastats_cmd = tegrastats_cmd
        self.voltage_current = bool(voltage_current)
        self.start_method = start_method or "spawn"
        self.ready_timeout_s = float(ready_timeout_s)
        self.sampler_nice = int(sampler_nice)

    def to_dict(self):
        return {"source": self.source, "sysfs_root": self.sysfs_root, "rate_hz": self.rate_hz,
                "idle_s": self.idle_s, "tegrastats_cmd": self.tegrastats_cmd,
                "voltage_current": self.voltage_current, "start_method": self.start_method,
                "sampler_nice": self.sampler_nice}

    def __repr__(self):
        return "PowerConfig({})".format(", ".join(
            "{}={!r}".format(k, v) for k, v in sorted(self.to_dict().items())))
