"""Small builders of transcript lines and events for the ClickHouse tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ingestor.clickhouse.engine import ClickHouse
from ingestor.clickhouse.winners import maintain_winners
from ingestor.clickhouse.write import write_batch
from ingestor.models import TranscriptLine, validate_event, validate_transcript_line
from ingestor.rows.records import event_rows, transcript_row
from ingestor.wire import TranscriptSource


def usage_line(
    *,
    ts: str,
    message_id: str | None = None,
    request_id: str | None = None,
    inp: int = 0,
    out: int = 0,
    cc: int = 0,
    cr: int = 0,
    model: str = "claude-sonnet-4-5-20250929",
    sidechain: bool = False,
    session: str | None = "s1",
    cost: str | None = None,
    tools: tuple[str, ...] = (),
) -> TranscriptLine:
    message: dict[str, Any] = {
        "model": model,
        "usage": {
            "input_tokens": inp,
            "output_tokens": out,
            "cache_creation_input_tokens": cc,
            "cache_read_input_tokens": cr,
        },
        "content": [{"type": "tool_use", "name": t, "input": {}} for t in tools],
    }
    if message_id is not None:
        message["id"] = message_id
    data: dict[str, Any] = {
        "type": "assistant",
        "timestamp": ts,
        "isSidechain": sidechain,
        "message": message,
    }
    if request_id is not None:
        data["requestId"] = request_id
    if session is not None:
        data["sessionId"] = session
    if cost is not None:
        data["costUSD"] = Decimal(cost)
    return validate_transcript_line(data)


def user_line(ts: str, session: str = "s1") -> TranscriptLine:
    return validate_transcript_line({"type": "user", "timestamp": ts, "sessionId": session})


def store_lines(
    ch: ClickHouse,
    source: TranscriptSource,
    lines: list[tuple[int, TranscriptLine]],
    *,
    length: int = 100,
    token: str | None = None,
) -> None:
    rows = [transcript_row(line, source, offset, length) for offset, line in lines]
    ch.insert("transcript_lines", rows, token=token)
    maintain_winners(ch, {"transcript_lines": rows})  # as the worker does after the lines


def store_events(ch: ClickHouse, events: list[dict[str, Any]], *, token: str) -> None:
    tables: dict[str, list[dict[str, Any]]] = {}
    for raw in events:
        for table, rows in event_rows(validate_event(raw)).items():
            tables.setdefault(table, []).extend(rows)
    # The worker's own write: id checks, batch ids and the events rollups.
    write_batch(ch, tables, token=token, retries=0, backoff_s=0.1)


class Wrapped(ClickHouse):
    """The real engine behind the interface: each call passes through unless a subclass says
    otherwise, and ``close`` leaves the real one open (the fixture closes it)."""

    def __init__(self, real: ClickHouse) -> None:
        super().__init__(real.target)
        self._real = real

    def execute(self, sql: str) -> None:
        self._real.execute(sql)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self._real.query(sql)

    def insert(
        self, table: str, rows: Sequence[Mapping[str, Any]], *, token: str | None = None
    ) -> None:
        self._real.insert(table, rows, token=token)

    def lost_inserts(self) -> int:
        return self._real.lost_inserts()

    def close(self) -> None:
        pass
