"""benchmarks/triton_load.py runs end to end on the real server (a few requests, not timed)."""
import pytest

from tests.toolkit.triton.conftest import triton_env


@pytest.mark.timeout(240)
def test_a_tiny_load_run_prints_every_figure(capsys):
    pytest.importorskip("torch")
    triton_env()
    from benchmarks import triton_load
    assert triton_load.main(["--requests", "3", "--clients", "1,2", "--rounds", "1",
                             "--protocols", "grpc,http,http-lean"]) == 0
    out = capsys.readouterr().out
    for words in ("in-process toolkit run, batch 1", "grpc dynamic batching, 2 clients",
                  "grpc no batching, 1 client", "grpc BLS engine model, 2 clients",
                  "http: throughput 2 clients / 1 client", "http-lean no batching, 2 clients",
                  "grpc: in-process engines / BLS engine model"):
        assert words in out, words
