"""engines/ sits under calibration/: no module of engines imports calibration (or anything above
it), not even inside a function (the TensorRT calibrator lives beside the builder)."""
import ast
import os

from tests.conftest import REPO_ROOT

ABOVE = ("calibration", "export", "toolkit", "benchmarks")


def upward_imports(path):
    """``[(line, module)]`` of imports of a package above engines in the file at ``path``."""
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.extend((node.lineno, name) for name in names if name.split(".")[0] in ABOVE)
    return found


def test_engines_imports_nothing_above_it():
    folder = os.path.join(REPO_ROOT, "engines")
    problems = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            problems.extend("engines/{}:{} imports {}".format(name, line, module)
                            for line, module in upward_imports(os.path.join(folder, name)))
    assert problems == []


def test_the_scan_finds_an_import_inside_a_function(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from calibration.trt_calibrator import make_calibrator\n"
                    "import toolkit.deploy\nfrom engines import base\n")
    assert sorted(upward_imports(str(path))) == [(2, "calibration.trt_calibrator"),
                                                 (3, "toolkit.deploy")]
