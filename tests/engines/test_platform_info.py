"""Machine facts: Jetson boards from fake /proc/device-tree + /etc/nv_tegra_release trees."""
import json

import pytest

from engines import platform_info
from engines.platform_info import (
    collect_info,
    cuda_toolkit_version,
    jetson_facts,
    os_facts,
    parse_nv_tegra_release,
)

# (model, compatible, nv_tegra_release first line) as the boards write them
BOARDS = {
    "nano": ("NVIDIA Jetson Nano Developer Kit\x00",
             "nvidia,p3450-0000\x00nvidia,jetson-nano\x00nvidia,tegra210\x00",
             "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, "
             "DATE: Sat Feb 19 17:05:08 UTC 2022"),
    "xavier_nx": ("NVIDIA Jetson Xavier NX Developer Kit\x00",
                  "nvidia,p3509-0000+p3668-0001\x00nvidia,jetson-xavier-nx\x00nvidia,tegra194\x00",
                  "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, "
                  "DATE: Tue Aug  1 19:57:35 UTC 2023"),
    "orin_nano": ("NVIDIA Jetson Orin Nano Developer Kit\x00",
                  "nvidia,p3768-0000+p3767-0005\x00nvidia,p3767-0005\x00nvidia,tegra234\x00",
                  "# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64, "
                  "DATE: Fri Jul 19 23:24:25 UTC 2024"),
}


def make_tree(root, board):
    model, compatible, release = BOARDS[board]
    (root / "proc" / "device-tree").mkdir(parents=True)
    (root / "proc" / "device-tree" / "model").write_bytes(model.encode())
    (root / "proc" / "device-tree" / "compatible").write_bytes(compatible.encode())
    (root / "etc").mkdir()
    (root / "etc" / "nv_tegra_release").write_text(release + "\n")
    return str(root)


@pytest.mark.parametrize("board, soc, l4t, jetpack, int8, model, name, tensorrt", [
    ("nano", "tegra210", "32.7.1", "4.6.1", False, "NVIDIA Jetson Nano Developer Kit",
     "Jetson Nano", "8.2.1"),
    ("xavier_nx", "tegra194", "35.4.1", "5.1.2", True, "NVIDIA Jetson Xavier NX Developer Kit",
     "Jetson Xavier NX", "8.5.2"),
    ("orin_nano", "tegra234", "36.3.0", "6.0", True, "NVIDIA Jetson Orin Nano Developer Kit",
     "Jetson Orin Nano", "8.6.2"),
])
def test_jetson_boards(tmp_path, board, soc, l4t, jetpack, int8, model, name, tensorrt):
    facts = jetson_facts(make_tree(tmp_path, board))
    assert facts["board"] == name and facts["tensorrt"] == tensorrt
    assert facts["is_jetson"] is True
    assert facts["model"] == model  # the NUL terminator is gone
    assert facts["soc"] == soc and facts["l4t"] == l4t and facts["jetpack"] == jetpack
    assert facts["fast_int8"] is int8 and facts["fast_fp16"] is True
    assert facts["compatible"][-1] == "nvidia," + soc


def test_not_a_jetson(tmp_path):
    facts = jetson_facts(str(tmp_path))
    assert facts == {"is_jetson": False, "model": None, "compatible": [], "soc": None,
                     "board": None, "l4t": None, "jetpack": None, "tensorrt": None}


def test_other_arm_board_is_not_a_jetson(tmp_path):
    (tmp_path / "proc" / "device-tree").mkdir(parents=True)
    (tmp_path / "proc" / "device-tree" / "model").write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\x00")
    facts = jetson_facts(str(tmp_path))
    assert facts["is_jetson"] is False and facts["model"] == "Raspberry Pi 4 Model B Rev 1.4"


@pytest.mark.parametrize("text, release", [
    ("# R32 (release), REVISION: 6.1, GCID: 27863751, BOARD: t210ref, EABI: aarch64", "32.6.1"),
    ("# R35 (release), REVISION: 5.0, GCID: 35550185, BOARD: t186ref", "35.5.0"),
    ("# R36 (release), REVISION: 4, GCID: 1", "36.4.0"),
    ("garbage", None),
    ("", None),
    (None, None),
])
def test_parse_nv_tegra_release(text, release):
    assert parse_nv_tegra_release(text) == release


def test_unknown_l4t_release_has_no_jetpack(tmp_path):
    root = make_tree(tmp_path, "nano")
    (tmp_path / "etc" / "nv_tegra_release").write_text("# R32 (release), REVISION: 9.9, GCID: 1\n")
    facts = jetson_facts(root)
    assert facts["l4t"] == "32.9.9" and facts["jetpack"] is None


def test_cuda_toolkit_version(tmp_path):
    cuda = tmp_path / "usr" / "local" / "cuda"
    cuda.mkdir(parents=True)
    assert cuda_toolkit_version(str(tmp_path)) is None
    (cuda / "version.txt").write_text("CUDA Version 10.2.300\n")
    assert cuda_toolkit_version(str(tmp_path)) == "10.2.300"
    (cuda / "version.json").write_text(json.dumps({"cuda": {"name": "CUDA SDK",
                                                            "version": "11.4.19"}}))
    assert cuda_toolkit_version(str(tmp_path)) == "11.4.19"


def test_os_facts_read_the_root(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text('NAME="Ubuntu"\nPRETTY_NAME="Ubuntu 18.04.6 LTS"\n')
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "meminfo").write_text("MemTotal:        4051056 kB\nMemFree: 1 kB\n")
    facts = os_facts(str(tmp_path))
    assert facts["os"] == "Ubuntu 18.04.6 LTS" and facts["memory_mb"] == 3956
    assert facts["python"].count(".") == 2 and facts["arch"]


def test_collect_info_is_json_ready(tmp_path):
    info = collect_info(make_tree(tmp_path, "nano"))
    json.dumps(info)
    assert info["jetson"]["soc"] == "tegra210"
    backends = info["backends"]
    assert set(backends) == {"tensorrt", "onnxruntime", "pycuda", "cuda_python", "onnx", "torch"}
    if backends["onnxruntime"]["installed"]:
        assert "CPUExecutionProvider" in backends["onnxruntime"]["providers"]


def test_a_broken_package_is_reported_not_raised(monkeypatch):
    real = platform_info.importlib.import_module

    def fake_import(name, *args):
        if name == "pycuda":
            raise RuntimeError("cuInit failed: no CUDA-capable device")
        return real(name, *args)

    monkeypatch.setattr(platform_info.importlib, "import_module", fake_import)
    facts = platform_info.backend_facts()
    assert facts["pycuda"] == {"installed": False, "version": None,
                               "error": "RuntimeError: cuInit failed: no CUDA-capable device"}
