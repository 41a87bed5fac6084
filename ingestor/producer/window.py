"""A backfill's date window: the records of a chunk whose line falls inside it. Pure.

``ingestor backfill --since/--until`` applies it in the watcher, to each chunk as it is read and
before anything is sent, so lines outside the window never reach Kafka. A record without a
line timestamp (a dead letter, a line that has none) is outside every window: it belongs to no
date (a line sent in columns: ``ts`` 0). The chunk's ``end`` stays where the read ended; each
kept record keeps its own offset and end, so the rows stored are exactly those an unfiltered run
stores for these lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ingestor.producer.lines import ParsedChunk, parse_ts
from ingestor.wire import LINE_COLUMNS

__all__ = ["Window"]

_TS = LINE_COLUMNS.index("ts")


@dataclass(frozen=True, slots=True)
class Window:
    """Line timestamps ``since_ms <= t <= until_ms`` (either bound None: open)."""

    since_ms: int | None = None
    until_ms: int | None = None

    def __call__(self, chunk: ParsedChunk) -> ParsedChunk:
        kept = ParsedChunk(start=chunk.start, end=chunk.end)
        for record, end in zip(chunk.records, chunk.ends, strict=True):
            if self.holds(record):
                kept.records.append(record)
                kept.ends.append(end)
        # Lines are kept whole or not at all: the first timestamp may be a dropped line's.
        kept.first_ts = chunk.first_ts
        return kept

    def holds(self, record: bytes | tuple[Any, ...]) -> bool:
        if isinstance(record, tuple):  # a line in columns: its epoch milliseconds, 0 for none
            ms = record[_TS]
            if ms == 0:
                return False
        else:
            line = orjson.loads(record).get("line")
            when = parse_ts(line.get("timestamp")) if isinstance(line, dict) else None
            if when is None:
                return False
            ms = int(when.timestamp() * 1000)
        if self.since_ms is not None and ms < self.since_ms:
            return False
        return self.until_ms is None or ms <= self.until_ms
