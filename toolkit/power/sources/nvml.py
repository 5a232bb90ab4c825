"""Desktop NVIDIA GPUs through NVML (``pynvml`` from nvidia-ml-py); NVML does not work on Jetson.

Where the driver offers it (Volta and newer) the total energy counter (mJ since the driver
loaded) is used and differenced; otherwise the power reading (mW), which many GPUs average over
about one second.
"""
from basics.errors import MissingDependencyError
from basics.lazy import lazy_import
from toolkit.power.boards import TotalPolicy
from toolkit.power.sources.base import Source, SourceUnavailable


def _nvml():
    try:
        return lazy_import("pynvml", "reading NVIDIA GPU power")
    except MissingDependencyError as exc:
        raise SourceUnavailable(str(exc)) from None


class NvmlSource(Source):
    """One rail per GPU (``gpu0``, ``gpu1``...): energy counters or power readings."""

    kind = "nvml"

    def __init__(self, names, use_energy):
        self.names = list(names)
        self.use_energy = bool(use_energy)
        rails = ["gpu{}".format(i) for i in range(len(self.names))]
        quantity = "energy_mj" if self.use_energy else "power_mw"
        policy = (TotalPolicy(rails[0]) if len(rails) == 1
                  else TotalPolicy(None, rails, (), "one rail per GPU: summed"))
        Source.__init__(self, [(r, quantity) for r in rails], policy,
                        "NVML {} of {}".format("energy counter" if self.use_energy else "power",
                                                ", ".join(self.names)))
        self.averaging_s = 0.1 if self.use_energy else 1.0
        self.averaging_note = ("assumed: NVML energy counter updates" if self.use_energy
                               else "assumed: NVML power is a ~1 s average on most GPUs")
        self._lib = None
        self._handles = None

    def open(self):
        lib = _nvml()
        lib.nvmlInit()
        self._lib = lib
        self._handles = [lib.nvmlDeviceGetHandleByIndex(i) for i in range(len(self.names))]

    def read(self):
        lib = self._lib
        if self.use_energy:
            return tuple(float(lib.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self._handles)
        return tuple(float(lib.nvmlDeviceGetPowerUsage(h)) for h in self._handles)

    def close(self):
        if self._lib is not None:
            try:
                self._lib.nvmlShutdown()
            except Exception:  # noqa: BLE001 - shutting down twice is harmless
                pass
        self._lib = None
        self._handles = None


def discover(config):
    lib = _nvml()
    try:
        lib.nvmlInit()
    except Exception as exc:  # pynvml.NVMLError and friends
        raise SourceUnavailable("NVML is not usable here: {}".format(exc)) from None
    try:
        count = lib.nvmlDeviceGetCount()
        if not count:
            raise SourceUnavailable("NVML sees no GPU")
        names, energy = [], True
        for index in range(count):
            handle = lib.nvmlDeviceGetHandleByIndex(index)
            name = lib.nvmlDeviceGetName(handle)
            names.append(name.decode() if isinstance(name, bytes) else str(name))
            try:
                lib.nvmlDeviceGetTotalEnergyConsumption(handle)
            except Exception:  # noqa: BLE001 - not supported on this GPU
                energy = False
    finally:
        try:
            lib.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass
    return NvmlSource(names, energy)
