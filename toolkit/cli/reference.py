"""``docs/cli.md``, generated from the commands' own ``--help``:
``python -m toolkit.cli.reference > docs/cli.md`` (a test fails when the file is stale)."""
import sys

import click

def _help(path):
    """What ``<path> --help`` prints (e.g. ``toolkit pair select``), at click's default width."""
    from click.testing import CliRunner

    from toolkit.cli.main import cli
    result = CliRunner().invoke(cli, path.split()[1:] + ["--help"], prog_name="toolkit",
                                env={"COLUMNS": "80"})
    if result.exit_code != 0:
        raise RuntimeError("{} --help failed: {}".format(path, result.output))
    return result.output


def _walk(command, path):
    """``[(path, command)]`` of ``command`` and every sub-command, depth first."""
    out = [(path, command)]
    if isinstance(command, click.Group):
        context = click.Context(command, info_name=path)
        for name in command.list_commands(context):
            out.extend(_walk(command.get_command(context, name), path + " " + name))
    return out


def reference_markdown():
    """The whole CLI reference as Markdown."""
    from toolkit.cli.main import cli
    lines = ["# CLI reference", "",
             "Generated from the commands' own `--help` by `python -m toolkit.cli.reference > "
             "docs/cli.md`; `tests/toolkit/cli/test_reference.py` fails when this file no longer "
             "matches.", ""]
    commands = _walk(cli, "toolkit")
    for path, _ in commands[1:]:
        lines.append("- [`{}`](#{})".format(path, path.replace(" ", "-")))
    lines.append("")
    for path, command in commands:
        lines.extend(["## {}".format(path), "", "```", _help(path).rstrip(), "```", ""])
    return "\n".join(lines)


def main():
    sys.stdout.write(reference_markdown())


if __name__ == "__main__":
    main()
