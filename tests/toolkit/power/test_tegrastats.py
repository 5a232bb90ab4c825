import pytest

from basics.errors import InputError
from tests.toolkit.power.conftest import fixture_lines
from toolkit.power.config import PowerConfig
from toolkit.power.sources import find_source
from toolkit.power.sources.tegrastats import TegrastatsSource, discover, parse_line


@pytest.mark.parametrize("fixture, fmt, rails", [
    ("tegrastats_jetpack4.txt", "jetpack4", ["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"]),
    ("tegrastats_jetpack4_agx_xavier.txt", "jetpack4", ["GPU", "CPU", "SOC", "CV", "VDDRQ",
                                                        "SYS5V"]),
    ("tegrastats_jetpack5.txt", "jetpack5", ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]),
    ("tegrastats_jetpack6_three_values.txt", "jetpack6", ["VDD_GPU_SOC", "VDD_CPU_CV",
                                                          "VIN_SYS_5V0"]),
])
def test_every_real_line_format_parses(fixture, fmt, rails):
    for line in fixture_lines(fixture):
        found_fmt, found = parse_line(line)
        assert found_fmt == fmt
        assert list(found) == rails  # RAM/SWAP/IRAM, CPU [..], GPU@..C are not rails


def test_values_are_current_then_average_then_third():
    fmt, rails = parse_line(fixture_lines("tegrastats_jetpack4.txt")[2])
    assert rails["POM_5V_IN"] == (2545.0, 2547.0, None)
    assert rails["POM_5V_CPU"] == (549.0, 529.0, None)
    _, rails = parse_line(fixture_lines("tegrastats_jetpack5.txt")[2])
    assert rails["VDD_IN"] == (4744.0, 6179.0, None)
    _, rails = parse_line(fixture_lines("tegrastats_jetpack6_three_values.txt")[0])
    assert rails["VDD_GPU_SOC"] == (4385.0, 3787.0, 4385.0)


def test_agx_xavier_rail_names_do_not_clash_with_load_and_temperature():
    _, rails = parse_line(fixture_lines("tegrastats_jetpack4_agx_xavier.txt")[0])
    assert rails["CPU"][0] == 2301.0 and rails["GPU"][0] == 18401.0


def test_line_without_rails():
    assert parse_line("RAM 613/3964MB (lfb 634x4MB) SWAP 0/1982MB (cached 0MB) IRAM 0/252kB"
                      "(lfb 252kB) CPU [2%@102,1%@102]") == (None, {})


def test_source_runs_tegrastats_and_reads_its_lines(fake_tegrastats, make_jetson):
    jetson = make_jetson("nano")
    config = PowerConfig(source="tegrastats", sysfs_root=jetson.root, rate_hz=20,
                         tegrastats_cmd=fake_tegrastats("tegrastats_jetpack4.txt"))
    source, _ = find_source(config)
    assert isinstance(source, TegrastatsSource) and source.format == "jetpack4"
    assert source.policy.total == "POM_5V_IN" and source.interval_ms == 50
    assert source.averaging_s > 0.3  # JetPack 4 driver averaging
    source.open()
    try:
        import select
        samples = []
        while len(samples) < 2:
            select.select([source.fileno()], [], [], 2.0)
            sample = source.read()
            if sample is not None:
                samples.append(sample)
        assert samples[0] == (943.0, 0.0, 123.0) and samples[1] == (1388.0, 122.0, 163.0)
    finally:
        source.close()


def test_tegrastats_not_on_path_is_a_one_line_error():
    with pytest.raises(InputError, match="'no-such-tegrastats' not found on PATH"):
        discover(PowerConfig(source="tegrastats", tegrastats_cmd="no-such-tegrastats"))


def test_tegrastats_without_rails_is_unavailable(tmp_path, fake_tegrastats):
    (tmp_path / "norails.txt").write_text("RAM 613/3964MB (lfb 634x4MB) CPU [2%@102]\n")
    cmd = fake_tegrastats(str(tmp_path / "norails.txt"))
    with pytest.raises(InputError, match="no power rails"):
        discover(PowerConfig(source="tegrastats", tegrastats_cmd=cmd))


def test_tegrastats_that_exits_is_reported(fake_tegrastats):
    config = PowerConfig(source="tegrastats", tegrastats_cmd=fake_tegrastats(
        "tegrastats_jetpack5.txt", limit=1), rate_hz=20)
    source = discover(config)
    source.open()
    try:
        import select
        with pytest.raises(InputError, match="tegrastats exited"):
            for _ in range(100):
                select.select([source.fileno()], [], [], 1.0)
                source.read()
    finally:
        source.close()


def test_missing_rail_in_a_later_line_is_an_error(fake_tegrastats):
    source = discover(PowerConfig(source="tegrastats", rate_hz=20, tegrastats_cmd=fake_tegrastats(
        "tegrastats_jetpack5.txt", limit=1)))
    with pytest.raises(InputError, match="lacks rail"):
        source.values(fixture_lines("tegrastats_jetpack4.txt")[0])
