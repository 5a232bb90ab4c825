"""Fixtures of the power tests: fake Jetson sysfs trees and a fake tegrastats."""
import os
import stat
import sys

import pytest

from tests.toolkit.power.fakes import FAKES, FakeJetson

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")

_TEGRASTATS = r'''#!{python}
import sys, time
lines = [l for l in open({fixture!r}).read().splitlines() if l.strip()]
interval = int(sys.argv[sys.argv.index("--interval") + 1]) / 1000.0
limit = {limit}
count = 0
while limit is None or count < limit:
    sys.stdout.write(lines[count % len(lines)] + "\n")
    sys.stdout.flush()
    count += 1
    time.sleep(interval)
'''


@pytest.fixture(params=sorted(FAKES))
def fake_jetson(tmp_path, request):
    """A fake sysfs tree of each board of the table in turn (``.root``, ``.set(...)``)."""
    return FakeJetson(tmp_path / request.param, request.param)


@pytest.fixture
def make_jetson(tmp_path):
    """Factory: ``make_jetson("nano")`` -> FakeJetson under tmp_path."""
    def make(board):
        return FakeJetson(tmp_path / board, board)
    return make


@pytest.fixture
def fake_tegrastats(tmp_path):
    """Factory: ``fake_tegrastats("tegrastats_jetpack5.txt", limit=None)`` -> path of an
    executable that prints the fixture's lines every ``--interval`` ms (``limit`` lines)."""
    def make(fixture, limit=None):
        path = tmp_path / "tegrastats-{}".format(len(os.listdir(str(tmp_path))))
        path.write_text(_TEGRASTATS.format(python=sys.executable,
                                           fixture=os.path.join(FIXTURES, fixture), limit=limit))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
        return str(path)
    return make


def fixture_lines(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return [line for line in handle.read().splitlines() if line.strip()]
