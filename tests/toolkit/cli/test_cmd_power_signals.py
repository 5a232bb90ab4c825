"""``toolkit power --record`` in a real child process, stopped by each signal: the recording is
streamed (readable while it runs and after SIGKILL), SIGTERM/SIGHUP/SIGINT end it cleanly (even
when SIGINT was inherited as ignored, as a background job of a script), and the sampler process
it spawned ends too."""
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.processes import alive, child_env, children, wait_for
from tests.toolkit.power.fakes import FakeJetson
from toolkit.power.tracefile import read_trace_csv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))


def _rows(path):
    try:
        with open(path) as handle:
            return sum(1 for line in handle if line[:1].isdigit())
    except (IOError, OSError):
        return 0


def _start(tmp_path, ignore_sigint=False, extra=()):
    jetson = FakeJetson(tmp_path / "nano", "nano")
    csv_path = str(tmp_path / "trace.csv")
    env = child_env(ROOT)
    preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    child = subprocess.Popen(
        [sys.executable, "-m", "toolkit.cli.main", "power", "--sysfs-root", jetson.root,
         "--rate-hz", "50", "--refresh-s", "0.2", "--record", csv_path] + list(extra),
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True, preexec_fn=preexec)
    assert wait_for(lambda: _rows(csv_path) >= 20, 60), child.communicate(timeout=5)
    return child, csv_path


@pytest.mark.parametrize("signum, ignore_sigint", [
    (signal.SIGTERM, False), (signal.SIGHUP, False), (signal.SIGINT, True)])
def test_signal_ends_the_recording_cleanly(tmp_path, signum, ignore_sigint):
    child, csv_path = _start(tmp_path, ignore_sigint)
    samplers = children(child.pid)
    assert samplers  # the sampler process
    child.send_signal(signum)
    try:
        out, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert "recorded" in out and "stopped after" in out
    trace, meta = read_trace_csv(csv_path)
    assert meta["end"]["samples"] == len(trace) >= 20 and not meta["cut_last_line"]
    assert meta["end"]["reason"] == ("interrupted" if signum == signal.SIGINT
                                     else "terminated by " + signal.Signals(signum).name)
    assert wait_for(lambda: not any(alive(pid) for pid in samplers), 10)


def test_sigkill_leaves_a_readable_recording_and_no_orphan(tmp_path):
    child, csv_path = _start(tmp_path)
    samplers = children(child.pid)
    assert samplers
    time.sleep(1.5)  # rows are flushed at least once a second
    seen = _rows(csv_path)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)
    trace, meta = read_trace_csv(csv_path)
    assert len(trace) >= seen >= 20 and "end" not in meta
    assert wait_for(lambda: not any(alive(pid) for pid in samplers), 10)


def test_duration_ends_the_recording(tmp_path):
    jetson = FakeJetson(tmp_path / "nano", "nano")
    csv_path = str(tmp_path / "trace.csv")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "toolkit.cli.main", "power", "--sysfs-root", jetson.root,
         "--rate-hz", "50", "--duration", "1.5", "--record", csv_path],
        cwd=ROOT, env=child_env(ROOT), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert done.returncode == 0, done.stderr
    trace, meta = read_trace_csv(csv_path)
    assert meta["end"]["reason"] == "completed"
    assert 1.0 <= trace.t[-1] <= time.monotonic() - started
