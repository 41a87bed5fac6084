from __future__ import annotations

from pathlib import Path

from ingestor.producer.discover import find_jsonl, order_key, project_of, session_of


def test_find_jsonl_is_recursive_and_sorted(projects: Path) -> None:
    main = projects / "-home-u-repo" / "s1.jsonl"
    sub = projects / "-home-u-repo" / "s1" / "subagents" / "agent-a.jsonl"
    other = projects / "-home-u-repo" / "notes.txt"
    for path in (main, sub, other):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    missing = projects.parent / "nowhere"
    assert find_jsonl([projects, missing, projects]) == sorted([str(main), str(sub)])


def test_project_is_the_directory_under_projects() -> None:
    assert project_of("/h/.claude/projects/-h-repo/s1.jsonl") == "-h-repo"
    assert project_of("/h/.claude/projects/-h-repo/s1/subagents/a.jsonl") == "-h-repo"
    # A "projects" directory higher up does not win over Claude's own.
    assert project_of("/srv/projects/x/.claude/projects/-enc/s.jsonl") == "-enc"
    # Not under projects/: the parent directory.
    assert project_of("/data/exports/s.jsonl") == "exports"
    assert project_of("/data/projects/s.jsonl") == "projects"


def test_session_from_path() -> None:
    assert session_of("/p/projects/-r/abc.jsonl") == "abc"
    assert session_of("/p/projects/-r/abc/subagents/agent-1.jsonl") == "abc"


def test_ccusage_order_is_by_path() -> None:
    files = [
        ("/z/late.jsonl", "2025-02-01T00:00:00Z"),
        ("/b/none.jsonl", None),
        ("/a/none.jsonl", None),
        ("/y/same.jsonl", "2025-01-01T01:00:00+01:00"),  # the same instant as the next
        ("/x/same.jsonl", "2025-01-01T00:00:00Z"),
        ("/w/early.jsonl", "2024-12-31T23:00:00.000Z"),
    ]
    ordered = [path for path, _ in sorted(files, key=lambda f: order_key(f[0]))]
    # ccusage 20 reads by path, whatever the files' ages.
    assert ordered == [
        "/a/none.jsonl",
        "/b/none.jsonl",
        "/w/early.jsonl",
        "/x/same.jsonl",
        "/y/same.jsonl",
        "/z/late.jsonl",
    ]
