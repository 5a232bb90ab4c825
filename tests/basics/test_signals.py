"""SIGTERM and SIGHUP unwind like Ctrl-C: an atomic write leaves the old file or none."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from basics.signals import Terminated, deferred_termination, install_termination_handlers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHILD = textwrap.dedent("""
    import sys, time
    from basics.fileio import atomic_open
    from basics.signals import Terminated, install_termination_handlers
    install_termination_handlers()
    try:
        with atomic_open(sys.argv[1], "w") as handle:
            handle.write("half a report")
            handle.flush()
            print("writing", flush=True)
            time.sleep(60)
            handle.write(" and its end")
    except Terminated as exc:
        sys.exit(128 + exc.signum)
""")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_an_atomic_write_leaves_no_file(tmp_path, signum):
    target = tmp_path / "report.json"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(target)], cwd=ROOT,
                             stdout=subprocess.PIPE, universal_newlines=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        assert len(os.listdir(str(tmp_path))) == 1  # the temporary file, being written
        child.send_signal(signum)
        assert child.wait(20) == 128 + signum
    finally:
        child.kill()
        child.stdout.close()
    assert os.listdir(str(tmp_path)) == []  # neither the report nor a temporary file


def test_handlers_raise_terminated_and_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    restore = install_termination_handlers()
    try:
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(Terminated) as info:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        assert isinstance(info.value, KeyboardInterrupt) and "SIGTERM" in str(info.value)
    finally:
        restore()
    assert signal.getsignal(signal.SIGTERM) == before


def test_deferred_termination_raises_at_the_end_of_the_block():
    restore = install_termination_handlers()
    done = []
    try:
        with pytest.raises(Terminated):
            with deferred_termination():
                os.kill(os.getpid(), signal.SIGHUP)
                time.sleep(0.05)
                done.append("the block ran to its end")
    finally:
        restore()
    assert done == ["the block ran to its end"]
