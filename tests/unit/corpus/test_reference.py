"""The file-reading oracle, on small hand-written trees whose answers are known.

Its rules are the product's (``ingestor.usage``); these tests pin how it assembles them: files in
path order, every non-blank line accounted for, sessions and costs as ccusage names them.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingestor.corpus.reference import Reference


def write(root: Path, rel: str, lines: list[Any]) -> Path:
    path = root / "projects" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = [x if isinstance(x, bytes) else orjson.dumps(x) for x in lines]
    path.write_bytes(b"\n".join(raw) + b"\n")
    return path


def line(
    msg_id: str | None,
    req: str | None,
    ts: str = "2025-09-01T10:00:00.000Z",
    inp: int = 10,
    out: int = 5,
    *,
    sidechain: bool = False,
    model: str = "claude-sonnet-4-20250514",
    **extra: Any,
) -> dict[str, Any]:
    usage: dict[str, Any] = {"input_tokens": inp, "output_tokens": out}
    message: dict[str, Any] = {"model": model, "usage": usage, "content": [{"type": "text"}]}
    if msg_id is not None:
        message["id"] = msg_id
    obj: dict[str, Any] = {"type": "assistant", "timestamp": ts, "isSidechain": sidechain}
    obj.update(sessionId="s1", message=message, **extra)
    if req is not None:
        obj["requestId"] = req
    return obj


def test_streaming_copies_count_once_with_the_largest(tmp_path: Path) -> None:
    write(tmp_path, "p/a.jsonl", [line("m", "r", out=1), line("m", "r", out=9), line("m", "r")])
    ref = Reference.load(tmp_path)
    assert [e.output_tokens for e in ref.entries] == [9]
    assert (ref.accounting.usage_lines, ref.accounting.counted, ref.accounting.duplicates) == (
        3,
        1,
        2,
    )


def test_files_are_read_in_path_order(tmp_path: Path) -> None:
    # Equal copies: the first read wins, and ccusage 20 reads files by path, not by age.
    write(tmp_path, "p/b.jsonl", [line("m", "r", ts="2025-01-01T00:00:00.000Z")])
    write(tmp_path, "p/a.jsonl", [line("m", "r", ts="2025-06-01T00:00:00.000Z")])
    ref = Reference.load(tmp_path)
    assert [e.session_id for e in ref.entries] == ["a"]


def test_sessions_are_named_by_path(tmp_path: Path) -> None:
    write(tmp_path, "p/main.jsonl", [line("m1", "r1")])
    write(tmp_path, "p/main/subagents/agent-1.jsonl", [line("m2", "r2", sidechain=True)])
    assert list(Reference.load(tmp_path).sessions()) == ["main"]


def test_cost_usd_wins_in_auto_mode_and_unknown_models_cost_nothing(tmp_path: Path) -> None:
    write(
        tmp_path,
        "p/a.jsonl",
        [line("m1", "r1", costUSD=0.25), line("m2", "r2", model="gpt-x", inp=10**6)],
    )
    assert Reference.load(tmp_path).totals().cost == Decimal("0.25")


def test_invalid_and_skipped_lines_are_accounted_not_counted(tmp_path: Path) -> None:
    write(
        tmp_path,
        "p/a.jsonl",
        [
            line("m1", "r1"),
            b"not json",
            b"   ",
            line("m2", "r2", version="2.0"),  # ccusage: version_not_semver
            {"type": "user", "timestamp": "2025-09-01T10:00:00.000Z", "message": {"content": "x"}},
        ],
    )
    acc = Reference.load(tmp_path).accounting
    assert (acc.lines, acc.valid, acc.invalid, acc.usage_lines, acc.counted) == (5, 2, 3, 1, 1)


def test_reports_group_entries(tmp_path: Path) -> None:
    write(
        tmp_path,
        "p/a.jsonl",
        [line("m1", "r1"), line("m2", "r2", ts="2025-09-02T01:00:00.000Z", model="<synthetic>")],
    )
    ref = Reference.load(tmp_path)
    assert list(ref.daily()) == ["2025-09-01", "2025-09-02"]
    assert list(ref.daily("America/New_York")) == ["2025-09-01"]
    assert list(ref.models()) == ["claude-sonnet-4-20250514"]
    assert ref.totals().entries == 2


def test_reference_reads_what_the_watcher_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Symlinks are not followed; a file that cannot be opened and an overlong line are not read."""
    from ingestor.corpus import reference as reference_module

    def usage(n: int) -> bytes:
        return (
            orjson.dumps(
                {
                    "type": "assistant",
                    "timestamp": "2025-01-01T00:00:00Z",
                    "requestId": f"r{n}",
                    "version": "1.0.0",
                    "message": {
                        "id": f"m{n}",
                        "model": "m",
                        "usage": {"input_tokens": n, "output_tokens": 0},
                    },
                }
            )
            + b"\n"
        )

    project = tmp_path / "projects" / "p"
    project.mkdir(parents=True)
    (project / "a.jsonl").write_bytes(usage(1) + b"x" * 400 + b"\n")
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(usage(2))
    (project / "link.jsonl").symlink_to(outside)
    (project / "locked.jsonl").write_bytes(usage(4))
    real = reference_module.open_regular

    def open_regular(path: str) -> int:
        if path.endswith("locked.jsonl"):
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(reference_module, "open_regular", open_regular)
    ref = Reference.load(tmp_path, max_line_bytes=300)
    assert [e.input_tokens for e in ref.entries] == [1]
    assert (ref.accounting.lines, ref.accounting.invalid) == (2, 1)  # the 400-byte line
