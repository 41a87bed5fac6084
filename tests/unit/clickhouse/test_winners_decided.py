"""The winners step's rule over fetched Arrow columns (``_decided``: codes, file ranks, current
generations, then ``decide_columns`` and ``decide`` for the rest) counts what ``decide`` counts
over the same copies as Python values."""

from __future__ import annotations

import random
from decimal import Decimal

import pyarrow as pa
import pytest

from ingestor.clickhouse.winners import _decided
from ingestor.usage.winners import StoredCopy, decide


def line(file: str, offset: int, mid: str, rid: str, rng: random.Random) -> StoredCopy:
    return StoredCopy(
        rng.choice(["host", "other"]), mid, file, rng.randint(0, 1), offset, rid,
        rng.choice(["s1", "s2"]), int(rng.random() < 0.2), rng.choice(["", "fast"]),
        rng.choice([1_000, 2_000]), "claude-x", "2.0.0", rng.choice([0, 10, 20]), 0, 0, 0,
        Decimal("0.5"), 1, Decimal("0.25"), 0,
    )  # fmt: skip


def fetched(copies: list[StoredCopy]) -> pa.Table:
    """The copies as ``_settle`` fetches them: the rule's columns, in ``_DECIDING``'s order."""
    columns = [
        pa.array([c.dedup_scope for c in copies], pa.string()),
        pa.array([c.message_id for c in copies], pa.string()),
        pa.array([c.source_file for c in copies], pa.string()),
        pa.array([c.source_generation for c in copies], pa.uint32()),
        pa.array([c.source_offset for c in copies], pa.uint64()),
        pa.array([c.request_id for c in copies], pa.string()),
        pa.array([c.line_session_id for c in copies], pa.string()),
        pa.array([c.is_sidechain for c in copies], pa.uint8()),
        pa.array([c.speed for c in copies], pa.string()),
        pa.array([c.timestamp for c in copies], pa.int64()),
        pa.array([c.copy().total for c in copies], pa.uint64()),
    ]
    return pa.Table.from_arrays(columns, names=[f"c{i}" for i in range(len(columns))])


@pytest.mark.parametrize("seed", range(100))
def test_the_columns_count_what_decide_counts(seed: int) -> None:
    rng = random.Random(seed)
    files = [f"p/{name}.jsonl" for name in ("a", "b", "é", "B")]
    copies = [
        line(
            rng.choice(files),
            rng.randint(0, 20),
            rng.choice(["", "m1", "m2", "m3"]),
            rng.choice(["r1", "r1", "r2", ""]),
            rng,
        )
        for _ in range(rng.randint(1, 60))
    ]
    # Every file has a current generation: the worker knows each fetched copy's file.
    current = {f: rng.randint(0, 1) for f in files}
    winners, slots = _decided(fetched(copies), current)
    got = {
        (copies[w].source_file, copies[w].source_offset, copies[s].source_file,
         copies[s].source_offset)
        for w, s in zip(winners.tolist(), slots.tolist(), strict=True)
    }  # fmt: skip
    assert len(got) == len(winners)
    want = {
        (k.source_file, k.source_offset, k.slot_file, k.slot_offset)
        for k in decide(copies, current)
    }
    assert got == want
