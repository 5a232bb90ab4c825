"""`toolkit info`'s install checks (engines/install_checks.py): each wrong setting of a Jetson
install is found and comes with what to do about it."""
import pytest

from engines.install_checks import install_facts, run_checks

MACHINE = {"python": "3.6.9", "arch": "aarch64"}
NANO = {"is_jetson": True, "jetpack": "4.6.1"}
ORIN5 = {"is_jetson": True, "jetpack": "5.1.2"}


def _backends(version=None, error=None):
    return {"tensorrt": {"installed": version is not None, "version": version, "error": error}}


def _install(**changes):
    install = {"numpy": "1.19.4", "pip": "21.3.1", "openblas_coretype": None, "in_venv": True,
               "venv": "/home/nano/.venv", "system_site_packages": True,
               "system_tensorrt": ["/usr/lib/python3.6/dist-packages/tensorrt"], "onnx": True}
    install.update(changes)
    return install


def _by_name(checks):
    return {check["name"]: check for check in checks}


def test_a_good_nano_install_passes_every_check():
    checks = _by_name(run_checks(MACHINE, NANO, _backends("8.2.1.8"), _install()))
    assert [checks[n]["ok"] for n in ("python", "numpy", "tensorrt", "pip")] == [True] * 4
    assert checks["openblas"]["ok"] is None  # numpy 1.19.4: no OPENBLAS_CORETYPE needed
    assert all(check["fix"] is None for check in checks.values())


def test_python_other_than_jetpacks():
    checks = _by_name(run_checks(dict(MACHINE, python="3.9.18"), NANO, _backends(None),
                                 _install(system_site_packages=False)))
    assert checks["python"]["ok"] is False
    assert "JetPack 4.6.1 ships TensorRT 8.0.1 / 8.2.1 for Python 3.6" in checks["python"]["detail"]
    assert "/usr/bin/python3 -m venv --system-site-packages" in checks["python"]["fix"]


def test_numpy_1_24_with_tensorrt_8_5():
    checks = _by_name(run_checks(dict(MACHINE, python="3.8.10"), ORIN5, _backends("8.5.2.2"),
                                 _install(numpy="1.24.4")))
    assert checks["numpy"]["ok"] is False and "np.bool" in checks["numpy"]["detail"]
    assert "numpy<1.24" in checks["numpy"]["fix"]
    fixed = run_checks(dict(MACHINE, python="3.8.10"), ORIN5, _backends("8.6.2"),
                       _install(numpy="1.24.4"))
    assert _by_name(fixed)["numpy"]["ok"] is True  # fixed in TensorRT 8.6


@pytest.mark.parametrize("coretype, ok", [(None, False), ("ARMV8", True)])
def test_numpy_1_19_5_on_aarch64_needs_openblas_coretype(coretype, ok):
    checks = _by_name(run_checks(MACHINE, NANO, _backends("8.2.1.8"),
                                 _install(numpy="1.19.5", openblas_coretype=coretype)))
    assert checks["openblas"]["ok"] is ok
    if not ok:
        assert "OPENBLAS_CORETYPE=ARMV8" in checks["openblas"]["fix"]
        assert "numpy==1.19.4" not in checks["openblas"]["fix"]  # onnxruntime needs 1.19.5
    x86 = run_checks(dict(MACHINE, arch="x86_64"), {"is_jetson": False}, _backends(None),
                     _install(numpy="1.19.5", system_tensorrt=[]))
    assert _by_name(x86)["openblas"]["ok"] is None


def test_a_venv_that_hides_jetpacks_tensorrt():
    checks = _by_name(run_checks(MACHINE, NANO, _backends(None),
                                 _install(system_site_packages=False)))
    fix = checks["tensorrt"]["fix"]
    assert checks["tensorrt"]["ok"] is False
    assert "--system-site-packages" in fix
    assert "ln -s /usr/lib/python3.6/dist-packages/tensorrt" in fix
    assert "/home/nano/.venv/lib/python3.6/site-packages/" in fix
    no_bindings = _by_name(run_checks(MACHINE, NANO, _backends(None), _install(in_venv=False)))
    assert "python3-libnvinfer" in no_bindings["tensorrt"]["fix"]


def test_old_pip_misses_manylinux2014_wheels():
    checks = _by_name(run_checks(MACHINE, NANO, _backends("8.2.1.8"), _install(pip="9.0.1")))
    assert checks["pip"]["ok"] is False and "--upgrade pip" in checks["pip"]["fix"]
    assert _by_name(run_checks(MACHINE, NANO, _backends("8.2.1.8"), _install(pip="19.3")))[
        "pip"]["ok"] is True


def test_install_facts_of_this_python(tmp_path):
    facts = install_facts(str(tmp_path))
    assert facts["numpy"] and facts["system_tensorrt"] == []
    assert facts["in_venv"] in (True, False)
    (tmp_path / "usr/lib/python3.6/dist-packages/tensorrt").mkdir(parents=True)
    assert install_facts(str(tmp_path))["system_tensorrt"] == [
        str(tmp_path / "usr/lib/python3.6/dist-packages/tensorrt")]


@pytest.mark.parametrize("onnx, ok", [(True, True), (False, False)])
def test_onnx_is_checked_where_engines_are_built(onnx, ok):
    checks = _by_name(run_checks(MACHINE, NANO, _backends("8.2.1.8"), _install(onnx=onnx)))
    assert checks["onnx"]["ok"] is ok
    assert ("puts the confidence head" in checks["onnx"]["detail"]) is ok
    if not ok:
        assert "pip install onnx" in checks["onnx"]["fix"]
    x86 = run_checks(dict(MACHINE, arch="x86_64"), {"is_jetson": False}, _backends(None),
                     _install(onnx=False, system_tensorrt=[]))
    assert _by_name(x86)["onnx"]["ok"] is None


def test_install_facts_say_whether_onnx_imports():
    import importlib.util
    assert install_facts()["onnx"] is (importlib.util.find_spec("onnx") is not None)
