"""The CLI's two error kinds: user errors are one line and exit 1; anything else is a bug: the
traceback and exit 2."""
import click
import pytest

from basics.errors import InputError, InternalError
from toolkit.cli import main as cli_main


@click.command()
@click.argument("kind")
def failing(kind):
    """A command that fails the way ``kind`` says."""
    if kind == "user":
        raise InputError("the file is not there")
    if kind == "internal":
        raise InternalError("a state that cannot happen")
    if kind == "other":
        raise KeyError("surprise")


@pytest.fixture
def with_failing(monkeypatch):
    monkeypatch.setitem(cli_main.COMMANDS, "failing",
                        (__name__, "failing", "A command that fails on purpose."))


def test_a_user_error_is_one_line_and_exit_1(with_failing, capsys):
    assert cli_main.main(["failing", "user"]) == 1
    err = capsys.readouterr().err
    assert err == "error: the file is not there\n"


@pytest.mark.parametrize("kind, text", [("internal", "InternalError: a state that cannot happen"),
                                        ("other", "KeyError: 'surprise'")])
def test_an_internal_error_says_bug_prints_the_traceback_and_exits_2(with_failing, capsys, kind,
                                                                      text):
    assert cli_main.main(["failing", kind]) == cli_main.INTERNAL_ERROR_EXIT_CODE == 2
    err = capsys.readouterr().err
    assert "this is a bug" in err
    assert "Traceback (most recent call last)" in err
    assert err.rstrip().endswith(text)


def test_success_exits_0(with_failing):
    assert cli_main.main(["failing", "nothing"]) == 0


def test_internal_error_is_not_a_user_error():
    from basics.errors import ToolkitError
    assert not issubclass(InternalError, ToolkitError)
