"""Parity: files replaced, truncated and deleted count as ccusage sees them — what is on disk now.

A corpus goes through ``ingestor up --once``. Then one file is replaced by a new inode holding its
lines plus a line without ``message.id`` (copies of such lines always count, so an old generation
left counting would show twice), one is truncated to half its lines, one to nothing, and one is
deleted. A second ``up --once`` (a new broker, the watcher's checkpoint from the first run) must
notice each change, and ``ingestor report monthly|session --json`` must equal ccusage on the
tree as it is now (``daily`` as the other parity test holds it: ccusage's own daily loader
predicted from the files, ours adding up to ccusage's months).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import Ccusage, embedded_env, up_once
from daily_variant import ccusage_daily_entries
from diff import mismatches

from ingestor.corpus.generate import generate
from ingestor.usage import reports

pytestmark = [pytest.mark.parity, pytest.mark.integration, pytest.mark.slow]


def test_replaced_truncated_deleted_files_count_as_on_disk(
    tmp_path: Path, ccusage: Ccusage
) -> None:
    corpus = tmp_path / "claude"
    generate(corpus, lines=3_000, seed=707, odd_rate=0.0)
    env = embedded_env(tmp_path / "data")
    up_once(corpus, env)
    before = _ours("monthly", env)

    files = sorted(p for p in (corpus / "projects").rglob("*.jsonl") if _usage_lines(p) >= 4)
    replaced, halved, emptied, deleted = files[0], files[1], files[2], files[3]
    lines = replaced.read_bytes().splitlines(keepends=True)
    extra = _without_message_id(lines)
    fresh = replaced.with_suffix(".new")
    fresh.write_bytes(b"".join(lines) + extra)
    os.replace(fresh, replaced)  # a new inode under the same name
    kept = halved.read_bytes().splitlines(keepends=True)
    with halved.open("r+b") as handle:  # truncated in place: same inode, shorter
        handle.truncate(len(b"".join(kept[: len(kept) // 2])))
    with emptied.open("r+b") as handle:
        handle.truncate(0)
    deleted.unlink()

    up_once(corpus, env)
    for kind in ("monthly", "session"):
        ours = _ours(kind, env)
        theirs = ccusage.report(kind, corpus, timezone="UTC")
        assert mismatches(ours, theirs) == [], kind
    assert _ours("monthly", env)["totals"] != before["totals"]  # the changes were seen
    # ccusage's daily has a loader of its own (README, "Where ccusage disagrees with itself"):
    # it must equal its prediction from the files as they are now, and our daily the common rule.
    theirs = ccusage.report("daily", corpus, timezone="UTC")
    assert mismatches(reports.daily(ccusage_daily_entries(corpus), tz="UTC"), theirs) == []
    ours = _ours("daily", env)
    monthly = ccusage.report("monthly", corpus, timezone="UTC")
    by_month: dict[str, Decimal] = {}
    for row in ours["daily"]:
        by_month[row["date"][:7]] = by_month.get(row["date"][:7], Decimal(0)) + row["totalTokens"]
    assert by_month == {row["month"]: row["totalTokens"] for row in monthly["monthly"]}
    assert ours["totals"]["totalTokens"] == monthly["totals"]["totalTokens"]


def _ours(kind: str, env: dict[str, str]) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "ingestor.cli.main", "report", kind, "--json", "-z", "UTC"],
        env=env,
        capture_output=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout, parse_float=Decimal)


def _usage_lines(path: Path) -> int:
    return path.read_bytes().count(b'"usage":{')


def _without_message_id(lines: list[bytes]) -> bytes:
    """A copy of the file's last usage line without ``message.id``: ccusage counts every copy."""
    for raw in reversed(lines):
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        message = line.get("message") if isinstance(line, dict) else None
        if isinstance(message, dict) and isinstance(message.get("usage"), dict):
            message.pop("id", None)
            line.pop("requestId", None)
            return json.dumps(line, separators=(",", ":")).encode() + b"\n"
    raise AssertionError("no usage line")
