"""Stored changes to what counts applied to the worker's session table (``worker/follow.py``),
without a broker: the table is a dict, as Faust's memory store is."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, cast

from faust.streams import current_event

from ingestor.clickhouse.write import Batch
from ingestor.settings import Settings
from ingestor.usage.winners import CountedChange
from ingestor.worker.dlq import DeadLetterLimit
from ingestor.worker.follow import apply_changes
from ingestor.worker.sessions import SessionAgg
from ingestor.worker.state import Source, WorkerState

ROOT = "/h/.claude/projects/proj"


def change(sign: int, file: str, scope: str = "host", out: int = 10) -> CountedChange:
    return CountedChange(sign, scope, file, 1_000, "m", 1, out, 0, 0, Decimal("0.5"), ("Bash",))


def state() -> WorkerState:
    out = WorkerState(
        settings=Settings(_env_file=None),  # type: ignore[call-arg]
        ch=cast(Any, None),
        batch=Batch(10, 1.0, time.monotonic),
        limit=DeadLetterLimit(0.5, 10),
    )
    out.sessions = Table()
    return out


class Table(dict[bytes, bytes]):
    """Faust's table as the worker uses it, remembering the current event of each write (the
    changelog partition comes from it)."""

    def __init__(self) -> None:
        super().__init__()
        self.partitions: list[int] = []

    def __setitem__(self, key: bytes, value: bytes) -> None:
        event = current_event()
        assert event is not None
        self.partitions.append(event.message.partition)
        super().__setitem__(key, value)


def test_changes_reach_their_sessions_and_mark_them_for_a_summary_row() -> None:
    s = state()
    s.scopes["host"] = Source("t.transcripts", 2)
    apply_changes(s, [change(1, f"{ROOT}/a.jsonl"), change(1, f"{ROOT}/a/subagents/x.jsonl")])
    apply_changes(s, [change(-1, f"{ROOT}/a.jsonl"), change(1, f"{ROOT}/a.jsonl", out=30)])
    agg = SessionAgg.decode(s.sessions[b"a"])
    assert (agg.project, agg.totals.messages, agg.totals.output_tokens) == ("proj", 2, 40)
    assert agg.tool_uses == {"Bash": 2} and agg.totals.cost == Decimal(1)
    assert s.dirty == {b"a": agg}
    assert (s.counts["counted"], s.counts["retracted"]) == (3, 1)
    assert s.sessions.partitions == [2, 2]  # the scope's input partition, for each write
    assert current_event() is None  # only while writing


def test_a_changed_sessions_summary_row_is_pending_until_written() -> None:
    """``pending_rows`` (``/stats/``, what ``up --once`` and the tests wait on) counts the summary
    rows owed to changed sessions: a worker stopped before writing them left sessions behind."""
    s = state()
    s.scopes["host"] = Source("t.transcripts", 2)
    s.batch.add({"transcript_lines": [{"a": 1}, {"a": 2}]})
    s.inflight_rows = 3
    apply_changes(s, [change(1, f"{ROOT}/a.jsonl"), change(1, f"{ROOT}/b.jsonl")])
    assert s.pending_rows == 2 + 3 + 2
    s.dirty.clear()  # taken by the next flush, whose rows count as in flight
    assert s.pending_rows == 5


def test_a_scope_not_met_since_the_rebalance_waits_for_its_reconciliation() -> None:
    s = state()
    apply_changes(s, [change(1, f"{ROOT}/a.jsonl", scope="elsewhere")])
    assert s.sessions == {} and s.dirty == {}
