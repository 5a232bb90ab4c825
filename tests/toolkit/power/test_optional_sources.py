"""jetson-stats (jtop) and NVML through fake modules (neither is installed here)."""
import sys
import types

import pytest

from basics.errors import InputError
from toolkit.power.config import PowerConfig
from toolkit.power.sources import find_source
from toolkit.power.sources.jetson_stats import parse_jtop_power

# What jetson-stats 7.x's PowerService.get_status() returns on an Orin Nano (jtop/core/power.py):
# total_power() takes VDD_IN OUT of "rail" and puts it under "tot" with its name.
JTOP7 = {"rail": {"VDD_CPU_GPU_CV": {"type": "INA3221", "volt": 5008, "curr": 87, "warn": 3000,
                                     "crit": 6000, "power": 435, "online": True, "avg": 430},
                  "VDD_SOC": {"type": "INA3221", "volt": 5008, "curr": 340, "warn": 3000,
                              "crit": 6000, "power": 1702, "online": True, "avg": 1700}},
         "tot": {"type": "INA3221", "volt": 5016, "curr": 990, "warn": 5000, "crit": 8000,
                 "power": 4965, "online": True, "avg": 4900, "name": "VDD_IN"}}
# ... and on an AGX Xavier, which has no input rail: "tot" is the sum of the rails, without a name.
JTOP7_SUMMED = {"rail": {"GPU": {"volt": 19072, "curr": 24, "power": 457, "online": True,
                                 "avg": 457},
                         "CPU": {"volt": 19072, "curr": 25, "power": 476, "online": True,
                                 "avg": 476}},
                "tot": {"power": 933, "avg": 933}}
# jetson-stats 3.x on a Nano (jtop/service.py): (total, rails), rails renamed ("POM_5V_GPU" ->
# "5V GPU"), the first rail containing "IN" taken out as the total.
JTOP3 = ({"cur": 2079, "avg": 2047}, {"5V GPU": {"cur": 120, "avg": 118},
                                      "5V CPU": {"cur": 408, "avg": 400}})


def _board(key):
    from toolkit.power.boards import BOARDS
    return [b for b in BOARDS if b.key == key][0]


def test_jtop7_total_rail_comes_from_tot_not_from_the_sum_of_parts():
    rails = parse_jtop_power(JTOP7, _board("orin-nano"))
    assert list(rails) == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
    assert rails["VDD_IN"] == {"power_mw": 4965.0, "voltage_mv": 5016.0, "current_ma": 990.0}
    rails = parse_jtop_power(JTOP7_SUMMED, _board("agx-xavier"))
    assert list(rails) == ["GPU", "CPU"]  # a sum is not a rail: the policy sums


def test_jtop3_tuple_total_rail_and_names_are_restored():
    rails = parse_jtop_power(JTOP3, _board("nano"))
    assert list(rails) == ["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"]
    assert rails["POM_5V_IN"] == {"power_mw": 2079.0}
    rails = parse_jtop_power(JTOP3)  # board unknown: the total is kept under 3.x's name
    assert rails["IN"] == {"power_mw": 2079.0} and "5V GPU" in rails
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


@pytest.mark.parametrize("board, power, total_mw", [
    ("orin-nano", JTOP7, 4965.0), ("nano", JTOP3, 2079.0)])
def test_jtop_source_total_is_the_input_rail(monkeypatch, make_jetson, board, power, total_mw):
    jetson = make_jetson(board)
    monkeypatch.setitem(sys.modules, "jtop", _fake_jtop(power))
    source, _ = find_source(PowerConfig(source="jtop", sysfs_root=jetson.root))
    assert source.kind == "jtop" and source.policy.total == _board(board).total
    source.open()
    sample = dict(zip(source.columns, source.read()))
    source.close()
    total = sum(sample[(rail, "power_mw")] for rail in source.policy.total_rails)
    assert total == total_mw  # 528 mW (the parts' sum) on a Nano where jtop reads 2079


def test_jtop_service_down_is_said(monkeypatch):
    monkeypatch.setitem(sys.modules, "jtop", _fake_jtop(JTOP7, fail=True))
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
