"""jetson-stats (jtop) and NVML through fake modules (neither is installed here)."""
import sys
import types

import pytest

from basics.errors import InputError
from toolkit.power.config import PowerConfig
from toolkit.power.sources import find_source
from toolkit.power.sources.jetson_stats import parse_jtop_power

JTOP4 = {"rail": {"VDD_IN": {"online": True, "volt": 5016, "curr": 990, "power": 4966, "avg": 4900},
                  "VDD_CPU_GPU_CV": {"online": True, "volt": 5008, "curr": 87, "power": 436,
                                     "avg": 430}},
         "tot": {"power": 4966, "avg": 4900}}
JTOP3 = ({"cur": 2545, "avg": 2547}, {"POM_5V_IN": {"cur": 2545, "avg": 2547},
                                      "POM_5V_GPU": {"cur": 0, "avg": 0}})


def test_both_jtop_power_shapes():
    rails = parse_jtop_power(JTOP4)
    assert list(rails) == ["VDD_IN", "VDD_CPU_GPU_CV"]
    assert rails["VDD_IN"] == {"power_mw": 4966.0, "voltage_mv": 5016.0, "current_ma": 990.0}
    rails = parse_jtop_power(JTOP3)
    assert rails["POM_5V_IN"] == {"power_mw": 2545.0}
    with pytest.raises(InputError, match="unexpected jtop power data"):
        parse_jtop_power("nonsense")


def _fake_jtop(power, fail=False):
    module = types.ModuleType("jtop")

    class jtop(object):  # noqa: N801 - the real class name
        def __init__(self, interval=0.5):
            self.power = power

        def start(self):
            if fail:
                raise RuntimeError("The jtop.service is not active")

        def close(self):
            pass

    module.jtop = jtop
    return module


def test_jtop_source_reads_rails(monkeypatch, make_jetson):
    jetson = make_jetson("orin-nano")
    monkeypatch.setitem(sys.modules, "jtop", _fake_jtop(JTOP4))
    source, _ = find_source(PowerConfig(source="jtop", sysfs_root=jetson.root))
    assert source.kind == "jtop" and source.policy.total == "VDD_IN"
    source.open()
    assert source.read()[:3] == (4966.0, 5016.0, 990.0)
    source.close()


def test_jtop_service_down_is_said(monkeypatch):
    monkeypatch.setitem(sys.modules, "jtop", _fake_jtop(JTOP4, fail=True))
    with pytest.raises(InputError, match="jtop service not reachable"):
        find_source(PowerConfig(source="jtop"))


def test_jtop_missing_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "jtop", None)
    with pytest.raises(InputError, match="jetson-stats"):
        find_source(PowerConfig(source="jtop"))


def _fake_pynvml(energy=True, init_error=None):
    module = types.ModuleType("pynvml")
    state = {"energy": 5000}

    def init():
        if init_error:
            raise RuntimeError(init_error)

    def total_energy(handle):
        if not energy:
            raise RuntimeError("Not Supported")
        state["energy"] += 250
        return state["energy"]

    module.nvmlInit = init
    module.nvmlShutdown = lambda: None
    module.nvmlDeviceGetCount = lambda: 2
    module.nvmlDeviceGetHandleByIndex = lambda i: i
    module.nvmlDeviceGetName = lambda h: b"NVIDIA GeForce RTX 3060"
    module.nvmlDeviceGetTotalEnergyConsumption = total_energy
    module.nvmlDeviceGetPowerUsage = lambda h: 42000 + h
    return module


def test_nvml_energy_counters_and_power_fallback(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(energy=True))
    source, _ = find_source(PowerConfig(source="nvml"))
    assert source.columns == [("gpu0", "energy_mj"), ("gpu1", "energy_mj")]
    assert source.policy.is_summed and "RTX 3060" in source.description
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(energy=False))
    source, _ = find_source(PowerConfig(source="nvml"))
    source.open()
    assert source.read() == (42000.0, 42001.0) and source.averaging_s == 1.0
    source.close()


def test_nvml_not_usable_is_said(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml",
                        _fake_pynvml(init_error="NVML Shared Library Not Found"))
    with pytest.raises(InputError, match="NVML is not usable here: NVML Shared Library"):
        find_source(PowerConfig(source="nvml"))
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(InputError, match="nvidia-ml-py"):
        find_source(PowerConfig(source="nvml"))
