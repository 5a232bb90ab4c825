"""What this machine is: Jetson board, SoC and L4T release, OS, Python, and the usable backends.

The Jetson facts are a pure function of a root path (``jetson_facts(root)``) so tests build fake
``/proc/device-tree`` and ``/etc/nv_tegra_release`` trees; the boards, SoCs and releases come from
the one board table, :mod:`engines.boards`; :func:`collect_info` adds the live facts
(OS, Python, installed packages) for ``toolkit info``.
"""
import importlib
import importlib.util
import json
import os
import platform
import re
import sys

from basics import __version__
from engines.boards import JETPACK_OF_L4T, SOCS, TENSORRT_OF_L4T, board_of, read_device_tree

__all__ = ["JETPACK_OF_L4T", "SOCS", "collect_info", "cuda_toolkit_version", "jetson_facts",
           "os_facts", "parse_nv_tegra_release"]

_RELEASE = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([0-9.]+)")


def _read(root, relative):
    """Text of ``root/relative`` (NULs kept), or None when it is missing or unreadable."""
    path = os.path.join(root, relative.lstrip("/"))
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except (IOError, OSError):
        return None


def parse_nv_tegra_release(text):
    """``'# R32 (release), REVISION: 7.1, GCID: ...'`` -> ``'32.7.1'`` (None if not such a line)."""
    match = _RELEASE.search(text or "")
    if not match:
        return None
    revision = match.group(2).strip(".")
    if revision.count(".") == 0:
        revision += ".0"
    return "{}.{}".format(match.group(1), revision)


def jetson_facts(root="/"):
    """Jetson facts under ``root``: is_jetson, model, compatible, soc (+ its SOCS entry), board
    (from the one board table, :mod:`engines.boards`), l4t, jetpack, tensorrt (the version that
    JetPack ships)."""
    tree = read_device_tree(root)
    soc = tree.soc
    board = board_of(tree)
    l4t = parse_nv_tegra_release(_read(root, "/etc/nv_tegra_release"))
    is_jetson = soc is not None or l4t is not None or bool(
        tree.model and "jetson" in tree.model.lower())
    facts = {"is_jetson": is_jetson, "model": tree.model, "compatible": tree.compatible,
             "soc": soc, "board": board.name if board is not None else None, "l4t": l4t,
             "jetpack": JETPACK_OF_L4T.get(l4t) if l4t else None,
             "tensorrt": TENSORRT_OF_L4T.get(l4t) if l4t else None}
    if soc is not None:
        facts.update(SOCS[soc])
    return facts


def cuda_toolkit_version(root="/"):
    """CUDA toolkit version from ``/usr/local/cuda/version.json`` (11+) or ``version.txt`` (10.x)."""
    text = _read(root, "/usr/local/cuda/version.json")
    if text:
        try:
            return str(json.loads(text)["cuda"]["version"])
        except (ValueError, KeyError, TypeError):
            pass
    text = _read(root, "/usr/local/cuda/version.txt")
    match = re.search(r"CUDA Version\s+([0-9.]+)", text or "")
    return match.group(1) if match else None


def os_facts(root="/"):
    """OS name (``/etc/os-release`` PRETTY_NAME), kernel, architecture, CPUs, memory, Python."""
    pretty = None
    for line in (_read(root, "/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            pretty = line.split("=", 1)[1].strip().strip('"')
    memory_mb = None
    match = re.search(r"MemTotal:\s+(\d+)\s*kB", _read(root, "/proc/meminfo") or "")
    if match:
        memory_mb = int(match.group(1)) // 1024
    return {"system": platform.system(), "os": pretty, "kernel": platform.release(),
            "arch": platform.machine(), "cpus": os.cpu_count(), "memory_mb": memory_mb,
            "python": platform.python_version(), "python_executable": sys.executable,
            "toolkit": __version__}


def module_version(name, attrs=("__version__",)):
    """``(installed, version or None, error or None)`` of module ``name`` (imported here)."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        return False, None, None
    except Exception as exc:  # noqa: BLE001 - a broken install: report it, do not crash `info`
        return False, None, error_text(exc)
    for attr in attrs:
        value = getattr(module, attr, None)
        if value is not None:
            return True, str(value), None
    return True, None, None


def backend_facts():
    """Which backends are usable and their versions: TensorRT, ONNX Runtime (+ providers), CUDA
    bindings (pycuda, cuda-python), onnx and torch."""
    from engines.backends import all_backends
    facts = {backend.name: backend.info() for backend in all_backends()}
    installed, version, error = module_version("pycuda", ("VERSION_TEXT", "__version__"))
    facts["pycuda"] = {"installed": installed, "version": version, "error": error}
    installed, version, error = module_version("cuda")
    if installed and version is None:
        version = module_version("cuda.bindings")[1]
    facts["cuda_python"] = {"installed": installed, "version": version, "error": error}
    installed, version, error = module_version("onnx")
    facts["onnx"] = {"installed": installed, "version": version, "error": error}
    version = _torch_version()
    facts["torch"] = {"installed": version is not None, "version": version, "error": None}
    return facts


def _torch_version():
    """torch's version read from ``torch/version.py`` without importing torch (seconds on a Nano)."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        text = _read(folder, "version.py") or ""
        match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
        if match:
            return match.group(1)
    return "unknown"


def error_text(exc):
    text = str(exc).strip()
    return "{}: {}".format(type(exc).__name__, text.splitlines()[0]) if text else type(exc).__name__


def collect_info(root="/"):
    """Everything ``toolkit info`` shows, as a JSON-ready dict."""
    from engines import install_checks
    from engines.cpu_int8 import cpuid_features, int8_path
    cpuid = cpuid_features() if root == "/" else None  # a fake tree describes another machine
    facts = {"machine": os_facts(root), "jetson": jetson_facts(root),
             "cuda_toolkit": cuda_toolkit_version(root), "backends": backend_facts(),
             "cpu_int8": int8_path(_read(root, "/proc/cpuinfo"), platform.machine(),
                                   cpuid).to_dict()}
    facts["install_checks"] = install_checks.run_checks(
        facts["machine"], facts["jetson"], facts["backends"], install_checks.install_facts(root))
    return facts
