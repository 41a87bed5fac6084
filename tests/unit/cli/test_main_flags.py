"""``-v`` counts wherever it is given: before the command, after it, or both."""

from __future__ import annotations

import pytest

from ingestor.cli.main import build_parser


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
