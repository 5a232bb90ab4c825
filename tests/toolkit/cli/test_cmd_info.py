"""``toolkit info``: human lines and JSON, on this machine and on a fake Jetson Nano tree."""
import json

from tests.engines.test_platform_info import make_tree
from toolkit.cli.main import main


def test_help(capsys):
    assert main(["info", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Examples:" in out and "toolkit info --json" in out and "--root" in out


def test_info_on_this_machine(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for label in ("machine", "python", "jetson", "cuda", "tensorrt", "onnxruntime", "torch",
                  "backends"):
        assert any(line.startswith(label + " ") for line in out.splitlines()), label


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert set(facts) == {"machine", "jetson", "cuda_toolkit", "backends", "cpu_int8",
                          "install_checks"}
    assert facts["cpu_int8"]["form"] in ("u8s8", "u8s8-reduce-range")
    assert facts["machine"]["python"]


def test_info_of_a_jetson_nano_tree(tmp_path, capsys):
    assert main(["info", "--root", make_tree(tmp_path, "nano")]) == 0
    out = capsys.readouterr().out
    assert "jetson       NVIDIA Jetson Nano Developer Kit" in out
    assert "tegra210 (Jetson Nano / TX1, Maxwell GPU, compute capability 5.3; FP16 yes, INT8 no" in out
    assert "l4t          32.7.1 (JetPack 4.6.1)" in out


def test_info_says_which_int8_path_the_cpu_takes(tmp_path, capsys, monkeypatch):
    from engines import platform_info
    from tests.engines.test_cpu_int8 import EPYC_ZEN2, JETSON_NANO
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    for text, machine, want in (
            (EPYC_ZEN2, "x86_64", "cpu int8     x86 (AVX2 without VNNI): ONNX Runtime runs INT8 "
                                  "as u8s8-reduce-range"),
            (JETSON_NANO, "aarch64", "cpu int8     arm (no dot product (NEON widening "
                                     "multiplies)): ONNX Runtime runs INT8 as u8s8")):
        (root / "proc" / "cpuinfo").write_text(text)
        monkeypatch.setattr(platform_info.platform, "machine", lambda: machine)
        assert main(["info", "--root", str(root)]) == 0
        assert want in capsys.readouterr().out


def test_info_root_must_exist(tmp_path, capsys):
    assert main(["info", "--root", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_info_names_the_gpu_when_tensorrt_is_usable(monkeypatch, capsys):
    from tests.engines.trt_double import install_trt_double
    install_trt_double(monkeypatch, "8.2")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "tensorrt     8.2.1.8 (usable on NVIDIA Tegra X1 (compute capability 5.3))" in out
    assert "build        `toolkit build` makes TensorRT engines here" in out


def test_install_checks_show_what_to_fix():
    from toolkit.cli.cmd_info import install_check_lines
    lines = install_check_lines([
        {"name": "pip", "ok": True, "detail": "pip 21.3.1", "fix": None},
        {"name": "openblas", "ok": False, "detail": "numpy 1.19.5 on aarch64",
         "fix": "export OPENBLAS_CORETYPE=ARMV8"},
        {"name": "numpy", "ok": None, "detail": "no TensorRT: no check", "fix": None}])
    assert lines == ["check        ok   pip       pip 21.3.1",
                     "check        FIX  openblas  numpy 1.19.5 on aarch64",
                     "               fix: export OPENBLAS_CORETYPE=ARMV8",
                     "check        -    numpy     no TensorRT: no check"]
