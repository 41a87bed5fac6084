"""Our reports equal the real ccusage 20.0.24 binary's ``--json``, field by field.

Costs may differ by < 0.01 (ccusage sums f64, we sum Decimal); tokens, keys, labels, order and
nesting must be equal. Skipped when the binary is absent (``$INGESTOR_CCUSAGE_BIN``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ccusage_corpus import edge_corpus, line, mixed_corpus, run, write
from conftest import Ccusage
from diff import mismatches

from ingestor.usage import reports
from ingestor.usage.entry import Entry

pytestmark = pytest.mark.parity

# Far in the past, so no block is active and --recent keeps nothing whatever the clock says.
PAST_NOW = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Entry]]:
    root = tmp_path_factory.mktemp("ccusage-parity")
    return root, write(root, mixed_corpus())


Ours = Callable[[list[Entry], str], dict[str, Any]]

CASES: list[tuple[str, list[str], Ours]] = [
    ("daily", [], lambda e, tz: reports.daily(e, tz=tz)),
    ("daily", ["--breakdown"], lambda e, tz: reports.daily(e, tz=tz)),
    ("daily", ["--order", "desc"], lambda e, tz: reports.daily(e, tz=tz, order="desc")),
    (
        "daily",
        ["--since", "20250910", "--until", "2025-09-20"],
        lambda e, tz: reports.daily(e, tz=tz, since="20250910", until="2025-09-20"),
    ),
    ("daily", ["--instances"], lambda e, tz: reports.daily(e, tz=tz, instances=True)),
    (
        "daily",
        ["--instances", "--order", "desc", "--since", "20250915"],
        lambda e, tz: reports.daily(e, tz=tz, instances=True, order="desc", since="20250915"),
    ),
    ("daily", ["--project", "proj-b"], lambda e, tz: reports.daily(e, tz=tz, project="proj-b")),
    (
        "daily",
        ["--instances", "--project", "proj-a"],
        lambda e, tz: reports.daily(e, tz=tz, instances=True, project="proj-a"),
    ),
    (
        "daily",
        ["--instances", "--since", "20990101"],
        lambda e, tz: reports.daily(e, tz=tz, instances=True, since="20990101"),
    ),
    ("weekly", [], lambda e, tz: reports.weekly(e, tz=tz)),
    (
        "weekly",
        ["--start-of-week", "monday"],
        lambda e, tz: reports.weekly(e, tz=tz, start_of_week="monday"),
    ),
    (
        "weekly",
        ["-w", "thursday", "--order", "desc", "--since", "20250905", "--until", "20250925"],
        lambda e, tz: reports.weekly(
            e, tz=tz, start_of_week="thursday", order="desc", since="20250905", until="20250925"
        ),
    ),
    ("monthly", [], lambda e, tz: reports.monthly(e, tz=tz)),
    (
        "monthly",
        ["--order", "desc", "--since", "20250915"],
        lambda e, tz: reports.monthly(e, tz=tz, order="desc", since="20250915"),
    ),
    ("session", [], lambda e, tz: reports.session(e, tz=tz)),
    ("session", ["--order", "asc"], lambda e, tz: reports.session(e, tz=tz)),
    (
        "session",
        ["--since", "20250908", "--until", "20250920"],
        lambda e, tz: reports.session(e, tz=tz, since="20250908", until="20250920"),
    ),
    ("blocks", [], lambda e, tz: reports.blocks(e, tz=tz, now_ms=PAST_NOW)),
    (
        "blocks",
        ["--order", "desc", "--token-limit", "500000"],
        lambda e, tz: reports.blocks(e, tz=tz, now_ms=PAST_NOW, order="desc", token_limit="500000"),
    ),
    (
        "blocks",
        ["--since", "20250910", "--until", "20250920", "--token-limit", "max"],
        lambda e, tz: reports.blocks(
            e, tz=tz, now_ms=PAST_NOW, since="20250910", until="20250920", token_limit="max"
        ),
    ),
    (
        "blocks",
        ["--session-length", "3"],
        lambda e, tz: reports.blocks(e, tz=tz, now_ms=PAST_NOW, session_length=3),
    ),
    (
        "blocks",
        ["--session-length", "7.5"],
        lambda e, tz: reports.blocks(e, tz=tz, now_ms=PAST_NOW, session_length=7.5),
    ),
    ("blocks", ["--recent"], lambda e, tz: reports.blocks(e, tz=tz, now_ms=PAST_NOW, recent=True)),
    ("blocks", ["--active"], lambda e, tz: reports.blocks(e, tz=tz, now_ms=PAST_NOW, active=True)),
]


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
@pytest.mark.parametrize(
    ("kind", "flags", "ours"), CASES, ids=[f"{k} {' '.join(f)}" for k, f, _ in CASES]
)
def test_report_equals_ccusage(
    corpus: tuple[Path, list[Entry]],
    tz: str,
    kind: str,
    flags: list[str],
    ours: Ours,
    ccusage: Ccusage,
) -> None:
    root, entries = corpus
    theirs = run(ccusage.binary, root, kind, tz, *flags)
    assert mismatches(ours(entries, tz), theirs) == []


def test_the_corpus_exercises_what_it_claims(corpus: tuple[Path, list[Entry]]) -> None:
    _, entries = corpus
    assert any(e.model is None for e in entries)
    assert any(e.model and e.model.endswith("-fast") for e in entries)
    assert any(e.project_path == "proj-b" and e.session_id == "sess-b1" for e in entries)
    gaps = reports.blocks(entries, tz="UTC", now_ms=PAST_NOW)["blocks"]
    assert any(b["isGap"] for b in gaps)


# --- reports that depend on the clock: built around the real "now" of the run ---------------


def _recent_corpus(root: Path, now: datetime) -> list[Entry]:
    ago = [timedelta(hours=h) for h in (30, 29, 26, 3.5, 2.2, 1.0, 0.25)]
    lines = [
        line(
            f"proj-{i % 2}/sess-{i % 3}.jsonl",
            i,
            now - delta,
            model="claude-sonnet-4-5-20250929" if i % 2 else "claude-opus-4-1-20250805",
            tokens=(1000 * (i + 1), 200 * i, 50 * i, 5000),
            cost=f"{0.37 * (i + 1):.4f}",
        )
        for i, delta in enumerate(ago)
    ]
    # Days and weeks back, for --last.
    lines += [
        line(
            "proj-0/old.jsonl",
            100 + d,
            now - timedelta(days=d),
            model="claude-sonnet-4-20250514",
            tokens=(d, 1, 0, 0),
            cost="0.5",
        )
        for d in (2, 6, 9, 16, 33, 64)
    ]
    return write(root, lines)


@pytest.mark.parametrize(
    ("flags", "token_limit"),
    [
        ([], None),
        (["--token-limit", "20000"], "20000"),
        (["-t", "max"], "max"),
        (["--active"], None),
    ],
)
def test_active_block_equals_ccusage(
    tmp_path: Path, flags: list[str], token_limit: str | None, ccusage: Ccusage
) -> None:
    entries = _recent_corpus(tmp_path, datetime.now(UTC))
    before = int(time.time() * 1000)
    theirs = run(ccusage.binary, tmp_path, "blocks", "UTC", *flags)
    after = int(time.time() * 1000)
    active = "--active" in flags
    # ccusage reads its own clock; one of the instants around the run rounds as it did.
    diffs = [
        mismatches(
            reports.blocks(entries, tz="UTC", now_ms=now, token_limit=token_limit, active=active),
            theirs,
        )
        for now in (before, (before + after) // 2, after)
    ]
    assert [] in diffs, diffs[0]
    assert any(b["isActive"] for b in theirs["blocks"])


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
@pytest.mark.parametrize(
    ("kind", "flags", "kwargs"),
    [
        ("daily", ["--last", "3"], {"last": 3}),
        ("daily", ["--last", "1", "--order", "desc"], {"last": 1, "order": "desc"}),
        ("weekly", ["--last", "2", "-w", "monday"], {"last": 2, "start_of_week": "monday"}),
        ("weekly", ["--last", "3"], {"last": 3}),
        ("monthly", ["--last", "2"], {"last": 2}),
    ],
)
def test_last_equals_ccusage(
    tmp_path: Path,
    tz: str,
    kind: str,
    flags: list[str],
    kwargs: dict[str, Any],
    ccusage: Ccusage,
) -> None:
    entries = _recent_corpus(tmp_path, datetime.now(UTC))
    now = int(time.time() * 1000)
    theirs = run(ccusage.binary, tmp_path, kind, tz, *flags)
    ours = getattr(reports, kind)(entries, tz=tz, now_ms=now, **kwargs)
    assert mismatches(ours, theirs) == []


@pytest.fixture(scope="module")
def edges(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Entry]]:
    root = tmp_path_factory.mktemp("ccusage-edges")
    return root, write(root, edge_corpus())


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Kolkata"])
@pytest.mark.parametrize(
    ("kind", "flags", "ours"), CASES, ids=[f"{k} {' '.join(f)}" for k, f, _ in CASES]
)
def test_edge_report_equals_ccusage(
    edges: tuple[Path, list[Entry]],
    tz: str,
    kind: str,
    flags: list[str],
    ours: Ours,
    ccusage: Ccusage,
) -> None:
    root, entries = edges
    assert mismatches(ours(entries, tz), run(ccusage.binary, root, kind, tz, *flags)) == []
