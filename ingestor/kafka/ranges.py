"""Offset ranges of topics, found by record time, and read back exactly: ``ingestor replay``.

A replay reads with a plain consumer that belongs to no group and commits nothing: it assigns
one partition at a time and seeks, so it can neither disturb the live worker's group nor leave
offsets behind. What it reads is fixed up front: per partition, ``[start, end)`` where ``end``
is the end offset when the replay began (or the first record after ``--until``), so a replay of
a topic that keeps growing still ends.

``--from <time>``: Tansu 0.6.0 answers no ListOffsets by timestamp, so the start is found by
bisecting on the records' own timestamps (``first_offset``, pure over a lookup), which works on
every broker at log2(records) fetches a partition. It assumes a partition's timestamps do not go
back in time, which holds for records stamped at creation by one producer a key (ours).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka import errors as kafka_errors

from ingestor.errors import BrokerError
from ingestor.local.compat import end_offsets

__all__ = ["Message", "Range", "first_offset", "plan", "read_range"]

STALL_S = 30.0  # nothing arrives from a range that has records left: the broker is stuck


@dataclass(frozen=True, slots=True)
class Range:
    """Offsets ``[start, end)`` of one partition."""

    topic: str
    partition: int
    start: int
    end: int

    @property
    def size(self) -> int:
        return max(0, self.end - self.start)


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    partition: int
    offset: int
    value: bytes
    timestamp_ms: int


Lookup = Callable[[int], Awaitable[tuple[int, int] | None]]


async def first_offset(lo: int, hi: int, record_at: Lookup, wanted: Callable[[int], bool]) -> int:
    """The least offset in ``[lo, hi]`` from which every record's timestamp is ``wanted``.

    ``record_at(o)`` is ``(offset, timestamp_ms)`` of the first record at or after ``o``, or None
    when there is none below ``hi``; ``wanted`` must be monotone (False… then True…) along the
    partition. Returns ``hi`` when no record is wanted.
    """
    while lo < hi:
        mid = (lo + hi) // 2
        found = await record_at(mid)
        if found is None or found[0] >= hi:
            hi = mid  # nothing in [mid, hi): reading from mid reads what reading from hi would
            continue
        offset, timestamp_ms = found
        if wanted(timestamp_ms):
            hi = mid  # no record in [mid, offset), so starting at mid starts at this one
        else:
            lo = offset + 1
    return lo


async def plan(
    consumer: AIOKafkaConsumer,
    topics: Sequence[str],
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> list[Range]:
    """Per partition of ``topics``: the offsets to read — from the first record at or after
    ``since_ms`` (None: the earliest kept) to the last at or before ``until_ms`` (None: the end
    now). Raises ``BrokerError`` for an unknown topic or a broker failure."""
    tps: list[TopicPartition] = []
    for topic in topics:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise BrokerError(f"topic {topic!r} does not exist on the broker")
        tps.extend(TopicPartition(topic, p) for p in sorted(partitions))
    try:
        begins = await consumer.beginning_offsets(tps)
    except kafka_errors.KafkaError as exc:
        raise BrokerError(f"ListOffsets(earliest) failed: {exc!r}") from exc
    ends = await end_offsets(consumer, tps)

    def from_since(ts: int) -> bool:
        return since_ms is not None and ts >= since_ms

    def past_until(ts: int) -> bool:
        return until_ms is not None and ts > until_ms

    out = []
    for tp in tps:
        start, end = int(begins[tp]), int(ends[tp])

        async def record_at(
            offset: int, tp: TopicPartition = tp, end: int = end
        ) -> tuple[int, int] | None:
            return await _record_at(consumer, tp, offset, end)

        if since_ms is not None and start < end:
            start = await first_offset(start, end, record_at, from_since)
        if until_ms is not None and start < end:
            end = await first_offset(start, end, record_at, past_until)
        out.append(Range(tp.topic, tp.partition, start, end))
    return out


async def _record_at(
    consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, end: int
) -> tuple[int, int] | None:
    if offset >= end:
        return None
    consumer.assign([tp])
    consumer.seek(tp, offset)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STALL_S
    while loop.time() < deadline:
        batch = await consumer.getmany(tp, timeout_ms=500, max_records=1)
        for record in batch.get(tp, ()):
            return int(record.offset), int(record.timestamp)
        if await consumer.position(tp) >= end:
            return None
    raise BrokerError(f"{tp.topic}[{tp.partition}]: no record at or after offset {offset}")


async def read_range(
    consumer: AIOKafkaConsumer, wanted: Range, *, max_bytes: int, max_messages: int = 5000
) -> tuple[list[Message], int]:
    """Messages of ``wanted`` from its start, up to ``max_bytes`` of values or ``max_messages``
    (at least one); and the offset to continue from (``wanted.end`` when done)."""
    tp = TopicPartition(wanted.topic, wanted.partition)
    if wanted.size == 0:
        return [], wanted.end
    consumer.assign([tp])
    consumer.seek(tp, wanted.start)
    out: list[Message] = []
    nbytes = 0
    following = wanted.start
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STALL_S
    while following < wanted.end and nbytes < max_bytes and len(out) < max_messages:
        batch = await consumer.getmany(tp, timeout_ms=500, max_records=500)
        records = batch.get(tp, [])
        for record in records:
            if record.offset >= wanted.end or nbytes >= max_bytes or len(out) >= max_messages:
                break
            value = record.value or b""
            out.append(Message(tp.topic, tp.partition, record.offset, value, record.timestamp))
            nbytes += len(value)
            following = record.offset + 1
        if records:
            deadline = loop.time() + STALL_S
        elif await consumer.position(tp) >= wanted.end:
            following = wanted.end  # only gaps (markers, compaction) were left
        elif loop.time() > deadline:
            raise BrokerError(
                f"{tp.topic}[{tp.partition}]: nothing arrives after offset {following} "
                f"though the range ends at {wanted.end}"
            )
    return out, min(following, wanted.end)
