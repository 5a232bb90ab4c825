"""``toolkit triton export`` / ``serve`` and ``toolkit run --triton``: help and one-line errors
(serving against a real server: tests/toolkit/triton/test_server.py)."""
import os

import pytest

from toolkit.cli.main import main


def _one_line_error(capsys, words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err


def test_help_explains_with_examples(capsys):
    assert main(["triton", "--help"]) == 0
    out = capsys.readouterr().out
    for words in ("toolkit triton export deploy.yaml", "toolkit run --triton", "serve"):
        assert words in out
    assert main(["triton", "serve", "--help"]) == 0
    assert "SIGTERM" in capsys.readouterr().out
    assert main(["run", "--help"]) == 0
    assert "--triton" in capsys.readouterr().out


def test_export_prints_the_models(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from tests.toolkit.strategies.conftest import logits_onnx
    with open(str(tmp_path / "m.onnx"), "wb") as handle:
        handle.write(logits_onnx(4, shape=(1, 8, 8)))
    (tmp_path / "d.yaml").write_text("engines: {m: m.onnx}\nstrategy: m\n")
    out = str(tmp_path / "repo")
    assert main(["triton", "export", str(tmp_path / "d.yaml"), "-o", out, "--max-batch", "8",
                 "--preferred-batch", "4"]) == 0
    text = capsys.readouterr().out
    assert "d (strategy" in text and "d_m (engine)" in text
    assert os.path.isfile(os.path.join(out, "d", "1", "model.py"))
    assert main(["triton", "export", str(tmp_path / "d.yaml"), "-o", out]) == 1
    _one_line_error(capsys, "not an empty folder")


@pytest.mark.parametrize("args, words", [
    (["triton", "export", "nothing.yaml", "-o", "x"], "no such deployment spec"),
    (["triton", "serve", "no-such-repo", "--tritonserver", "/bin/true"],
     "no such model repository"),
    (["triton", "serve", ".", "--http-port", "0"], "ports must be"),
    (["run", "--triton", "ftp://host:1", "m", "--data", "digits:test"], "http:// or grpc://"),
])
def test_bad_input_is_one_line(args, words, capsys):
    assert main(args) == 1
    _one_line_error(capsys, words)


def test_run_triton_refuses_an_image_folder(tmp_path, capsys):
    folder = tmp_path / "images" / "a"
    folder.mkdir(parents=True)
    (folder / "x.png").write_bytes(b"")
    assert main(["run", "--triton", "http://127.0.0.1:1", "m", "--data",
                 str(tmp_path / "images")]) == 1
    _one_line_error(capsys, "image folder")


@pytest.mark.parametrize("scheme", ["http", "grpc"])
def test_run_triton_without_a_server_is_one_line(scheme, capsys):
    pytest.importorskip("tritonclient.grpc")
    pytest.importorskip("tritonclient.http")
    from toolkit.triton.server import free_ports
    url = "{}://127.0.0.1:{}".format(scheme, free_ports(1)[0])
    assert main(["run", "--triton", url, "m", "--data", "digits:test", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "127.0.0.1" in err[0], err
