"""``compare``: the files against ClickHouse, each difference named, seed 001's figures."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

from ingestor.corpus.generate import generate
from ingestor.corpus.reference import Accounting, FileTally, Reference
from ingestor.report.verify import SessionTally, compare, session_tallies


def _clickhouse_as_the_files(
    reference: Reference,
) -> tuple[dict[str, FileTally], dict[str, SessionTally]]:
    files = {p: dataclasses.replace(t) for p, t in reference.files.items() if t.valid or t.invalid}
    return files, session_tallies(reference.entries)


def test_the_same_numbers_verify_and_every_kind_of_difference_is_named(tmp_path: Path) -> None:
    generate(tmp_path, lines=600, seed=11)
    reference = Reference.load(tmp_path)
    files, sessions = _clickhouse_as_the_files(reference)
    verdict = compare(reference, files, sessions)
    assert verdict.ok and verdict.accuracy_ratio == 1.0 and verdict.undercount_percent == 0.0
    assert verdict.lines == reference.accounting.lines and verdict.sessions == len(sessions)
    assert verdict.lines_out()[-1].startswith("OK")

    path = sorted(files)[0]
    files[path].valid -= 1
    files[path].usage_tokens -= 5
    session = sorted(sessions)[0]
    sessions[session] = SessionTally(
        sessions[session].entries, sessions[session].tokens - 100, sessions[session].cost
    )
    gone = sorted(files)[-1]
    del files[gone]
    verdict = compare(reference, files, sessions)
    assert not verdict.ok
    text = "\n".join(verdict.lines_out(shown=100))
    assert f"file {path}: lines stored" in text and f"file {path}: usage tokens" in text
    assert f"session {session}: ClickHouse" in text and f"file {gone}: lines stored 0" in text
    assert verdict.tokens_stored == verdict.tokens_on_disk - 100
    assert 0 < verdict.undercount_percent < 1 and verdict.accuracy_ratio < 1
    assert "MISMATCH" in text


def test_a_session_counted_only_on_one_side_is_named() -> None:
    reference = Reference([], Accounting(0, 0, 0, 0, 0, 0))
    verdict = compare(reference, {}, {"s1": SessionTally(1, 10, Decimal("0.5"))})
    assert verdict.differences == ["session s1: counted in ClickHouse only"]
    assert verdict.accuracy_ratio == float("inf")
