"""benchmarks/power_lag.py runs and prints its table (a smoke run with a few windows)."""
from benchmarks import power_lag


def test_power_lag_prints_every_row(capsys):
    assert power_lag.main(["--trials", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "corrected worst" in lines[1] and len(lines) == 2 + 18
