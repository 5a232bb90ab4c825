"""Hostile inputs against every command (issue 12): outputs that are inputs, unwritable, folder,
empty and full-disk outputs, pickled and malformed .npz, out-of-range labels, truncated engines,
edited sidecars and bad specs.

Every case hashes every file of its workspace before and after and asserts: the exit code (1; a
click usage error keeps 2), one line ``error: ...`` on stderr naming the problem, no traceback,
no input changed and no file (temporary or not) left behind.
"""
import errno
import hashlib
import os
import shutil

import numpy as np
import pytest

from toolkit.cli.main import main

pytest.importorskip("onnxruntime")
pytest.importorskip("yaml")


@pytest.fixture(scope="module")
def prepared(small_cnn_onnx, tmp_path_factory):
    """The files every case starts from (copied into each case's own folder)."""
    root = tmp_path_factory.mktemp("hostile")
    for name in ("m.onnx", "m2.onnx"):
        shutil.copy(small_cnn_onnx, str(root / name))
        shutil.copy(small_cnn_onnx + ".json", str(root / (name + ".json")))
    assert main(["build", str(root / "m.onnx"), "-o", str(root / "m.engine"), "--backend",
                 "onnxruntime", "--max-batch", "8"]) == 0
    (root / "spec.yaml").write_text("engines:\n  m: m.engine\nstrategy: m\n"
                                    "memo: {mode: exact, file: memo.npz}\n")
    for name, memo in (("memo_spec.yaml", "memo_spec.yaml"), ("memo_model.yaml", "m.onnx"),
                       ("memo_data.yaml", "data.npz")):
        (root / name).write_text("engines:\n  m: m.engine\nstrategy: m\n"
                                 "memo: {{mode: exact, file: {}}}\n".format(memo))
    (root / "bad.yaml").write_text("engines: [unbalanced\n")
    (root / "unknown.yaml").write_text("engines:\n  m: m.engine\nstrategy: m\ncolour: red\n")
    (root / "missing.yaml").write_text("engines:\n  m: gone.engine\nstrategy: m\n")
    images = np.random.RandomState(0).rand(6, 1, 8, 8).astype(np.float32)
    np.savez(str(root / "data.npz"), images=images, labels=np.arange(6))
    np.savez(str(root / "labels50.npz"), images=images, labels=np.array([0, 1, 2, 3, 4, 50]))
    np.savez(str(root / "negative.npz"), images=images, labels=np.array([0, 1, 2, 3, 4, -1]))
    np.savez(str(root / "text.npz"), images=images, labels=np.array(list("abcdef")))
    np.savez(str(root / "pickled.npz"), images=np.array([images[0], "x"], dtype=object))
    (root / "garbage.npz").write_bytes(b"not an archive at all")
    (root / "w.pt").write_bytes(b"weights")
    (root / "mynet.py").write_text("def build():\n    raise SystemExit('never imported')\n")
    (root / "t.csv").write_text("# toolkit power trace\n")
    (root / "notes.txt").write_text("a file, not a folder\n")
    (root / "folder").mkdir()
    engine = (root / "m.engine").read_bytes()
    (root / "truncated.engine").write_bytes(engine[:len(engine) // 3])
    shutil.copy(str(root / "m.engine.json"), str(root / "truncated.engine.json"))
    sidecar = (root / "m.engine.json").read_text()
    for name, text in (("edited", sidecar.replace('"engine_sha256": "', '"engine_sha256": "0')),
                       ("cut", sidecar[:len(sidecar) // 2])):
        shutil.copy(str(root / "m.engine"), str(root / (name + ".engine")))
        (root / (name + ".engine.json")).write_text(text)
    twelve = root / "twelve"
    from PIL import Image
    for k in range(12):
        (twelve / str(k)).mkdir(parents=True)
        Image.fromarray(np.full((8, 8), 20 * k, np.uint8)).save(str(twelve / str(k) / "a.png"))
    return root


@pytest.fixture
def ws(prepared, tmp_path, monkeypatch):
    """A fresh copy of the prepared files; the current folder."""
    work = tmp_path / "ws"
    shutil.copytree(str(prepared), str(work))
    monkeypatch.chdir(str(work))
    return work


def _hashes(root):
    out = {}
    for folder, _, files in os.walk(str(root)):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, str(root))] = hashlib.sha256(handle.read()).hexdigest()
    return out


def check_refused(ws, capsys, argv, words, code=1):
    """Run ``toolkit argv`` and assert a clean, harmless refusal."""
    capsys.readouterr()
    before = _hashes(ws)
    assert main(argv) == code, capsys.readouterr()
    captured = capsys.readouterr()
    after = _hashes(ws)
    assert "Traceback" not in captured.err + captured.out
    lines = [line for line in captured.err.splitlines()
             if line.strip() and not line.startswith("note: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert words in lines[0], lines[0]
    assert after == before, "changed or new files: {}".format(
        sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)))


# -- an output that is an input, or a file the command reads ---------------------------------
READ_BY = "(read by this command); writing there would destroy it"
SAME_AS_INPUT = [
    (["build", "m.onnx", "-o", "m.onnx.json"], READ_BY),
    (["build", "m.onnx", "-o", "m.onnx"], READ_BY),
    (["run", "spec.yaml", "--data", "digits:test", "-o", "spec.yaml"], READ_BY),
    (["run", "spec.yaml", "--data", "digits:test", "--report", "spec.yaml"], READ_BY),
    (["run", "spec.yaml", "--data", "digits:test", "--json", "spec.yaml"], READ_BY),
    (["run", "spec.yaml", "--data", "digits:test", "-o", "m.engine"], READ_BY),
    (["run", "spec.yaml", "--data", "digits:test", "-o", "m.engine.json"], READ_BY),
    (["run", "spec.yaml", "--data", "data.npz", "--report", "data.npz"], READ_BY),
    (["run", "memo_spec.yaml", "--data", "digits:test"], READ_BY),
    (["run", "memo_model.yaml", "--data", "digits:test"], "give --force"),
    (["run", "memo_data.yaml", "--data", "digits:test"], "exists but is not a memo file"),
    (["bench", "memo_spec.yaml", "--data", "digits:test"], READ_BY),
    (["pair", "select", "m.onnx", "m2.onnx", "--data", "digits:val", "--write-spec", "m.onnx"],
     READ_BY),
    (["pair", "threshold", "m.onnx", "m2.onnx", "--data", "digits:val", "--write-spec",
      "m2.onnx"], READ_BY),
    (["pair", "select", "m.onnx", "m2.onnx", "--data", "digits:val", "--json", "m2.onnx"],
     READ_BY),
    (["pair", "select", "m.onnx", "m2.onnx", "--data", "digits:val", "--plot", "m.onnx.json"],
     READ_BY),
    (["export", "mynet.py:build", "--input-shape", "1x1x8x8", "-o", "mynet.py"], READ_BY),
    (["export", "export.models:tiny_cnn", "--weights", "w.pt", "--input-shape", "1x1x8x8",
      "-o", "w.pt"], READ_BY),
    (["prune", "export.models:tiny_cnn", "--weights", "w.pt", "-o", "w.pt"], READ_BY),
    (["prune", "export.models:tiny_cnn", "--weights", "w.pt", "-o", "p.onnx", "--report", "w.pt"],
     READ_BY),
    (["prune", "export.models:tiny_cnn", "-o", "p.onnx", "--report", "p.onnx"],
     "both name p.onnx"),
    (["power", "--from", "t.csv", "--plot", "t.csv"], READ_BY),
    (["calibrate", "m.onnx", "--data", "digits:train", "-o", "m.onnx"], READ_BY),
    (["calibrate", "m.onnx", "--data", "digits:train", "-o", "m.onnx.json"], READ_BY),
]


@pytest.mark.parametrize("argv, words", SAME_AS_INPUT, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else None)
def test_an_output_is_never_a_file_the_command_reads(ws, capsys, argv, words):
    check_refused(ws, capsys, argv, words)


# -- an existing file of another kind needs --force -------------------------------------------
@pytest.mark.parametrize("argv", [
    ["build", "m.onnx", "-o", "spec.yaml"],
    ["run", "spec.yaml", "--data", "digits:test", "-o", "m2.onnx"],
    ["pair", "select", "m.onnx", "m2.onnx", "--data", "digits:val", "--report", "w.pt"],
    ["calibrate", "m.onnx", "--data", "digits:train", "-o", "w.pt"],
    ["power", "--from", "t.csv", "--plot", "data.npz"],
], ids=" ".join)
def test_replacing_another_kind_of_file_needs_force(ws, capsys, argv):
    check_refused(ws, capsys, argv, "give --force to overwrite it")


def test_force_overwrites_another_kind_of_file(ws, capsys):
    assert main(["build", "m.onnx", "-o", "spec.yaml", "--backend", "onnxruntime",
                 "--force"]) == 0
    assert (ws / "spec.yaml.json").is_file()


# -- unwritable, folder and empty outputs: refused before any work ----------------------------
UNWRITABLE = [
    (["build", "m.onnx", "-o", "notes.txt/m.engine"], "is a file, not a folder"),
    (["build", "m.onnx", "-o", "folder"], "File 'folder' is a directory", 2),
    (["run", "spec.yaml", "--data", "digits:test", "-o", ""], "the path is empty"),
    (["run", "spec.yaml", "--data", "digits:test", "--report", "folder"], "is a folder"),
    (["pair", "select", "m.onnx", "m2.onnx", "--data", "digits:val", "--write-spec",
      "notes.txt/d.yaml"], "is a file, not a folder"),
    (["pair", "threshold", "m.onnx", "m2.onnx", "--data", "digits:val", "--plot", "folder"],
     "is a folder"),
    (["calibrate", "m.onnx", "--data", "digits:train", "-o", "folder"],
     "File 'folder' is a directory", 2),
    (["export", "export.models:tiny_cnn", "--input-shape", "1x1x8x8", "-o",
      "notes.txt/x.onnx"], "is a file, not a folder"),
    (["prune", "export.models:tiny_cnn", "-o", "p.onnx", "--report", "notes.txt/r.json"],
     "is a file, not a folder"),
    (["power", "--record", "notes.txt/t.csv", "--duration", "30"], "is a file, not a folder"),
    (["power", "--from", "t.csv", "--plot", "folder"], "File 'folder' is a directory", 2),
    (["power", "--record", "folder"], "File 'folder' is a directory", 2),
    (["demo", "--out", "notes.txt"], "Directory 'notes.txt' is a file", 2),
    (["train", "pool", "--data", "digits", "--out", "notes.txt/pool"], "is a file, not a folder"),
    (["train", "cbnet", "--data", "digits", "--out", "notes.txt"],
     "Directory 'notes.txt' is a file", 2),
    (["pair", "select", "m.onnx", "m2.onnx", "--data", "digits:val", "--report", "folder"],
     "is a folder"),
]


@pytest.mark.parametrize("argv, words, code", [case + (1,) if len(case) == 2 else case
                                               for case in UNWRITABLE],
                         ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_unwritable_outputs_are_refused_before_the_work(ws, capsys, argv, words, code):
    check_refused(ws, capsys, argv, words, code)


@pytest.mark.parametrize("argv", [
    ["build", "m.onnx", "-o", "sub/m.engine"],
    ["run", "spec.yaml", "--data", "digits:test", "-o", "p.csv"],
    ["train", "pool", "--data", "digits", "--out", "pool"],
    ["demo", "--out", "demo"],
], ids=" ".join)
def test_a_read_only_folder_is_refused_before_the_work(ws, capsys, monkeypatch, argv):
    import tempfile

    from basics import paths

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(paths.tempfile, "mkstemp", read_only)
    try:
        check_refused(ws, capsys, argv, "the file system is read-only")
    finally:
        monkeypatch.setattr(paths.tempfile, "mkstemp", tempfile.mkstemp)


def test_a_full_disk_keeps_the_old_file_and_leaves_no_temporary(ws, capsys, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    check_refused(ws, capsys, ["build", "m.onnx", "-o", "m.engine", "--backend", "onnxruntime",
                               "--max-batch", "8"], "the disk is full (the old file is unchanged)")


# -- malformed inputs ------------------------------------------------------------------------
MALFORMED = [
    (["run", "spec.yaml", "--data", "pickled.npz"], "holds an object array (a pickle)"),
    (["run", "spec.yaml", "--data", "garbage.npz"], "not a readable .npz/.npy file"),
    (["run", "spec.yaml", "--data", "text.npz"], "'labels' must hold numbers, got text"),
    (["run", "spec.yaml", "--data", "labels50.npz"], "labels run from 0 to 50 but the model "
                                                     "has 10 classes"),
    (["run", "spec.yaml", "--data", "negative.npz"], "must be class numbers from 0, got -1"),
    (["run", "spec.yaml", "--data", "twelve"], "labels run from 0 to 11 but the model has 10"),
    (["pair", "select", "m.onnx", "m2.onnx", "--data", "labels50.npz"], "labels run from 0 to 50"),
    (["calibrate", "m.onnx", "--data", "pickled.npz", "--format", "qdq", "-o", "q.onnx"],
     "holds an object array"),
    (["export", "export.models:tiny_cnn", "--input-shape", "1x1x100000x100000", "-o", "x.onnx"],
     "give a smaller shape"),
    (["export", "export.models:tiny_cnn", "--input-shape", "1x1x8x8", "--parity-inputs",
      "pickled.npz", "-o", "x.onnx"], "holds an object array"),
    (["power", "--from", "m.onnx", "--plot", "p.png"], "is not a toolkit power trace"),
    (["power", "--power", "tegrastats", "--tegrastats-cmd", '"unbalanced', "--duration", "1"],
     "cannot be split"),
    (["bench", "truncated.engine", "--iterations", "2"], "truncated.engine"),
    (["bench", "edited.engine", "--iterations", "2"], "edited.engine"),
    (["bench", "cut.engine", "--iterations", "2"], "cut.engine.json"),
    (["run", "bad.yaml", "--data", "digits:test"], "is not valid YAML"),
    (["run", "unknown.yaml", "--data", "digits:test"], "colour"),
    (["run", "missing.yaml", "--data", "digits:test"], "no such engine file"),
    (["run", "nothing.yaml", "--data", "digits:test"], "no such deployment spec"),
    (["energy", "t.csv"], "is not a readable ONNX model"),
    (["energy", "m.onnx", "--calibration", "t.csv"], "is not valid JSON"),
    (["bench", "spec.yaml", "--data", "text.npz"], "'labels' must hold numbers, got text"),
    (["train", "pool", "--data", "pickled.npz", "--out", "pool"], "holds an object array"),
    (["train", "cbnet", "--data", "text.npz", "--out", "cbnet"], "must hold numbers, got text"),
    (["prune", "export.models:tiny_cnn", "--data", "pickled.npz", "-o", "p.onnx"],
     "holds an object array"),
    (["demo", "--out", "demo", "--power", "ina3221", "--power-sysfs-root", "folder"],
     "no INA3221 rails"),
]


@pytest.mark.parametrize("argv, words", MALFORMED, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else None)
def test_malformed_inputs_are_one_line_errors(ws, capsys, argv, words):
    if argv[0] in ("export", "prune", "train", "demo"):
        pytest.importorskip("torch")
    if "--plot" in argv:
        pytest.importorskip("matplotlib")
    check_refused(ws, capsys, argv, words)


def test_bad_option_values_are_one_line_usage_errors(ws, capsys):
    check_refused(ws, capsys, ["run", "spec.yaml", "--data", "digits:test", "--batch", "0"],
                  "'--batch': 0 is not in the range x>=1", code=2)
    check_refused(ws, capsys, ["bench", "m.engine", "--threads", "-1"],
                  "'--threads': -1 is not in the range x>=0", code=2)


# -- signals ---------------------------------------------------------------------------------
# SIGTERM / SIGHUP during the long-running commands run in real child processes:
# tests/toolkit/cli/test_main_signals.py, test_cmd_run_signals.py, test_cmd_power_signals.py and
# tests/basics/test_signals.py. A new long-running writer adds its case there.
