"""``-v`` counts wherever it is given: before the command, after it, or both; a command's line
is parsed the same with its module alone loaded."""

from __future__ import annotations

import pytest

from ingestor.cli.main import COMMANDS, build_parser, command_of


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["report", "daily"], 0),
        (["-v", "report", "daily"], 1),
        (["report", "daily", "-v"], 1),
        (["-v", "report", "-vv", "daily"], 2),
    ],
)
def test_verbose_anywhere(argv: list[str], expected: int) -> None:
    args, _ = build_parser().parse_known_args(argv)
    assert args.verbose == expected
    alone, _ = build_parser(command_of(argv)).parse_known_args(argv)
    assert vars(alone).keys() == vars(args).keys()
    assert alone.verbose == expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["up", "--once", "dir"], "up"),
        (["-v", "-v", "worker", "--bootstrap", "x"], "worker"),
        (["--verbose", "report", "daily"], "report"),
        (["--version"], None),
        (["-h"], None),
        ([], None),
        (["uup"], None),  # the whole parser says what is wrong
        (["--", "up"], None),
    ],
)
def test_command_of(argv: list[str], expected: str | None) -> None:
    assert command_of(argv) == expected


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_parses_alone_as_in_the_whole(command: str) -> None:
    whole = build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    alone = build_parser(command)._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    assert alone.format_help() == whole.format_help()
