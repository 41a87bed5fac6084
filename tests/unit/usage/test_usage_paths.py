"""ccusage's own cases for naming sessions and projects from paths (adapter/claude/mod.rs)."""

from __future__ import annotations

import itertools

import pytest

from ingestor.usage.paths import project_of, session_parts


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/home/me/.claude/projects/project-a/session-a.jsonl", ("session-a", "project-a")),
        ("/home/me/.claude/projects/project-a/session-a/chat.jsonl", ("session-a", "project-a")),
        (
            "/home/me/.claude/projects/project-a/session-a/subagents/worker.jsonl",
            ("session-a", "project-a"),
        ),
        ("/x/projects/a/b/c/d.jsonl", ("c", "a/b")),
        ("/x/projects/s.jsonl", ("s.jsonl", "Unknown Project")),
    ],
)
def test_session_parts(path: str, expected: tuple[str, str]) -> None:
    assert session_parts(path) == expected


def test_project_is_the_directory_after_the_first_projects() -> None:
    assert project_of("/home/projects/x/.claude/projects/p/s.jsonl") == "x"
    assert project_of("/a/projects/p/s.jsonl") == "p"
    assert project_of("/a/b/s.jsonl") == "unknown"


def test_parts_split_as_pure_posix_path_parts() -> None:
    # The split by hand (most of a cold session report's time went to PurePosixPath) against
    # PurePosixPath itself, over paths with empty, '.', '..' and doubled-slash parts.
    from pathlib import PurePosixPath

    from ingestor.usage.paths import _parts

    pieces = ["/", "//", "a", ".", "..", "projects", "s.jsonl", "", " ", "subagents", "\u00e9"]
    paths = ["".join(combo) for n in range(1, 5) for combo in itertools.product(pieces, repeat=n)]
    for path in paths:
        assert _parts(path) == [p for p in PurePosixPath(path).parts if p != "/"], path
