"""ccusage's own cases for naming sessions and projects from paths (adapter/claude/mod.rs)."""

from __future__ import annotations

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
