import numpy as np
import pytest

from basics.errors import InputError
from toolkit.power.boards import TotalPolicy
from toolkit.power.energy import Trace
from toolkit.power.tracefile import MAGIC, plot_trace, read_trace_csv, write_trace_csv

INFO = {"source": "ina3221", "description": "fake", "board": "Jetson Nano",
        "policy": TotalPolicy("POM_5V_IN", parts=["POM_5V_GPU"]).to_dict(), "averaging_s": 0.42}


def _trace():
    trace = Trace([("POM_5V_IN", "power_mw"), ("POM_5V_IN", "voltage_mv"),
                   ("POM_5V_GPU", "power_mw")])
    t = 1000.0 + np.arange(50) * 0.01
    trace.append(t, np.stack([2000 + 10 * np.arange(50), np.full(50, 5072.0),
                              np.full(50, 120.0)], axis=1))
    return trace


def test_csv_round_trip_keeps_samples_and_total(tmp_path):
    path = str(tmp_path / "trace.csv")
    trace = _trace()
    write_trace_csv(path, trace, INFO)
    back, meta = read_trace_csv(path)
    assert back.columns == trace.columns and len(back) == 50
    assert back.t[0] == 0.0 and back.t[-1] == pytest.approx(0.49)
    assert back.energy_mj("POM_5V_IN", 0.0, 0.49) == pytest.approx(
        trace.energy_mj("POM_5V_IN", 1000.0, 1000.49), rel=1e-6)
    assert meta["policy"]["total"] == "POM_5V_IN" and meta["board"] == "Jetson Nano"


def test_counters_are_written_unwrapped(tmp_path):
    trace = Trace([("package-0", "energy_mj")], wraps={"package-0": 100.0})
    trace.append([0.0, 1.0, 2.0], [[90.0], [40.0], [90.0]])
    path = str(tmp_path / "rapl.csv")
    write_trace_csv(path, trace, dict(INFO, policy=TotalPolicy("package-0").to_dict()))
    back, _ = read_trace_csv(path)
    assert list(back.column("package-0", "energy_mj")) == [0.0, 50.0, 100.0]


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "trace.png"
    plot_trace(str(path), _trace(), INFO)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("content, match", [
    ("hello\n", "not a toolkit power trace"),
    (MAGIC + "\n# board: {oops\n", "malformed metadata"),
    (MAGIC + "\n", "no header row"),
    (MAGIC + "\ntime,a.power_mw\n", "header must start with t_s"),
    (MAGIC + "\nt_s,a.watts\n", "is not <rail>.<"),
    (MAGIC + "\nt_s,a.power_mw\n0.0,1.0,2.0\n", "3 values for 2 columns"),
    (MAGIC + "\nt_s,a.power_mw\n0.0,abc\n", "not a number"),
    (MAGIC + "\nt_s,a.power_mw\n1.0,1\n0.5,1\n", "go backwards"),
])
def test_malformed_csv_is_a_one_line_error(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=match):
        read_trace_csv(str(path))


def test_missing_file_and_empty_plot(tmp_path):
    with pytest.raises(InputError, match="no such trace file"):
        read_trace_csv(str(tmp_path / "none.csv"))
    pytest.importorskip("matplotlib")
    with pytest.raises(InputError, match="nothing to plot"):
        plot_trace(str(tmp_path / "x.png"), Trace([("a", "power_mw")]), INFO)


def test_counters_keep_full_precision(tmp_path):
    """A steady 47.3 W read from a cumulative counter reads back as 47.3 W in every sample
    (6 significant digits turned it into 40-50 W once the counter passed 1e7 mJ)."""
    t = np.arange(3000) * 0.1                      # 10 Hz for 300 s
    energy_mj = 2.0e8 + 47300.0 * t                # a counter far from zero, 47.3 W
    trace = Trace([("package-0", "energy_mj")])
    trace.append(t, energy_mj[:, None])
    path = str(tmp_path / "rapl.csv")
    write_trace_csv(path, trace, dict(INFO, policy=TotalPolicy("package-0").to_dict()))
    back, _ = read_trace_csv(path)
    _, power = back.power_series("package-0")
    assert np.allclose(power, 47300.0, rtol=1e-6)
    assert np.allclose(back.t, t - t[0], rtol=0, atol=1e-9)


def test_a_recording_cut_mid_line_is_read_up_to_its_last_whole_row(tmp_path):
    from toolkit.power.tracefile import TraceWriter
    path = str(tmp_path / "cut.csv")
    writer = TraceWriter(path, _trace().columns, INFO)
    writer.write(_trace())
    writer._handle.write("0.5,2010.0,50")  # SIGKILL in the middle of a row
    writer._handle.flush()
    back, meta = read_trace_csv(path)
    assert len(back) == 50 and meta["cut_last_line"] and "end" not in meta
    writer._handle.write("72,120.0\n")
    writer.close("stopped")
    _, meta = read_trace_csv(path)
    assert meta["end"] == {"samples": 50, "reason": "stopped"}
