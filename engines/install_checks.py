"""Checks of a device install that `toolkit info` runs, each with what to do about a wrong one.

The Jetson pitfalls (docs/jetson.md): the venv's Python must be the one JetPack's TensorRT bindings
are built for; TensorRT <= 8.5 breaks under numpy 1.24 - 1.26 (``trt.nptype`` uses ``np.bool``);
numpy 1.19.5 on aarch64 dies with "Illegal instruction" unless ``OPENBLAS_CORETYPE=ARMV8``; a venv
sees JetPack's ``tensorrt`` only with ``--system-site-packages`` (or a link); pip older than 19.3
(Ubuntu 18.04's pip 9) does not see manylinux2014 wheels and compiles numpy and friends from
source; without the ``onnx`` package ``toolkit build`` makes engines without the confidence head.
:func:`run_checks` is a pure function of the facts it is given, so tests can feed any.
"""
import glob
import os
import sys

from basics.lazy import is_available

# JetPack major -> (Python of its TensorRT bindings, TensorRT, CUDA)
JETPACK_STACKS = {"4": ("3.6", "8.0.1 / 8.2.1", "10.2"), "5": ("3.8", "8.5.2", "11.4"),
                  "6": ("3.10", "8.6.2 / 10.3", "12.2 / 12.6")}
PIP_MANYLINUX2014 = (19, 3)


def _numbers(version, count=3):
    """``"1.19.5"`` -> ``(1, 19, 5)`` (missing or non-numeric parts are 0); None for None."""
    if not version:
        return None
    parts = []
    for part in str(version).split(".")[:count]:
        digits = ""
        for char in part:
            if not char.isdigit():
                break
            digits += char
        parts.append(int(digits or 0))
    return tuple(parts + [0] * (count - len(parts)))


def install_facts(root="/"):
    """The live facts the checks need beyond ``collect_info``'s: numpy and pip versions,
    OPENBLAS_CORETYPE, whether this is a venv and whether it sees the system site-packages, and
    where JetPack's ``tensorrt`` bindings are."""
    import numpy
    try:
        import pip
        pip_version = pip.__version__
    except Exception:  # noqa: BLE001 - a venv without pip
        pip_version = None
    in_venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
    system_site = None
    if in_venv:
        system_site = False
        try:
            with open(os.path.join(sys.prefix, "pyvenv.cfg")) as handle:
                for line in handle:
                    key, _, value = line.partition("=")
                    if key.strip() == "include-system-site-packages":
                        system_site = value.strip().lower() == "true"
        except (IOError, OSError):
            system_site = None
    pattern = os.path.join(root, "usr/lib/python3*/dist-packages/tensorrt")
    return {"numpy": numpy.__version__, "pip": pip_version,
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
            "in_venv": in_venv, "venv": sys.prefix if in_venv else None,
            "system_site_packages": system_site,
            "system_tensorrt": sorted(glob.glob(pattern)), "onnx": is_available("onnx")}


def _check(name, ok, detail, fix=None):
    return {"name": name, "ok": ok, "detail": detail, "fix": fix if not ok else None}


def run_checks(machine, jetson, backends, install):
    """``[{"name", "ok", "detail", "fix"}]``: ``ok`` True, False (``fix`` says what to do) or None
    (does not apply here). Inputs: ``collect_info``'s machine, jetson and backends, and
    :func:`install_facts`."""
    python = ".".join(machine["python"].split(".")[:2])
    numpy_version = _numbers(install["numpy"])
    trt = backends["tensorrt"]
    trt_version = _numbers(trt["version"]) if trt["installed"] else None
    jetpack = jetson.get("jetpack")
    stack = JETPACK_STACKS.get(jetpack.split(".")[0]) if jetpack else None
    checks = []
    # 1. the Python of JetPack's TensorRT bindings
    if stack is None:
        checks.append(_check("python", None, "Python {} (JetPack unknown: no check)".format(python)))
    else:
        checks.append(_check(
            "python", python == stack[0],
            "Python {}; JetPack {} ships TensorRT {} for Python {}".format(
                python, jetpack, stack[1], stack[0]),
            "make the venv from JetPack's /usr/bin/python3 (Python {}): /usr/bin/python3 -m venv "
            "--system-site-packages .venv".format(stack[0])))
    # 2. numpy vs TensorRT (trt.nptype of <= 8.5 uses np.bool, gone in numpy 1.24 - 1.26)
    if trt_version is None:
        checks.append(_check("numpy", None, "numpy {} (no TensorRT: no check)".format(
            install["numpy"])))
    else:
        broken = trt_version < (8, 6, 0) and (1, 24, 0) <= numpy_version < (2, 0, 0)
        checks.append(_check(
            "numpy", not broken,
            "numpy {} with TensorRT {}{}".format(
                install["numpy"], trt["version"],
                ": trt.nptype fails (np.bool); the toolkit maps types itself, other tools "
                "(polygraphy, NVIDIA's samples) break" if broken else ""),
            "pip install 'numpy<1.24' (requirements/jetson-jp5.txt pins it)"))
    # 3. numpy 1.19.5 on aarch64: "Illegal instruction" without OPENBLAS_CORETYPE=ARMV8
    if machine["arch"] in ("aarch64", "arm64") and numpy_version == (1, 19, 5):
        checks.append(_check(
            "openblas", bool(install["openblas_coretype"]),
            "numpy 1.19.5 on aarch64, OPENBLAS_CORETYPE={}".format(
                install["openblas_coretype"] or "unset"),
            "numpy 1.19.5 dies with 'Illegal instruction (core dumped)' on Jetson boards: "
            "export OPENBLAS_CORETYPE=ARMV8 (add it to ~/.bashrc; numpy 1.19.4 does not need it, "
            "but onnxruntime 1.9+ requires numpy >= 1.19.5)"))
    else:
        checks.append(_check("openblas", None, "numpy {} on {} (no check)".format(
            install["numpy"], machine["arch"])))
    # 4. tensorrt importable from this Python
    if trt["installed"]:
        checks.append(_check("tensorrt", True, "tensorrt {} imports".format(trt["version"])))
    elif jetson.get("is_jetson") or install["system_tensorrt"]:
        if install["in_venv"] and install["system_site_packages"] is False:
            fix = ("this venv ({}) hides the system site-packages where JetPack installs tensorrt: "
                   "recreate it with `python3 -m venv --system-site-packages`, or link the "
                   "bindings: ln -s {} {}".format(
                       install["venv"], " ".join(install["system_tensorrt"]) or
                       "/usr/lib/python{}/dist-packages/tensorrt*".format(python),
                       os.path.join(install["venv"] or ".venv", "lib",
                                    "python{}".format(python), "site-packages/")))
        else:
            fix = ("install JetPack's TensorRT bindings (sudo apt install python3-libnvinfer) "
                   "for Python {}".format(stack[0] if stack else python))
        checks.append(_check("tensorrt", False, "tensorrt does not import{}".format(
            " ({})".format(trt["error"]) if trt.get("error") else ""), fix))
    else:
        checks.append(_check("tensorrt", None, "not a Jetson, no system tensorrt (no check)"))
    # 5. pip new enough for manylinux2014 wheels
    pip_version = _numbers(install["pip"], 2)
    if pip_version is None:
        checks.append(_check("pip", None, "pip not installed here (no check)"))
    else:
        checks.append(_check(
            "pip", pip_version >= PIP_MANYLINUX2014, "pip {}".format(install["pip"]),
            "pip older than 19.3 does not see manylinux2014 wheels and builds numpy, onnxruntime "
            "... from source: python3 -m pip install --upgrade pip (first thing on JetPack 4)"))
    # 6. onnx, for the confidence head in TensorRT engines (engines/confidence_head.py)
    if trt["installed"] or jetson.get("is_jetson"):
        checks.append(_check(
            "onnx", bool(install.get("onnx")),
            "onnx {}: `toolkit build` {} the confidence head (softmax, top-1) in engines".format(
                *(("installed", "puts") if install.get("onnx") else ("missing", "leaves out"))),
            "python3 -m pip install onnx (requirements/jetson-jp4.txt and jetson-jp5.txt pin "
            "it); without it the host computes softmax, with the same answers"))
    else:
        checks.append(_check("onnx", None, "no TensorRT here (no check)"))
    return checks
