"""Ceilings the end-to-end figures are judged against: what the parts do alone.

- ``raw_consume``: a bare aiokafka loop reading the same topic — no Faust, no decoding — so the
  worker's records/s can be read as a fraction of what the broker and client allow.
- ``chdb_direct``: chdb reading the JSONL tree itself and answering a daily total — no Kafka at
  all — the fastest path from files to a number.

Both measure wall seconds, process CPU seconds (all threads, so chdb's own threads count) and the
process's peak RSS. Peak RSS is ``ru_maxrss``: a lifetime high-water mark, so run each ceiling in a
fresh process when its memory figure matters.
"""

from __future__ import annotations

import asyncio
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Figures", "chdb_direct", "raw_consume"]


@dataclass(frozen=True)
class Figures:
    lines: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0


class _Meter:
    def __enter__(self) -> _Meter:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def figures(self, lines: int) -> Figures:
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        return Figures(lines, self.wall, self.cpu, rss_mb)


def raw_consume(
    bootstrap: str, topic: str, expected_messages: int, *, timeout_s: float = 600.0
) -> Figures:
    """Consume ``topic`` from the beginning until ``expected_messages`` records were read.

    Uses no consumer group and commits nothing, so it can run beside the worker's group.
    Raises ``TimeoutError`` when fewer arrive within ``timeout_s``: a partial count is no ceiling.
    """
    from aiokafka import AIOKafkaConsumer

    async def consume() -> int:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            seen = 0
            while seen < expected_messages:
                batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
                seen += sum(len(records) for records in batches.values())
            return seen
        finally:
            await consumer.stop()

    with _Meter() as meter:
        seen = asyncio.run(asyncio.wait_for(consume(), timeout_s))
    return meter.figures(seen)


# One JSON parse per line (a typed JSONExtract), as a real schema-on-write ingest would do.
_SHAPE = (
    "Tuple(timestamp Nullable(String), requestId Nullable(String), isSidechain Bool,"
    " message Tuple(id Nullable(String), model Nullable(String), usage Tuple("
    "input_tokens UInt64, output_tokens UInt64, cache_creation_input_tokens UInt64,"
    " cache_read_input_tokens UInt64)))"
)
_CREATE = """
CREATE TABLE lines (
    file String, ts Nullable(DateTime64(3, 'UTC')), message_id String, request_id String,
    sidechain Bool, model String, input UInt64, output UInt64, creation UInt64, read UInt64
) ENGINE = MergeTree ORDER BY (message_id, request_id)
"""
_INSERT = """
INSERT INTO lines SELECT
    _file, parseDateTime64BestEffortOrNull(j.timestamp, 3, 'UTC'),
    ifNull(j.message.id, ''), ifNull(j.requestId, ''), j.isSidechain, ifNull(j.message.model, ''),
    j.message.usage.input_tokens, j.message.usage.output_tokens,
    j.message.usage.cache_creation_input_tokens, j.message.usage.cache_read_input_tokens
FROM (SELECT _file, JSONExtract(line, '{shape}') AS j FROM file('{glob}', 'LineAsString'))
"""
# Streaming copies collapse to their largest; a ceiling, not ccusage's full rule.
_DAILY = """
SELECT day, sum(tokens) FROM (
    SELECT message_id, request_id, argMax(ts, input + output) AS last_ts,
           max(input + output) + argMax(creation + read, input + output) AS tokens
    FROM lines WHERE ts IS NOT NULL AND message_id != '' GROUP BY message_id, request_id
) GROUP BY toDate(last_ts) AS day ORDER BY day
"""


def chdb_direct(corpus_root: Path) -> Figures:
    """Load every line under ``corpus_root/projects`` into a scratch chdb table, then a daily total.

    ``lines`` is the number of rows chdb stored (one per non-empty line). The scratch database
    lives in a temporary directory removed afterwards. chdb allows one data path per process:
    call this in a process that has no other chdb session open.
    """
    from chdb import session

    new_session: Any = session.Session  # untyped library

    glob = (corpus_root.resolve() / "projects" / "**" / "*.jsonl").as_posix().replace("'", "\\'")
    with tempfile.TemporaryDirectory(prefix="chdb-ceiling-") as scratch, _Meter() as meter:
        db = new_session(scratch)
        try:
            db.query(_CREATE)
            db.query(_INSERT.format(shape=_SHAPE, glob=glob))
            db.query(_DAILY, "CSV")
            lines = int(str(db.query("SELECT count() FROM lines", "CSV")).strip())
        finally:
            db.close()
    return meter.figures(lines)
