import pytest

from toolkit.power.boards import BOARDS, detect_board, read_model, total_policy

# the board key each fake tree must be recognised as
EXPECTED_BOARD = {"nano": "nano", "xavier-nx": "xavier-nx", "xavier-nx-jp5": "xavier-nx",
                  "agx-xavier": "agx-xavier", "orin-nano": "orin-nano", "orin-nx": "orin-nx",
                  "agx-orin": "agx-orin"}


def test_every_fake_board_is_detected(fake_jetson):
    board = detect_board(fake_jetson.root)
    assert board is not None and board.key == EXPECTED_BOARD[fake_jetson.board]


def test_model_string_is_read_without_its_nul(make_jetson):
    jetson = make_jetson("nano")
    assert read_model(jetson.root) == "NVIDIA Jetson Nano Developer Kit"


def test_no_device_tree_means_no_board(tmp_path):
    assert read_model(str(tmp_path)) is None
    assert detect_board(str(tmp_path)) is None


def _board(key):
    return [b for b in BOARDS if b.key == key][0]


def test_nano_total_is_the_input_rail_and_parts_are_never_added():
    policy = total_policy(_board("nano"), ["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"])
    assert policy.total == "POM_5V_IN" and policy.total_rails == ("POM_5V_IN",)
    assert set(policy.parts) == {"POM_5V_GPU", "POM_5V_CPU"} and not policy.is_summed


def test_agx_orin_sums_its_inputs_but_not_the_rail_fed_by_vin_sys():
    rails = ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"]
    policy = total_policy(_board("agx-orin"), rails)
    assert policy.total is None and policy.is_summed
    assert policy.total_rails == ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0")
    assert "fed by VIN_SYS_5V0" in policy.note and policy.parts == ("VDDQ_VDD2_1V8AO",)


def test_agx_xavier_sums_all_six_supplies():
    rails = ["GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"]
    policy = total_policy(_board("agx-xavier"), rails)
    assert policy.is_summed and set(policy.total_rails) == set(rails)


def test_missing_summed_rail_is_said():
    policy = total_policy(_board("agx-xavier"), ["GPU", "CPU", "SOC"])
    assert policy.is_summed and "incomplete" in policy.note


@pytest.mark.parametrize("rails, total, summed", [
    (["VDD_IN", "VDD_CPU_GPU", "VDD_SOC"], "VDD_IN", ()),       # unknown board (TX2 NX)
    (["A", "B"], None, ("A", "B")),                               # nothing known: sum, say so
    (["ONLY"], "ONLY", ()),
])
def test_unknown_board(rails, total, summed):
    policy = total_policy(None, rails)
    assert policy.total == total and policy.summed == summed
    if summed:
        assert "summed" in policy.note


def test_known_board_without_its_total_rail_falls_back_and_says_so():
    policy = total_policy(_board("orin-nano"), ["VDD_CPU_GPU_CV", "VDD_SOC"])
    assert policy.is_summed and "VDD_IN" in policy.note


def test_compatible_list_identifies_the_board_when_the_model_says_nothing(fake_jetson):
    import os
    with open(os.path.join(fake_jetson.root, "proc", "device-tree", "model"), "wb") as handle:
        handle.write(b"Custom carrier board\0")
    board = detect_board(fake_jetson.root)
    assert board is not None and board.key == EXPECTED_BOARD[fake_jetson.board]
