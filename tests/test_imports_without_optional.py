"""Every module imports and every command's ``--help`` works without the optional packages
(torch, onnxruntime, onnx, tensorrt, pycuda, cuda-python); a command that needs one of them says
in one line how to install it.

Each check runs in a fresh interpreter whose import system refuses the blocked packages (a
meta-path finder installed before anything else is imported), as on a Jetson without them.
"""
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

OPTIONAL = ("torch", "onnxruntime", "onnx", "tensorrt", "pycuda", "cuda")
DEVICE_PACKAGES = ("toolkit", "engines", "calibration", "energy_model", "basics")

BOOTSTRAP = r"""
import importlib.abc, json, os, sys
BLOCKED = set(sys.argv[1].split(","))

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError("No module named {!r}".format(name), name=name)
        return None

sys.meta_path.insert(0, Blocker())
sys.path.insert(0, os.getcwd())
action = sys.argv[2]
"""

IMPORT_ALL = BOOTSTRAP + r"""
import importlib, io, contextlib, traceback

def modules(package):
    for folder, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py") and name != "__main__.py":
                parts = os.path.join(folder, name)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                yield ".".join(parts)

result = {"imported": [], "failed": {}, "export": {}, "help": {}}
for package in sys.argv[3].split(","):
    for module in modules(package):
        try:
            importlib.import_module(module)
            result["imported"].append(module)
        except BaseException as exc:
            result["failed"][module] = traceback.format_exc(limit=3)
for module in modules("export"):
    try:
        importlib.import_module(module)
        result["export"][module] = None
    except BaseException as exc:
        result["export"][module] = "{}: {}".format(type(exc).__name__, exc)

from toolkit.cli.main import COMMANDS, main
for name, (module, _, _) in sorted(COMMANDS.items()):
    if importlib.util.find_spec(module) is None:
        continue
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([name, "--help"])
        except BaseException:
            code, err = "raised", io.StringIO(traceback.format_exc(limit=5))
    result["help"][name] = [code, out.getvalue(), err.getvalue()]
out = io.StringIO()
with contextlib.redirect_stdout(out):
    top = main(["--help"])
result["help"]["(top)"] = [top, out.getvalue(), ""]
print(json.dumps(result))
"""

RUN_COMMAND = BOOTSTRAP + r"""
from toolkit.cli.main import main
sys.exit(main(sys.argv[3:]))
"""


def _run(script, blocked, *args):
    return subprocess.run([sys.executable, "-c", script, ",".join(blocked)] + list(args),
                          cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120)


@pytest.fixture(scope="module")
def without_optional():
    proc = _run(IMPORT_ALL, OPTIONAL, "import", ",".join(DEVICE_PACKAGES))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_every_device_module_imports_without_optional_packages(without_optional):
    assert without_optional["failed"] == {}
    for module in ("engines.build", "engines.load", "engines.tensorrt_backend",
                   "toolkit.cli.cmd_bench", "calibration.datasets"):
        assert module in without_optional["imported"]


def test_export_modules_import_or_name_torch(without_optional):
    assert without_optional["export"], "no export modules found"
    for module, error in without_optional["export"].items():
        assert error is None or "torch" in error, (module, error)
    assert any(error is not None for error in without_optional["export"].values())


def test_every_command_help_works_without_optional_packages(without_optional):
    import importlib.util

    from toolkit.cli.main import COMMANDS
    helps = without_optional["help"]
    top_code, top_out, _ = helps.pop("(top)")
    assert top_code == 0 and "Commands:" in top_out
    assert set(helps) == {name for name, (module, _, _) in COMMANDS.items()
                          if importlib.util.find_spec(module) is not None}
    assert {"build", "bench", "info", "demo"} <= set(helps)
    for name, (code, out, err) in helps.items():
        assert code == 0, (name, err)
        assert out.startswith("Usage: toolkit {} ".format(name)), (name, out[:200])
        assert name in top_out


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    pytest.importorskip("onnx")
    from tests.engines.test_onnxruntime_backend import write_scale_model
    return write_scale_model(tmp_path_factory.mktemp("tiny") / "m.onnx")


@pytest.mark.parametrize("blocked, args, hint", [
    (("onnxruntime",), ["bench", "{onnx}"], "pip install onnxruntime"),
    (OPTIONAL, ["build", "{onnx}", "-o", "{tmp}/m.engine"], "pip install onnxruntime"),
    (("onnx", "tensorrt"), ["build", "{onnx}", "--precision", "fp16", "--backend", "onnxruntime",
                            "-o", "{tmp}/m.engine"], "pip install onnx"),
    (("tensorrt",), ["build", "{onnx}", "--backend", "tensorrt", "-o", "{tmp}/m.engine"],
     "TensorRT ships with JetPack"),
    (("torch",), ["demo", "--out", "{tmp}/demo"], "pip install 'jetson-trt-toolkit[host]'"),
])
def test_a_missing_dependency_is_one_actionable_line(tiny_onnx, tmp_path, blocked, args, hint):
    args = [a.format(onnx=tiny_onnx, tmp=str(tmp_path)) for a in args]
    proc = _run(RUN_COMMAND, blocked, "run", *args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and hint in lines[0], proc.stderr
    assert "is needed" in lines[0]


def test_info_works_with_nothing_optional(tmp_path):
    proc = _run(RUN_COMMAND, OPTIONAL, "run", "info")
    assert proc.returncode == 0, proc.stderr
    assert "onnxruntime  not installed" in proc.stdout
    assert "backends     none: pip install onnxruntime" in proc.stdout
