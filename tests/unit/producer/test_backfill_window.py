"""``Window``: a date-filtered backfill keeps the records whose line time is inside, each with its
own offset and end, and drops lines that have no time (dead letters among them)."""

from __future__ import annotations

import orjson
import pytest

from ingestor.cli.backfill import parse_bound
from ingestor.producer.lines import parse_chunk
from ingestor.producer.window import Window


def _line(ts: str | None, n: int) -> bytes:
    body: dict[str, object] = {"type": "user", "uuid": f"u{n}", "sessionId": "s"}
    if ts is not None:
        body["timestamp"] = ts
    return orjson.dumps(body)


@pytest.mark.parametrize("columns", [False, True])
def test_records_inside_the_window_are_kept_with_their_offsets(columns: bool) -> None:
    lines = [
        _line("2025-09-01T23:59:59.999Z", 0),
        _line("2025-09-02T00:00:00Z", 1),
        b"",  # blank: a dead letter, no time
        _line(None, 3),
        b"not json",
        _line("2025-09-02T23:59:59.999Z", 5),
        _line("2025-09-03T00:00:00Z", 6),
    ]
    data = b"\n".join(lines) + b"\n"
    chunk = parse_chunk(data, 100, max_record_bytes=10_000, columns=columns)
    assert sum(type(r) is tuple for r in chunk.records) == (5 if columns else 0)
    window = Window(parse_bound("20250902", end=False), parse_bound("2025-09-02", end=True))
    kept = window(chunk)
    offsets = [r[0] if type(r) is tuple else orjson.loads(r)["offset"] for r in kept.records]
    starts = [100 + sum(len(x) + 1 for x in lines[:i]) for i in range(len(lines))]
    assert offsets == [starts[1], starts[5]]
    assert kept.ends == [starts[2], starts[6]]
    assert (kept.start, kept.end) == (chunk.start, chunk.end)  # the read ends where it ended
    assert kept.bad_lines == 0
    assert len(Window()(chunk).records) == 4  # open: every line that has a time


def test_bounds_are_days_in_utc_or_iso_times() -> None:
    assert parse_bound("20250902", end=False) == 1756771200000
    assert parse_bound("20250902", end=True) == 1756771200000 + 86_400_000 - 1
    assert parse_bound("2025-09-02T01:00:00+01:00", end=False) == 1756771200000
    assert parse_bound("2025-09-02T00:00:00", end=True) == 1756771200000
