"""The one board table: every fact consistent and sourced; the device tree read once."""
import pytest

from engines.boards import (
    BOARDS,
    JETPACK_OF_L4T,
    NOT_CONNECTED,
    RELEASES,
    SOCS,
    board_by_key,
    detect_board,
    read_device_tree,
)


@pytest.mark.parametrize("board", BOARDS, ids=lambda b: b.key)
def test_every_board_is_consistent_and_sourced(board):
    assert board.soc in SOCS
    assert board.sources.get("monitors") and board.sources.get("total")
    rails = board.rails
    assert NOT_CONNECTED not in rails and len(set(rails)) == len(rails)
    counted = (board.total,) if board.total else board.summed
    assert counted and set(counted) <= set(rails) and set(board.parts) <= set(rails)
    assert not set(counted) & set(board.parts)
    assert set(counted) | set(board.parts) == set(rails)  # every rail is counted or a part
    assert board.total or board.note  # a summed total says why


def test_releases_name_jetpack_tensorrt_cuda_python():
    assert JETPACK_OF_L4T["32.7.1"] == "4.6.1"
    for l4t, jetpack, tensorrt, cuda, python in RELEASES:
        assert l4t.count(".") == 2 and tensorrt and cuda and python.startswith("3.")


def test_agx_orin_leaves_out_the_rail_inside_vin_sys_5v0_and_says_where_from():
    board = board_by_key("agx-orin")
    assert board.summed == ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0")
    assert board.parts == ("VDDQ_VDD2_1V8AO",)
    assert "also included in VIN_SYS_5V0" in board.sources["total"]
    assert "tegra234-p3701.dtsi" in board.sources["monitors"]


def test_device_tree_read_once_without_nuls(tmp_path):
    folder = tmp_path / "proc" / "device-tree"
    folder.mkdir(parents=True)
    (folder / "model").write_bytes(b"NVIDIA Jetson Nano Developer Kit\0")
    (folder / "compatible").write_bytes(b"nvidia,p3450-0000\0nvidia,jetson-nano\0nvidia,tegra210\0")
    tree = read_device_tree(str(tmp_path))
    assert tree.model == "NVIDIA Jetson Nano Developer Kit" and tree.soc == "tegra210"
    assert tree.compatible[0] == "nvidia,p3450-0000"
    assert detect_board(str(tmp_path)).key == "nano"
    assert read_device_tree(str(tmp_path / "nowhere")).model is None
