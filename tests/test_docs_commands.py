"""Every ``toolkit ...`` command shown in the README and in docs/ names a real command with real
options and valid choices (parsed by the CLI itself, nothing run). The README's ``bash`` blocks
(the ten-line workflow and "Try it") are also run for real, on the bundled data, each in a fresh
temporary folder (test_readme_bash_blocks_run)."""
import glob
import os
import re
import shlex
import subprocess
import sys

import click
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FENCE = re.compile(r"^```(\w*)\s*$")


def fenced_commands(path):
    """``[(line number, command)]`` of the ``toolkit ...`` lines inside fenced code blocks of
    ``path`` (``$ `` prompts dropped, backslash continuations joined, ``# ...`` comments cut)."""
    from toolkit.cli.main import COMMANDS
    out, inside, pending, start, shell = [], False, "", 0, False
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            fence = FENCE.match(line.strip())
            if fence:
                inside, pending = not inside, ""
                shell = fence.group(1) in ("bash", "sh", "console", "shell")
                continue
            if not inside:
                continue
            text = line.strip()
            if text.startswith("$ "):
                text = text[2:]
            if pending:
                text = pending + " " + text
            elif not text.startswith("toolkit "):
                continue
            elif not shell and text.split()[1] not in COMMANDS:
                continue  # program output that happens to start with the word "toolkit"
            else:
                start = number
            if text.endswith("\\"):
                pending = text[:-1].strip()
                continue
            pending = ""
            out.append((start, text))
    return out


def _documents():
    return [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs",
                                                                           "*.md")))


def _cases():
    cases = []
    for path in _documents():
        if os.path.basename(path) == "cli.md":
            continue  # generated from --help (tests/toolkit/cli/test_reference.py)
        for number, command in fenced_commands(path):
            cases.append(pytest.param(command, id="{}:{}".format(
                os.path.relpath(path, ROOT), number)))
    return cases


def _strip_comment(command):
    try:
        words = shlex.split(command, comments=True)
    except ValueError as exc:
        raise AssertionError("cannot split {!r}: {}".format(command, exc))
    # shell plumbing after the toolkit command is not the CLI's business
    for stop in ("|", "&&", ";", ">", "2>", "&"):
        if stop in words:
            words = words[:words.index(stop)]
    return words


@pytest.mark.parametrize("command", _cases())
def test_documented_command_parses(command):
    from toolkit.cli.main import cli
    words = _strip_comment(command)[1:]
    group, path = cli, ["toolkit"]
    # the root's settings (-h as well as --help): click caches each command's help option
    context = click.Context(cli, info_name="toolkit", **cli.context_settings)
    while isinstance(group, click.Group):
        assert words, "{}: names no command".format(command)
        sub = group.get_command(context, words[0])
        assert sub is not None, "{}: no command '{}'".format(command, words[0])
        path.append(words.pop(0))
        context = click.Context(sub, info_name=path[-1], parent=context)
        group = sub
    if "--help" in words or "-h" in words:
        return
    try:
        group.make_context(" ".join(path), list(words), parent=context.parent)
    except click.BadParameter as exc:  # files the example names need not exist here
        if "does not exist" not in str(exc):
            raise AssertionError("{}: {}".format(command, exc.format_message()))
    except click.UsageError as exc:
        raise AssertionError("{}: {}".format(command, exc.format_message()))


def readme_bash_blocks():
    """The README's ```bash blocks, each a list of its ``toolkit`` commands in order."""
    blocks, current, inside = [], None, False
    with open(os.path.join(ROOT, "README.md")) as handle:
        text = handle.read()
    for line in text.splitlines():
        fence = FENCE.match(line.strip())
        if fence:
            if inside:
                blocks.append(current)
                inside = False
            elif fence.group(1) == "bash":
                current, inside = [], True
            continue
        if inside:
            current.append(line)
    out = []
    for lines in blocks:
        with_commands = fenced_commands_text("```bash\n" + "\n".join(lines) + "\n```\n")
        out.append([command for _, command in with_commands])
    return out


def fenced_commands_text(text):
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False) as handle:
        handle.write(text)
    try:
        return fenced_commands(handle.name)
    finally:
        os.remove(handle.name)


@pytest.mark.parametrize("block", range(2))
def test_readme_bash_blocks_run(block, tmp_path):
    """Every command of the README's bash blocks runs as written on the bundled data (a line
    marked ``# jetson`` would be skipped: it needs the device)."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    blocks = readme_bash_blocks()
    assert len(blocks) == 2, "README.md: expected the ten-line workflow and the Try-it block"
    commands = blocks[block]
    assert len(commands) >= 4
    toolkit = os.path.join(os.path.dirname(sys.executable), "toolkit")
    for command in commands:
        if "# jetson" in command:
            continue
        result = subprocess.run(["bash", "-c", command.replace("toolkit ", shlex.quote(
            toolkit) + " ", 1)], cwd=str(tmp_path), capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, "{} failed:\n{}{}".format(command, result.stdout,
                                                                 result.stderr)
