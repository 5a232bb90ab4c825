import os

import pytest

from basics.errors import InputError
from toolkit.power.config import PowerConfig
from toolkit.power.sources import base, find_source
from toolkit.power.sources.ina3221 import JETPACK4_AVERAGING_S, discover, discover_rails

EXPECTED = {
    "nano": (["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"], "POM_5V_IN"),
    "xavier-nx": (["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"], "VDD_IN"),
    "xavier-nx-jp5": (["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"], "VDD_IN"),
    "orin-nano": (["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"], "VDD_IN"),
    "orin-nx": (["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"], "VDD_IN"),
    "agx-xavier": (["GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"], None),
    "agx-orin": (["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"], None),
}


def _source(root, **kw):
    return discover(PowerConfig(source="ina3221", sysfs_root=root, **kw))


def test_discovery_finds_every_boards_rails_and_total(fake_jetson):
    rails, total = EXPECTED[fake_jetson.board]
    source = _source(fake_jetson.root)
    assert source.rails == rails  # NC channels, channel 7, decoy sensors skipped
    assert source.policy.total == total
    if total is None:
        assert source.policy.is_summed
    assert total not in source.policy.parts


def test_reads_match_the_files_and_follow_changes(fake_jetson):
    source = _source(fake_jetson.root)
    source.open()
    try:
        first = dict(zip(source.columns, source.read()))
        for rail in source.rails:
            assert first[(rail, "power_mw")] == pytest.approx(fake_jetson.power_mw(rail))
        rail = source.rails[0]
        fake_jetson.set(rail, 5000, 1234)  # values change between reads: no caching
        second = dict(zip(source.columns, source.read()))
        assert second[(rail, "power_mw")] == pytest.approx(5000 * 1234 / 1000.0, abs=1.0)
        assert second[(rail, "power_mw")] != first[(rail, "power_mw")]
    finally:
        source.close()


def test_probe_accepts_every_fake_board(fake_jetson):
    found, reasons = find_source(PowerConfig(sysfs_root=fake_jetson.root))
    assert found is not None and found.kind == "ina3221" and not reasons


def test_jetpack4_reads_voltage_and_current_only_when_asked(make_jetson):
    jetson = make_jetson("nano")
    assert [q for _, q in _source(jetson.root).columns] == ["power_mw"] * 3
    with_vi = _source(jetson.root, voltage_current=True)
    assert [q for _, q in with_vi.columns][:3] == ["power_mw", "voltage_mv", "current_ma"]
    assert with_vi.probe()[:3] == (2028.0, 5072.0, 400.0)


def test_averaging_period_jetpack4_assumed_jetpack5_read(make_jetson):
    assert _source(make_jetson("nano").root).averaging_s == pytest.approx(JETPACK4_AVERAGING_S)
    assert 0.3 < JETPACK4_AVERAGING_S < 0.5
    source = _source(make_jetson("orin-nano").root)
    assert source.averaging_s == pytest.approx(0.026) and "update_interval" in source.averaging_note


def test_no_rails_error_says_where_it_looked(tmp_path):
    with pytest.raises(InputError) as info:
        find_source(PowerConfig(source="ina3221", sysfs_root=str(tmp_path)))
    message = str(info.value)
    assert "no INA3221 rails" in message and "ina3221x" in message and "hwmon" in message
    assert "\n" not in message


def test_permission_denied_names_the_file_and_the_fix(make_jetson, monkeypatch):
    jetson = make_jetson("nano")
    real_open = base._raw_open

    def fake_open(path, *args, **kwargs):
        if path.endswith("in_power0_input"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(base, "_raw_open", fake_open)
    with pytest.raises(InputError) as info:
        find_source(PowerConfig(source="ina3221", sysfs_root=jetson.root))
    message = str(info.value)
    assert "permission denied" in message and "in_power0_input" in message
    assert "chmod o+r" in message and "\n" not in message


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads files whatever their mode")
def test_permission_denied_with_a_real_chmod(make_jetson):
    jetson = make_jetson("orin-nano")
    os.chmod(jetson.rails["VDD_IN"]["current"], 0)
    with pytest.raises(InputError, match="permission denied"):
        find_source(PowerConfig(source="ina3221", sysfs_root=jetson.root))


def test_malformed_value_names_the_file_and_the_value(make_jetson):
    jetson = make_jetson("orin-nano")
    with open(jetson.rails["VDD_SOC"]["voltage"], "w") as handle:
        handle.write("n/a\n")
    with pytest.raises(InputError) as info:
        find_source(PowerConfig(source="ina3221", sysfs_root=jetson.root))
    assert "malformed value" in str(info.value) and "in3_input" in str(info.value)
    assert "'n/a'" in str(info.value)


def test_implausible_value_is_refused_not_guessed(make_jetson):
    jetson = make_jetson("nano")
    jetson.set("POM_5V_IN", 5072, 400, power_mw=2028000)  # microwatts in a mW file
    with pytest.raises(InputError, match="implausible power_mw for rail POM_5V_IN"):
        find_source(PowerConfig(source="ina3221", sysfs_root=jetson.root))


def test_power_file_disagreeing_with_voltage_times_current_is_refused(make_jetson):
    jetson = make_jetson("xavier-nx")
    jetson.set("VDD_SOC", 5040, 220, power_mw=11)
    with pytest.raises(InputError, match="voltage x current"):
        _source(jetson.root, voltage_current=True).probe()


def test_auto_skips_unreadable_rails_and_says_why(make_jetson):
    jetson = make_jetson("orin-nx")
    with open(jetson.rails["VDD_IN"]["current"], "w") as handle:
        handle.write("garbage\n")
    found, reasons = find_source(PowerConfig(source="auto", sysfs_root=jetson.root,
                                             tegrastats_cmd="no-such-tegrastats-here"))
    assert found is None or found.kind != "ina3221"
    assert "malformed value" in reasons["ina3221"]


def test_discovery_is_a_pure_function_of_the_root(make_jetson):
    jetson = make_jetson("agx-orin")
    first = discover_rails(jetson.root)
    second = discover_rails(jetson.root)
    assert [r.name for r in first[0]] == [r.name for r in second[0]]
    assert [r.voltage for r in first[0]] == [r.voltage for r in second[0]]
    assert first[1] == "hwmon"


def test_same_label_on_two_chips_is_qualified(make_jetson):
    jetson = make_jetson("agx-orin")
    label = os.path.join(os.path.dirname(jetson.rails["VDDQ_VDD2_1V8AO"]["voltage"]), "in2_label")
    with open(label, "w") as handle:
        handle.write("VDD_CPU_CV\n")
    names = [r.name for r in discover_rails(jetson.root)[0]]
    assert "VDD_CPU_CV@1-0040" in names and "VDD_CPU_CV@1-0041" in names


def test_hwmon_sum_channel_is_curr4_and_is_not_a_rail(make_jetson):
    jetson = make_jetson("orin-nano")
    hwmon = os.path.dirname(jetson.rails["VDD_IN"]["current"])
    files = set(os.listdir(hwmon))
    assert "curr4_input" in files and "curr7_input" not in files  # as the hwmon driver has it
    assert open(os.path.join(hwmon, "in7_label")).read().strip() == "sum of shunt voltages"
    assert int(open(os.path.join(hwmon, "curr4_input")).read()) == 990 + 87 + 340
    assert "sum of shunt voltages" not in _source(jetson.root).rails


def test_jetpack4_chip_is_found_through_the_i2c_device_link(make_jetson):
    jetson = make_jetson("nano")
    link = os.path.join(jetson.root, "sys", "bus", "i2c", "devices", "6-0040")
    assert os.path.islink(link) and open(os.path.join(link, "name")).read() == "ina3221x\n"
    import shutil
    shutil.rmtree(os.path.join(jetson.root, "sys", "bus", "i2c", "drivers"))
    assert _source(jetson.root).rails == ["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"]
