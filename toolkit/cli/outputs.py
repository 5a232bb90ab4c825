"""The output guard every command calls before any work: each output path is writable and not a
folder, is no file the command reads (an input, its sidecar, a spec's engines, the --from
recording, weights, the Python source of ``file.py:factory``), is not another output of the same
command, and does not replace an existing file of another kind (a model, an engine, a spec,
weights, .npz, .py) without ``--force``. Refusals are one line, before the long work starts.

    guard([Output("-o", path, "engine"), Output("-o", sidecar, "engine sidecar")],
          reads=[Read("MODEL.onnx", onnx_path), Read("its sidecar", onnx_path + ".json")],
          force=force)
"""
import os
from collections import namedtuple

from basics.errors import InputError, ToolkitError
from basics.paths import PRECIOUS_KINDS, check_writable_file, check_writable_folder, file_kind
from basics.paths import same_file

Output = namedtuple("Output", "option path kind")  # kind: what the command writes there
Read = namedtuple("Read", "what path")


def guard(outputs, reads=(), force=False, folders=()):
    """Check ``outputs`` (:class:`Output`, None paths skipped) against ``reads`` (:class:`Read`)
    and ``folders`` (``(option, folder)`` the command writes into) before any work: one-line
    InputError on the first problem."""
    for option, folder in folders:
        if folder is not None:
            if not str(folder).strip():
                raise InputError("{}: the path is empty".format(option))
            check_writable_folder(folder, option)
    reads = [r for r in reads if r.path]
    checked = []
    for out in outputs:
        if not out.path:
            if out.path is not None:
                raise InputError("{}: the path is empty".format(out.option))
            continue
        path = os.fspath(out.path)
        check_writable_file(path, out.option)
        for read in reads:
            if same_file(path, read.path):
                raise InputError("{} {} is {} (read by this command); writing there would "
                                 "destroy it: give another path".format(out.option, path,
                                                                        read.what))
        for earlier in checked:
            if same_file(path, earlier.path):
                raise InputError("{} and {} both name {}; give two different files".format(
                    earlier.option, out.option, path))
        checked.append(out)
        existing = file_kind(path)
        if not force and os.path.isfile(path) and existing in PRECIOUS_KINDS \
                and existing != out.kind:
            raise InputError("{} {} is an existing {}; writing {} there would replace it (give "
                             "--force to overwrite it)".format(
                                 out.option, path, existing,
                                 "a " + out.kind if out.kind else "the output"))


def sidecar_reads(path, what):
    """A model or engine file and its ``.json`` sidecar, as reads."""
    if not path:
        return []
    return [Read(what, path), Read("the sidecar of " + what, os.fspath(path) + ".json")]


def model_source_reads(model, weights=None):
    """The files ``toolkit export`` / ``prune`` read for MODEL: ``file.py`` of ``file.py:factory``,
    a TorchScript file, the weights."""
    reads = []
    module, _, _ = str(model).rpartition(":")
    if module.endswith(".py"):
        reads.append(Read("the model's Python source", module))
    elif os.path.isfile(str(model)):
        reads.append(Read("the model file", model))
    if weights:
        reads.append(Read("the weights", weights))
    return reads


def data_reads(data):
    """The ``--data`` file, when it is one (bundled names and folders read nothing to protect
    here; a folder's files are never outputs)."""
    if data and str(data).lower().endswith((".npz", ".npy")):
        return [Read("the --data file", data)]
    return []


def spec_reads(spec_path):
    """The spec, its engines and their sidecars; ``(reads, memo file or None)``. A spec that
    does not parse gives only itself (loading it reports the problem before any work)."""
    from toolkit.spec import read_spec
    reads = [Read("the spec", spec_path)]
    try:
        spec = read_spec(spec_path)
    except (OSError, ValueError, ToolkitError):
        return reads, None  # load_spec reports it, before any output is written
    for name, ref in spec.engines.items():
        reads += sidecar_reads(ref.path, "engine '{}' of the spec".format(name))
    memo_config = spec.wrapper_config("memo")
    memo = memo_config.path if memo_config is not None else None
    return reads, memo
