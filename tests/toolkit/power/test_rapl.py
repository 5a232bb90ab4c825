import os

import numpy as np
import pytest

from basics.errors import InputError
from tests.toolkit.power.fakes import make_fake_rapl
from toolkit.power.config import PowerConfig
from toolkit.power.energy import Trace, unwrap_counter
from toolkit.power.sources import base, find_source
from toolkit.power.sources.rapl import discover, discover_domains


def test_one_package_is_the_total_and_subdomains_are_parts(tmp_path):
    make_fake_rapl(tmp_path)
    source = discover(PowerConfig(source="rapl", sysfs_root=str(tmp_path)))
    assert source.rails == ["package-0", "package-0/core", "package-0/uncore"]
    assert source.policy.total == "package-0" and not source.policy.is_summed
    assert source.wraps["package-0"] == pytest.approx(262143328.850)
    assert source.probe() == (1000.0, 500.0, 500.0)  # microjoules -> mJ


def test_two_packages_are_summed_and_psys_is_the_total_when_present(tmp_path):
    make_fake_rapl(tmp_path / "a", packages=2)
    policy = discover(PowerConfig(sysfs_root=str(tmp_path / "a"))).policy
    assert policy.is_summed and policy.summed == ("package-0", "package-1")
    make_fake_rapl(tmp_path / "b", packages=1, psys=True)
    policy = discover(PowerConfig(sysfs_root=str(tmp_path / "b"))).policy
    assert policy.total == "psys" and "package-0" in policy.parts


def test_auto_falls_back_to_rapl_off_the_jetson(tmp_path):
    make_fake_rapl(tmp_path)
    source, reasons = find_source(PowerConfig(sysfs_root=str(tmp_path),
                                              tegrastats_cmd="no-such-tegrastats"))
    assert source.kind == "rapl"
    assert "no INA3221 rails" in reasons["ina3221"] and "not found" in reasons["tegrastats"]


def test_no_domains_is_a_one_line_error(tmp_path):
    with pytest.raises(InputError, match="no RAPL domains"):
        discover_domains(str(tmp_path))


def test_permission_denied_says_how_to_grant_access(tmp_path, monkeypatch):
    domains = make_fake_rapl(tmp_path)

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(base, "_raw_open", denied)
    with pytest.raises(InputError) as info:
        discover(PowerConfig(sysfs_root=str(tmp_path)))  # name files are denied too
    assert "permission denied" in str(info.value) and "chmod o+r" in str(info.value)
    monkeypatch.undo()
    source = discover(PowerConfig(sysfs_root=str(tmp_path)))
    real_open = base._raw_open

    def energy_denied(path, *args, **kwargs):
        if path.endswith("energy_uj"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(base, "_raw_open", energy_denied)
    with pytest.raises(InputError) as info:
        source.probe()
    expected = os.path.join(domains["package-0"], "energy_uj")
    assert expected in str(info.value) and "sudo chmod o+r" in str(info.value)


def test_wrap_around_is_unwrapped():
    wrap = 1000.0
    true_energy = np.arange(0, 3500, 100.0)           # mJ, steadily rising
    raw = true_energy % wrap                          # what the counter shows
    cumulative, wraps = unwrap_counter(raw, wrap)
    assert wraps == 3
    np.testing.assert_allclose(cumulative - cumulative[0], true_energy - true_energy[0])


def test_counter_without_range_treats_a_decrease_as_a_reset():
    cumulative, resets = unwrap_counter([10.0, 20.0, 5.0, 15.0])
    assert resets == 1 and list(cumulative) == [10.0, 20.0, 20.0, 30.0]


def test_window_energy_across_a_wrap(tmp_path):
    trace = Trace([("package-0", "energy_mj")], wraps={"package-0": 1000.0})
    t = np.linspace(0.0, 10.0, 101)
    power_mw = 350.0
    trace.append(t, ((900.0 + power_mw * t) % 1000.0)[:, None])
    assert trace.energy_mj("package-0", 1.05, 8.95) == pytest.approx(power_mw * 7.9)
    times, power = trace.power_series("package-0")
    np.testing.assert_allclose(power, power_mw)
