"""The fake sysfs trees read by jetson-stats' own power reader (``jtop/core/power.py``): it must
find the same rails with the same values as the toolkit, and the same total, except on the AGX
Orin where jetson-stats adds VDDQ_VDD2_1V8AO, a rail inside VIN_SYS_5V0 (engines.boards)."""
import os

import pytest

from engines.boards import board_by_key
from tests.toolkit.power.fakes import FAKES
from toolkit.power.config import PowerConfig
from toolkit.power.sources.ina3221 import discover
from toolkit.power.sources.jetson_stats import parse_jtop_power

jtop_power = pytest.importorskip("jtop.core.power", reason="jetson-stats is not installed")


def _jetson_stats_status(root):
    """``jetson.power`` as the jtop service computes it, with its reader pointed at ``root``."""
    service = jtop_power.PowerService.__new__(jtop_power.PowerService)
    sensors = jtop_power.find_all_i2c_power_monitor(os.path.join(root, "sys", "bus", "i2c",
                                                                  "devices"))
    service._power_sensor = dict(sorted(sensors.items()))
    service._power_avg = {}
    return service.get_status()


@pytest.mark.parametrize("fake", sorted(FAKES))
def test_jetson_stats_reads_the_fake_trees_as_the_toolkit_does(make_jetson, fake):
    jetson = make_jetson(fake)
    status = _jetson_stats_status(jetson.root)
    board = board_by_key(FAKES[fake][0])
    theirs = parse_jtop_power(status, board)
    source = discover(PowerConfig(source="ina3221", sysfs_root=jetson.root))
    source.open()
    try:
        ours = dict(zip(source.columns, source.read()))
    finally:
        source.close()
    assert sorted(theirs) == sorted(source.rails)
    for rail, row in theirs.items():
        # jetson-stats truncates V x I to whole mW
        assert row["power_mw"] == pytest.approx(ours[(rail, "power_mw")], abs=1.0)
    our_total = sum(ours[(rail, "power_mw")] for rail in source.policy.total_rails)
    their_total = float(status["tot"]["power"])
    if fake == "agx-orin":
        assert their_total - our_total == pytest.approx(ours[("VDDQ_VDD2_1V8AO", "power_mw")],
                                                        abs=4.0)
    else:
        assert their_total == pytest.approx(our_total, abs=len(theirs))
