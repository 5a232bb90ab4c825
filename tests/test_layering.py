"""Imports run one way: basics -> engines -> calibration / energy_model -> export / the toolkit's
runtime -> the CLI (toolkit.cli) -> benchmarks. Every import of every module is read (with ast,
imports inside functions included): no upward arrow, no import between siblings, hence no cycle
between packages."""
import ast
import os

from tests.conftest import REPO_ROOT

#: layer of each package; a module may import its own package and packages of a lower layer only
LAYERS = {"basics": 0, "engines": 1, "calibration": 2, "energy_model": 2, "export": 3,
          "toolkit": 3, "toolkit.cli": 4, "benchmarks": 5}

def package_of(module):
    """The layered package a dotted module name belongs to (None: not ours)."""
    parts = module.split(".")
    if parts[0] == "toolkit" and len(parts) > 1 and parts[1] in ("cli", "__main__"):
        return "toolkit.cli"
    return parts[0] if parts[0] in LAYERS else None


def imports_of(path):
    """Every absolute module name imported anywhere in the file (functions included)."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, node.lineno


def arrows():
    """``(module, imported module, line)`` for every import between two layered packages."""
    found = []
    for package in ("basics", "engines", "calibration", "energy_model", "export", "toolkit",
                    "benchmarks"):
        for folder, dirs, files in os.walk(os.path.join(REPO_ROOT, package)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                module = os.path.relpath(path, REPO_ROOT)[:-3].replace(os.sep, ".")
                for imported, line in imports_of(path):
                    if package_of(imported) is not None:
                        found.append((module, imported, line))
    return found


def test_imports_only_go_down_the_layers():
    wrong = []
    for module, imported, line in arrows():
        source, target = package_of(module), package_of(imported)
        if source == target or LAYERS[target] < LAYERS[source]:
            continue
        wrong.append("{}:{} imports {} ({} -> {})".format(module, line, imported, source, target))
    assert not wrong, "upward or sideways imports:\n" + "\n".join(wrong)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    path = tmp_path / "sample.py"
    path.write_text("def f():\n    from toolkit.cli import main\n    import engines.base\n")
    assert sorted(imports_of(str(path))) == [("engines.base", 3), ("toolkit.cli", 2)]
    assert package_of("toolkit.cli.cmd_run") == "toolkit.cli"
    assert package_of("toolkit.deployment") == "toolkit"
