"""The CLI's main: SIGTERM and SIGHUP unwind through the command (its atomic writes leave the
old file or none) and exit with 128 + the signal's number."""
import os
import signal
import sys
import types

import click

from toolkit.cli import main as cli_main


def test_sigterm_during_a_command_unwinds_and_exits_143(monkeypatch, tmp_path, capsys):
    from basics.fileio import atomic_open
    report = tmp_path / "report.json"

    @click.command("slow")
    def slow():
        with atomic_open(str(report), "w") as handle:
            handle.write("half")
            os.kill(os.getpid(), signal.SIGTERM)
            handle.write(" and the rest")

    module = types.ModuleType("fake_slow_command")
    module.slow = slow
    monkeypatch.setitem(sys.modules, "fake_slow_command", module)
    monkeypatch.setitem(cli_main.COMMANDS, "slow", ("fake_slow_command", "slow", "a test"))
    before = signal.getsignal(signal.SIGTERM)
    assert cli_main.main(["slow"]) == 128 + signal.SIGTERM
    assert "terminated by SIGTERM" in capsys.readouterr().err
    assert os.listdir(str(tmp_path)) == []  # no report, no temporary file
    assert signal.getsignal(signal.SIGTERM) == before  # handlers put back after main
