"""Every ``minga`` command that docs/deploy.md and the units give exists, with those options."""

from __future__ import annotations

import argparse
import re
import shlex

import pytest

from node.cli import build_parser
from tests.support import REPO

GUIDE = REPO / "docs" / "deploy.md"
PRODUCTION = REPO / "deploy" / "production"


def shell_lines(markdown: str) -> list[str]:
    """The commands of the guide's ``sh`` blocks, continuation lines joined."""
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, flags=re.DOTALL):
        lines.extend(block.replace("\\\n", " ").splitlines())
    return lines


def minga_arguments(line: str) -> list[str] | None:
    """The arguments given to ``minga`` on this line, or None if it does not run it."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return None
    if not words or words[0] == "alias":
        return None
    if words[0] == "minga":
        return words[1:]
    for index, word in enumerate(words):
        if word.endswith("/bin/minga"):
            return words[index + 1:]
    return None


def guide_commands() -> list[list[str]]:
    found = [args for line in shell_lines(GUIDE.read_text())
             if (args := minga_arguments(line)) is not None]
    assert len(found) >= 8  # the guide has not lost its commands, nor this test its way
    return found


def mentioned_commands() -> list[list[str]]:
    """``minga ...`` written in the guide's sentences."""
    found = [shlex.split(span)[1:]
             for span in re.findall(r"`(minga [^`]+)`", GUIDE.read_text())]
    assert len(found) >= 5
    return found


def subcommand(arguments: list[str]) -> argparse.ArgumentParser:
    """The parser of the (sub)command that ``arguments`` name; fails if there is none."""
    parser = build_parser()
    for word in arguments:
        if word.startswith("-") or word.isupper():
            break
        choices = [action for action in parser._actions
                   if isinstance(action, argparse._SubParsersAction)]
        if not choices:
            break
        assert word in choices[0].choices, f"minga has no command {word!r}"
        parser = choices[0].choices[word]
    return parser


def unit_commands() -> list[list[str]]:
    found = []
    for unit in PRODUCTION.glob("minga-*.service"):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                args = minga_arguments(line.removeprefix("ExecStart="))
                assert args is not None, unit.name
                found.append(args)
    return found


@pytest.mark.parametrize("arguments", guide_commands() + unit_commands(), ids=" ".join)
def test_the_command_exists(arguments: list[str]) -> None:
    if arguments == ["--version"]:  # prints the version and exits, as a check of the install
        assert "--version" in build_parser()._option_string_actions
        return
    try:
        parsed = build_parser().parse_args(arguments)
    except SystemExit as exit_:
        pytest.fail(f"minga {' '.join(arguments)}: refused by minga's parser ({exit_})")
    assert callable(parsed.handler)


@pytest.mark.parametrize("arguments", mentioned_commands(), ids=" ".join)
def test_the_mentioned_command_and_its_options_exist(arguments: list[str]) -> None:
    parser = subcommand(arguments)
    options = {option for action in parser._actions for option in action.option_strings}
    for word in arguments:
        if word.startswith("--"):
            assert word in options, f"minga {' '.join(arguments)}: no option {word}"


def test_a_command_that_does_not_exist_is_caught() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["backup", "prune", "--keep", "3"])
    with pytest.raises(AssertionError):
        subcommand(["coalition", "dissolve"])


def test_nothing_is_left_to_write() -> None:
    """The parts of M12 written separately are folded in: no placeholder or link to them."""
    text = GUIDE.read_text()
    for leftover in ("To be written", "folds its section in here", "deploy-A", "deploy-B",
                     "deploy-C"):
        assert leftover not in text
