"""INT8 on a real x86-64 without VNNI: the product's path run under ``qemu-x86_64 -cpu Haswell-v4``
(AVX2, FMA, no AVX-512, no VNNI; QEMU's TCG executes the instructions ONNX Runtime picks by CPUID,
VPMADDUBSW's saturating 16-bit sums included). Under user-mode emulation ``/proc/cpuinfo`` still
describes the host, so this also checks that the toolkit follows CPUID where the two disagree.

Skips where qemu-x86_64 is missing or the machine is not x86-64, except where
``TOOLKIT_REQUIRE_QEMU=1`` (``.ci/run`` sets it once qemu-user is installed): then it fails.
The same product path on an emulated Cortex-A57 (the Jetson Nano's CPU), with JetPack 4.6's and
5.1's libraries, runs where ``make test-arm64`` has set up their arm64 Pythons in
build/arm64-jp4 and build/arm64-jp5, and skips elsewhere.
"""
import json
import os
import platform
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.processes import child_env

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime.quantization")

CPU = "Haswell-v4"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _qemu():
    qemu = shutil.which("qemu-x86_64")
    reason = None
    if platform.machine().lower() not in ("x86_64", "amd64"):
        reason = "not an x86-64 machine"
    elif qemu is None:
        reason = "qemu-x86_64 is not installed (Debian: apt-get install qemu-user)"
    if reason is not None:
        if os.environ.get("TOOLKIT_REQUIRE_QEMU") == "1":
            pytest.fail("TOOLKIT_REQUIRE_QEMU=1 but " + reason)
        pytest.skip(reason)
    return qemu


@pytest.fixture(scope="module")
def int8_files(qdq_model, small_cnn_onnx, digits_splits, tmp_path_factory):
    """small_cnn's Q/DQ model, its full-range u8s8 form, an INT8 engine built here where this CPU
    does not saturate 8-bit weights itself ("" elsewhere), the test split as .npz, and the fp32
    test accuracy measured here."""
    import onnx

    from engines.build import build_engine
    from engines.build_config import BuildConfig
    from engines.cpu_int8 import CpuInt8Path, cpu_form, this_cpu_int8_path
    from engines.int8_gate import Int8Gate
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    folder = tmp_path_factory.mktemp("emulated")
    train, _, test = digits_splits
    qdq = qdq_model
    u8s8 = str(folder / "small.u8s8.onnx")
    onnx.save(cpu_form(onnx.load(qdq), CpuInt8Path("x86", "VNNI", "u8s8", "")), u8s8)
    engine = ""
    if not this_cpu_int8_path().reduce_range:  # built here, with VNNI (or ARM): the u8s8 form
        engine = str(folder / "small.int8.engine")
        build_engine(qdq, engine, BuildConfig(precision="int8", backend="onnxruntime"),
                     Int8Gate(train.images[:256]))
    data = str(folder / "test.npz")
    np.savez(data, images=test.images, labels=test.labels)
    with OnnxRuntimeEngine(small_cnn_onnx, threads=1) as fp32:
        name = fp32.outputs[0].name
        fp32_accuracy = float(np.mean(fp32.infer({"input": test.images})[name].argmax(1)
                                      == test.labels))
    return {"args": [data, qdq, u8s8, engine], "fp32": fp32_accuracy}


def _run_forms(python, files, env):
    """tests/engines/int8_forms_run.py run by ``python`` (a command list) on ``files``."""
    run = subprocess.run(python + ["-m", "tests.engines.int8_forms_run"] + files["args"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=900, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    result["fp32"] = files["fp32"]
    return result


@pytest.fixture(scope="module")
def emulated(int8_files):
    """What the product does with small_cnn's INT8 model on the emulated x86-64 without VNNI."""
    qemu = _qemu()
    return _run_forms([qemu, "-cpu", CPU, sys.executable], int8_files,
                      child_env(ROOT, OMP_NUM_THREADS="1"))


@pytest.fixture(scope="module", params=[("jp4", "3.9"), ("jp5", "3.11")],
                ids=["jetpack4.6-libraries", "jetpack5.1-libraries"])
def emulated_arm64(request, int8_files):
    """The same on an emulated Cortex-A57 (the Jetson Nano's CPU), with the arm64 Python and one
    JetPack's libraries that `make test-arm64` sets up in build/arm64-SET (skips without them)."""
    name, version = request.param
    folder = os.path.join(ROOT, "build", "arm64-" + name)
    python = os.path.join(folder, "root", "usr", "bin", "python" + version)
    qemu = shutil.which("qemu-aarch64")
    if qemu is None or not os.path.isfile(os.path.join(folder, "site", ".stamp")) \
            or not os.path.isfile(python):
        pytest.skip("needs qemu-aarch64 and the arm64 Python of `make test-arm64-{}` ({})".format(
            name, folder))
    env = child_env(ROOT, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] += os.pathsep + os.path.join(folder, "site")
    return _run_forms([qemu, "-cpu", "cortex-a57", "-L", os.path.join(folder, "root"), python],
                      int8_files, env)


def test_the_emulated_cpu_saturates_the_full_range_form(emulated):
    """The premise: on this CPU the 8-bit-weight form loses most of its accuracy (else the test
    below would prove nothing)."""
    assert emulated["fp32"] - emulated["u8s8"] >= 0.10, emulated


def test_the_product_gives_an_avx2_cpu_the_7_bit_form_and_keeps_the_accuracy(emulated):
    from engines.int8_gate import MAX_ACCURACY_DROP
    form = emulated["form"]
    assert form["form"] == "u8s8-reduce-range" and form["instructions"] == "AVX2 without VNNI"
    assert "CPUID taken" in form["reason"]  # /proc/cpuinfo still shows the host's VNNI
    assert 100.0 * (emulated["fp32"] - emulated["product"]) <= MAX_ACCURACY_DROP, emulated


def test_an_int8_engine_built_on_a_vnni_cpu_is_refused_in_one_line(emulated):
    from tests.engines.test_cpu_int8 import skip_without_vnni
    skip_without_vnni()
    message = emulated["engine"]
    assert message.startswith("EngineCompatibilityError: ") and "\n" not in message
    assert "would saturate them" in message and "AVX2 without VNNI" in message


def test_the_product_gives_a_jetson_nano_cpu_8_bit_weights_and_keeps_the_accuracy(
        emulated_arm64):
    """ARM's integer kernels add in 32 bits: the u8s8 form, 8-bit weights, keeps the accuracy on
    a Cortex-A57 without the dot product (NEON widening multiplies)."""
    from engines.int8_gate import MAX_ACCURACY_DROP
    form = emulated_arm64["form"]
    assert (form["arch"], form["form"]) == ("arm", "u8s8")
    assert 100.0 * (emulated_arm64["fp32"] - emulated_arm64["product"]) <= MAX_ACCURACY_DROP
    assert emulated_arm64["u8s8"] == emulated_arm64["product"], emulated_arm64

