"""Keep ``usage_rollup`` (``schema/0015_usage_rollup.sql``) summing what ``counted_usage`` holds.

As for the events rollups (``rollups.py``), each step can be done again after a crash:

* every ``counted_usage`` insert carries a fresh ``batch_id`` (``winners._settle``), so its rows
  can be read back as they were stored;
* a batch is rolled up by one insert with its own deduplication token: done twice, the second
  is a no-op. The worker sums the rows it has just inserted (``rollup_rows``); after a crash
  they are read back (an ``INSERT … SELECT``, the same sums under the same token);
* ``usage_rolled_batches`` records a batch once its sums are written. ``ensure_usage_rollup``
  (the worker, at start) rolls up every batch not recorded, after filling the table once from
  everything stored before it existed. ``usage_rollup_ready`` tells readers both hold: then
  the sums equal ``counted_usage``'s.

Merges of ``counted_usage`` do not matter to a rolled-up batch (its sums are already written);
one not yet rolled up may have a +1 collapsed with a later -1, and then neither is summed, which
is the same total.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from ingestor.clickhouse.engine import ClickHouse, quote_string
from ingestor.errors import StorageError

__all__ = [
    "BUCKET_MS",
    "ROLLUP_TABLE",
    "ensure_usage_rollup",
    "new_batch_id",
    "pending_batches",
    "roll_up_counted",
    "rollup_rows",
    "usage_rollup_ready",
]

ROLLUP_TABLE = "usage_rollup"
_ROLLED = "usage_rolled_batches"
_READY = "usage_rollup_ready"
BUCKET_MS = 900_000  # a quarter hour

# One row per group of the selected counted_usage rows; ORDER BY makes the insert's blocks, hence
# their deduplication ids, the same each time. minIf/maxIf over no +1 row give the type's default:
# such a group has a -1 row, so `retracted` marks its instants and slot as not to be read.
_SELECT = f"""
SELECT intDiv(toUnixTimestamp64Milli(timestamp), {BUCKET_MS}) AS bucket, dedup_scope,
       source_file, model, speed = 'fast' AS fast, sum(sign), countIf(sign < 0),
       sum(sign * input_tokens), sum(sign * output_tokens), sum(sign * cache_creation_tokens),
       sum(sign * cache_read_tokens), toDecimal128(sum(sign * cost_usd), 10),
       toDecimal128(sum(sign * cost_calculated), 10),
       toDecimal128(sum(sign * if(has_cost_usd = 1, cost_usd, toDecimal128(0, 10))), 10),
       minIf((slot_file, slot_offset), sign > 0),
       minIf(toUnixTimestamp64Milli(timestamp), sign > 0),
       maxIf(toUnixTimestamp64Milli(timestamp), sign > 0)
FROM counted_usage
WHERE {{where}}
GROUP BY bucket, dedup_scope, source_file, model, fast
ORDER BY dedup_scope, source_file, bucket, model, fast
"""  # columns by position: an alias named as a column would stand for it in the sums


def new_batch_id() -> str:
    return uuid.uuid4().hex


def roll_up_counted(ch: ClickHouse, batch_id: str, counted: Any = None) -> None:
    """Write ``batch_id``'s sums, then record it. Idempotent.

    ``counted``: the batch's ``counted_usage`` rows as just inserted (a ``pyarrow.Table``), to
    sum here instead of reading them back (``rollup_rows``; the same sums, under the same
    deduplication token, so either way done twice is once)."""
    batch = quote_string(batch_id)
    token = f"{batch_id}:{ROLLUP_TABLE}"
    if counted is None:
        ch.execute(
            f"INSERT INTO {ROLLUP_TABLE} SETTINGS insert_deduplication_token = "
            f"{quote_string(token)}, max_threads = 1 " + _SELECT.format(where=f"batch_id = {batch}")
        )
    else:
        ch.insert(ROLLUP_TABLE, rollup_rows(counted), token=token)
    ch.execute(f"INSERT INTO {_ROLLED} (batch_id) VALUES ({batch})")


# usage_rollup's columns, as rollup_rows gives them (_SELECT's, by position).
_ROLLUP_COLUMNS = (
    "bucket", "dedup_scope", "source_file", "model", "fast", "lines", "retracted",
    "input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens", "cost_usd",
    "cost_calculated", "cost_display", "first", "first_ms", "last_ms",
)  # fmt: skip
_TOKENS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")


def rollup_rows(counted: Any) -> list[dict[str, Any]]:
    """What ``_SELECT`` computes over these ``counted_usage`` rows (a ``pyarrow.Table`` with its
    columns by name), as ``usage_rollup`` rows in its order. Pure.

    As ClickHouse does: a quarter hour is ``intDiv`` of epoch milliseconds (towards zero), and
    the first slot and instants of a group with no +1 row are the types' defaults."""
    import pyarrow as pa  # type: ignore[import-untyped]  # the caller's table: loaded already

    stamps = counted.column("timestamp")
    stamps = stamps.cast(pa.timestamp("ms", tz=stamps.type.tz)).cast(pa.int64())
    columns = [counted.column(name).to_pylist() for name in _SUMMED]
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for ms, row in zip(stamps.to_pylist(), zip(*columns, strict=True), strict=True):
        scope, file, model, speed, sign, *tokens, cost, has_cost, calculated, slot_file, at = row
        bucket = abs(ms) // BUCKET_MS * (1 if ms >= 0 else -1)
        key = (bucket, scope, file, model, int(speed == "fast"))
        sums = groups.get(key)
        if sums is None:  # lines, retracted, 4 token sums, 3 cost sums, first, first/last ms
            sums = groups[key] = [0, 0, 0, 0, 0, 0, _ZERO, _ZERO, _ZERO, None, None, None]
        sums[0] += sign
        sums[1] += 1 if sign < 0 else 0
        for i, value in enumerate(tokens, 2):
            sums[i] += sign * value
        sums[6] += sign * cost
        sums[7] += sign * calculated
        if has_cost == 1:
            sums[8] += sign * cost
        if sign > 0:
            first = (slot_file, at)
            sums[9] = first if sums[9] is None else min(sums[9], first)
            sums[10] = ms if sums[10] is None else min(sums[10], ms)
            sums[11] = ms if sums[11] is None else max(sums[11], ms)
    out = []
    for key in sorted(groups, key=lambda k: (k[1], k[2], k[0], k[3], k[4])):
        sums = groups[key]
        if sums[9] is None:  # minIf/maxIf over no row: the types' defaults
            sums[9:] = [("", 0), 0, 0]
        out.append(dict(zip(_ROLLUP_COLUMNS, (*key, *sums), strict=True)))
    return out


_SUMMED = (
    "dedup_scope", "source_file", "model", "speed", "sign", *_TOKENS, "cost_usd",
    "has_cost_usd", "cost_calculated", "slot_file", "slot_offset",
)  # fmt: skip
_ZERO = Decimal(0)


def pending_batches(ch: ClickHouse) -> list[str]:
    """Batches stored in ``counted_usage`` and not recorded as rolled up."""
    return [
        str(b)
        for (b,) in ch.query(
            f"SELECT DISTINCT batch_id FROM counted_usage WHERE batch_id != '' "
            f"AND batch_id NOT IN (SELECT batch_id FROM {_ROLLED}) ORDER BY batch_id"
        )
    ]


def usage_rollup_ready(ch: ClickHouse) -> bool:
    """Whether ``usage_rollup`` sums every counted line stored (else reports group lines)."""
    try:
        filled = bool(ch.query(f"SELECT count() FROM {_READY}")[0][0])
    except StorageError:  # not migrated yet
        return False
    return filled and not pending_batches(ch)


def ensure_usage_rollup(ch: ClickHouse) -> int:
    """Fill ``usage_rollup`` once from everything stored if it never was, then roll up every
    batch left unrecorded (a crash between a batch's insert and its sums). Returns the batches
    rolled up (the fill counts as one)."""
    done = 0
    if not ch.query(f"SELECT count() FROM {_READY}")[0][0]:
        # From scratch, whatever a crash left half way: the sums of every stored row, every
        # batch then recorded. Without deduplication: a block equal to a rolled-up batch's
        # (a small database) is not that batch's again.
        ch.execute(f"TRUNCATE TABLE {ROLLUP_TABLE}")
        ch.execute(
            f"INSERT INTO {ROLLUP_TABLE} SETTINGS insert_deduplicate = 0 "
            + _SELECT.format(where="1")
        )
        ch.execute(
            f"INSERT INTO {_ROLLED} (batch_id) SELECT DISTINCT batch_id FROM counted_usage "
            "WHERE batch_id != ''"
        )
        ch.execute(f"INSERT INTO {_READY} (ready_at) VALUES (now64(3))")
        done += 1
    for batch_id in pending_batches(ch):
        roll_up_counted(ch, batch_id)
        done += 1
    return done
