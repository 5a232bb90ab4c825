"""benchmarks/run_all.py: discovers the benchmarks, runs each in a subprocess, fails if one did."""
import os
import sys

import pytest

from benchmarks import run_all
from tests.conftest import REPO_ROOT

FAKE = {
    "__init__.py": "",
    "a_ok.py": "import sys\nprint('a ran with', sys.argv[1:])\n",
    "b_fails.py": "import sys\nprint('b ran')\nsys.exit(3)\n",
    "c_ok.py": "print('c ran')\n",
    "_helper.py": "raise SystemExit('helpers are not benchmarks')\n",
    "run_all.py": "raise SystemExit('run_all must not run itself')\n",
    "notes.txt": "not a module\n",
}


@pytest.fixture
def fake_benchmarks(tmp_path):
    folder = tmp_path / "fakebench"
    folder.mkdir()
    for name, text in FAKE.items():
        (folder / name).write_text(text)
    return str(folder)


def test_discover_skips_itself_init_and_helpers(fake_benchmarks):
    assert run_all.discover(fake_benchmarks) == ["a_ok", "b_fails", "c_ok"]
    found = run_all.discover()
    assert "run_all" not in found and "__init__" not in found and "engine_overhead" in found
    assert all(os.path.isfile(os.path.join(REPO_ROOT, "benchmarks", n + ".py")) for n in found)


def test_runs_all_in_order_and_fails_if_one_failed(fake_benchmarks, capfd):
    code = run_all.main(["--quick"], folder=fake_benchmarks, package="fakebench")
    out = capfd.readouterr().out
    assert code == 1
    assert "a ran with ['--quick']" in out and "b ran" in out and "c ran" in out  # went on
    assert out.index("a ran") < out.index("b ran") < out.index("c ran")
    assert "=== fakebench.b_fails: FAILED (exit status 3)" in out
    assert "=== fakebench.a_ok: ok in " in out
    assert out.rstrip().endswith("=== 3 benchmark(s) run, 1 failed: b_fails")
    assert "helpers are not" not in out and "must not run itself" not in out


def test_names_select_and_unknown_names_are_refused(fake_benchmarks, capfd):
    assert run_all.main(["a_ok", "c_ok"], folder=fake_benchmarks, package="fakebench") == 0
    out = capfd.readouterr().out
    assert "a ran with []" in out and "b ran" not in out
    assert out.rstrip().endswith("=== 2 benchmark(s) run, 0 failed")
    with pytest.raises(SystemExit) as info:
        run_all.main(["nope"], folder=fake_benchmarks, package="fakebench")
    assert info.value.code == 2
    assert "unknown benchmark(s) nope; there are: a_ok, b_fails, c_ok" in capfd.readouterr().err


def test_the_makefile_target_names_this_module():
    with open(os.path.join(REPO_ROOT, "Makefile")) as handle:
        assert "$(BIN)/python -m benchmarks.run_all" in handle.read()
    assert sys.modules["benchmarks.run_all"].__file__.endswith(os.path.join("benchmarks",
                                                                            "run_all.py"))
