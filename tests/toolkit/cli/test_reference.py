"""docs/cli.md is the commands' own --help: regenerate it with
``python -m toolkit.cli.reference > docs/cli.md`` when this fails."""
import os

from toolkit.cli.reference import reference_markdown

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "docs", "cli.md")


def test_docs_cli_md_matches_the_commands_help():
    with open(DOC) as handle:
        written = handle.read()
    assert written == reference_markdown(), (
        "docs/cli.md is stale: run `python -m toolkit.cli.reference > docs/cli.md`")


def test_every_command_is_in_the_reference():
    from toolkit.cli.main import COMMANDS
    text = reference_markdown()
    for name in COMMANDS:
        assert "\n## toolkit {}\n".format(name) in text
