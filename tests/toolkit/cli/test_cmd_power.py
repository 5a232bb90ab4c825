"""``toolkit power``: live view, recording, plotting, listing, and its one-line errors."""
import pytest

from tests.toolkit.power.fakes import FakeJetson, make_fake_rapl
from toolkit.cli.main import main


@pytest.fixture
def nano(tmp_path):
    return FakeJetson(tmp_path / "nano", "nano")


def test_help_explains_with_examples(capsys):
    assert main(["power", "--help"]) == 0
    out = capsys.readouterr().out
    for text in ("Examples:", "--record trace.csv", "--from trace.csv", "--power-sysfs-root",
                 "--power-rate-hz", "--duration", "INA3221"):
        assert text in out


def test_live_view_records_and_plots(nano, tmp_path, capsys):
    pytest.importorskip("matplotlib")  # --plot (not on the device)
    csv_path, png_path = tmp_path / "trace.csv", tmp_path / "trace.png"
    code = main(["power", "--power-sysfs-root", nano.root, "--duration", "0.6", "--refresh-s", "0.2",
                 "--record", str(csv_path), "--plot", str(png_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "POM_5V_IN*" in out and "TOTAL" in out and "\x1b[" not in out  # plain lines: no TTY
    assert "total (POM_5V_IN):" in out and "recorded" in out
    assert csv_path.read_text().startswith("# toolkit power trace v1")
    assert png_path.read_bytes()[:4] == b"\x89PNG"
    # the voltage and current columns are shown on JetPack 4 too
    row = [line for line in out.splitlines() if line.startswith("POM_5V_IN*")][0]
    assert row.split()[1:3] == ["5072", "400"]
    assert main(["power", "--plot", str(tmp_path / "again.png"), "--from", str(csv_path)]) == 0
    assert (tmp_path / "again.png").exists()


def test_list_says_what_works_and_why_not(tmp_path, capsys):
    make_fake_rapl(tmp_path)
    assert main(["power", "--list", "--power-sysfs-root", str(tmp_path),
                 "--tegrastats-cmd", "no-such-tegrastats"]) == 0
    out = capsys.readouterr().out
    assert "ina3221     no: no INA3221 rails found" in out
    assert "rapl        works: RAPL" in out and "total = package-0" in out


@pytest.mark.parametrize("args, message", [
    (["--duration", "0"], "--duration must be positive"),
    (["--refresh-s", "-1"], "--refresh-s must be positive"),
    (["--power-rate-hz", "0"], "sampling rate must be between"),
    (["--from", "x.csv"], "--from reads a recording to plot: give --plot"),
    (["--from", "x.csv", "--plot", "x.png", "--duration", "3"], "cannot be combined"),
    (["--from", "missing.csv", "--plot", "x.png"], "no such trace file"),
])
def test_bad_options_are_one_line_errors(nano, args, message, capsys):
    assert main(["power", "--power-sysfs-root", nano.root] + args) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_no_source_found_says_where_it_looked(tmp_path, capsys):
    assert main(["power", "--power", "ina3221", "--power-sysfs-root", str(tmp_path),
                 "--duration", "1"]) == 1
    err = capsys.readouterr().err
    assert "no INA3221 rails found under" in err and "ina3221x" in err
    assert main(["power", "--power-sysfs-root", str(tmp_path), "--duration", "1",
                 "--tegrastats-cmd", "no-such-tegrastats"]) == 1
    assert "no power source works here" in capsys.readouterr().err


def test_sampling_that_breaks_is_an_error_after_writing_the_recording(nano, tmp_path, capsys):
    import threading
    import time

    def break_a_rail():
        time.sleep(0.5)
        with open(nano.rails["POM_5V_GPU"]["power"], "w") as handle:
            handle.write("???\n")

    breaker = threading.Thread(target=break_a_rail)
    breaker.start()
    csv_path = tmp_path / "partial.csv"
    code = main(["power", "--power-sysfs-root", nano.root, "--duration", "3", "--refresh-s", "0.1",
                 "--record", str(csv_path)])
    breaker.join()
    captured = capsys.readouterr()
    assert code == 1
    assert "power sampling stopped early: malformed value in" in captured.err
    assert "in_power1_input" in captured.err and csv_path.exists()


def test_a_recording_that_cannot_start_leaves_no_file(nano, tmp_path, capsys, monkeypatch):
    from basics.errors import ToolkitError
    from toolkit.power import sampler

    def fail(self):
        raise ToolkitError("the power sampler did not start within 60 s")

    monkeypatch.setattr(sampler.Sampler, "start", fail)
    csv_path = tmp_path / "never.csv"
    assert main(["power", "--sysfs-root", nano.root, "--duration", "1",
                 "--record", str(csv_path)]) == 1
    assert "did not start" in capsys.readouterr().err and not csv_path.exists()
