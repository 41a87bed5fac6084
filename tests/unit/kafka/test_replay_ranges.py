"""``first_offset``: the bisection that finds where a replay starts (and ends) by record time,
on partitions with gaps and equal timestamps, against a plain scan."""

from __future__ import annotations

import asyncio
import bisect
import random

import pytest

from ingestor.kafka.ranges import first_offset


def _lookup(records: list[tuple[int, int]], hi: int) -> object:
    offsets = [o for o, _ in records]
    calls: list[int] = []

    async def record_at(offset: int) -> tuple[int, int] | None:
        calls.append(offset)
        i = bisect.bisect_left(offsets, offset)
        if i == len(records) or records[i][0] >= hi:
            return None
        return records[i]

    record_at.calls = calls  # type: ignore[attr-defined]
    return record_at


def _first_read(records: list[tuple[int, int]], start: int) -> int | None:
    return next((o for o, _ in records if o >= start), None)


@pytest.mark.parametrize("seed", range(40))
def test_the_first_record_read_is_the_first_at_or_after_the_time(seed: int) -> None:
    rng = random.Random(seed)
    offsets = sorted(rng.sample(range(200), rng.randint(0, 60)))  # gaps: markers, compaction
    ts, records = 1000, []
    for o in offsets:
        ts += rng.choice((0, 0, 1, 5))  # equal timestamps are common (one batch, one ms)
        records.append((o, ts))
    hi = 200
    since = rng.randint(990, ts + 3)
    lookup = _lookup(records, hi)
    start = asyncio.run(first_offset(0, hi, lookup, lambda t: t >= since))  # type: ignore[arg-type]
    wanted = [o for o, t in records if t >= since]
    assert _first_read(records, start) == (wanted[0] if wanted else None)
    # Nothing wanted is skipped, nothing unwanted is read.
    assert all(o >= start for o in wanted)
    assert all(o < start for o, t in records if t < since)
    assert len(lookup.calls) <= 9  # type: ignore[attr-defined]  # log2(200) + 1


def test_an_empty_range_and_a_time_past_everything_give_the_end() -> None:
    records = [(0, 10), (1, 20), (2, 30)]
    assert asyncio.run(first_offset(3, 3, _lookup(records, 3), lambda t: True)) == 3  # type: ignore[arg-type]
    assert asyncio.run(first_offset(0, 3, _lookup(records, 3), lambda t: t >= 99)) == 3  # type: ignore[arg-type]
    assert asyncio.run(first_offset(0, 3, _lookup(records, 3), lambda t: t >= 0)) == 0  # type: ignore[arg-type]
    assert asyncio.run(first_offset(0, 3, _lookup(records, 3), lambda t: t > 20)) == 2  # type: ignore[arg-type]
