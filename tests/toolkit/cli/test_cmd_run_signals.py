"""``toolkit run`` in a real child process, cut by SIGTERM or SIGHUP while it measures: its
report and predictions files are complete or absent (an older file stays as it was), it exits
with 128 + the signal's number, and its sampler process ends."""
import os
import signal
import subprocess
import sys

import pytest

from tests.processes import alive, child_env, children, wait_for
from tests.toolkit.cli.test_cmd_power_signals import ROOT
from tests.toolkit.cli.test_cmd_run import spec  # noqa: F401 - the fixture
from tests.toolkit.power.fakes import FakeJetson


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_run_cut_by_a_signal_leaves_no_cut_file(spec, tmp_path, signum):  # noqa: F811
    nano = FakeJetson(tmp_path / "nano", "nano")
    out = tmp_path / "out"
    out.mkdir()
    predictions, report = out / "p.csv", out / "r.json"
    predictions.write_text("an older run's predictions\n")
    child = subprocess.Popen(
        [sys.executable, "-m", "toolkit.cli.main", "run", spec, "--data", "digits:test",
         "--no-progress", "--power", "ina3221", "--power-sysfs-root", nano.root,
         "--idle-s", "60", "-o", str(predictions), "--json", str(report)],
        cwd=ROOT, env=child_env(ROOT), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, universal_newlines=True)
    try:
        assert wait_for(lambda: children(child.pid), 60)  # measuring: the sampler runs
        samplers = children(child.pid)
        child.send_signal(signum)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 128 + signum, err
    assert "terminated by " + signal.Signals(signum).name in err
    assert sorted(os.listdir(str(out))) == ["p.csv"]  # no report, no temporary file
    assert predictions.read_text() == "an older run's predictions\n"
    assert wait_for(lambda: not any(alive(pid) for pid in samplers), 10)
