"""Report entries from the dedup winners the worker keeps at write time.

``summed_columns`` returns one summed group per (local day, scope, file, model), or a coarser
grain a report allows, as columns in ccusage's order: from ``usage_rollup`` (sums kept per
quarter hour at write time, schema 0015) when it covers everything stored, else by grouping
``counted_usage FINAL``. ``rollup_entries`` makes an ``Entry`` of each group; the session
report reads the columns themselves (``session_columns.py``). Daily, weekly, monthly, session
and models only add entries up, so those sums build the same report as the lines themselves.
What else the builders read of an entry is kept exact:

* order: a group stands at its first line's place in ccusage's list (``slot``), so
  ``modelsUsed``, breakdown ties and session ties come out in first-seen order;
* time: the group's entry carries its earliest instant, and its latest as ``last_ms`` (the
  session report's ``firstActivity``/``lastActivity``); per day, both are on the group's day.

Days are cut in SQL with the Python zone's offsets (``local_day.py``); each day's first and last
instant are checked against Python's cut here, and on a difference the lines are read instead.
``line_entries`` returns every counted line (``blocks`` needs their instants). ``--project``
does not come here: ccusage filters before dedup, so that report still decides itself
(``entries.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from ingestor.clickhouse.engine import ClickHouse, quote_string, sized_query
from ingestor.clickhouse.usage_rollup import BUCKET_MS, usage_rollup_ready
from ingestor.report.local_day import day_of, local_day_sql
from ingestor.usage.entry import Entry
from ingestor.usage.paths import project_of, session_parts
from ingestor.usage.prices import SYNTHETIC_MODEL, CostMode
from ingestor.usage.reports_core import local_date, zone

__all__ = ["Summed", "line_entries", "model_name", "rollup_entries", "summed_columns"]

# One row per line: FINAL collapses each +1 and its -1 twin, so what is left with sign 1 is a
# line that counts. Aggregates take sign into their condition (-If): they run after FINAL,
# where a WHERE on a column outside the key might be applied before it.
_LINES = """
SELECT dedup_scope, source_file, slot_file, slot_offset, sign,
       toUnixTimestamp64Milli(timestamp) AS ts, model, speed = 'fast' AS fast, version,
       input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd,
       has_cost_usd, cost_calculated, usage_limit_reset_ms
FROM counted_usage FINAL
"""

_COST = {
    CostMode.AUTO: "cost_usd",
    CostMode.CALCULATE: "cost_calculated",
    CostMode.DISPLAY: "if(has_cost_usd = 1, cost_usd, toDecimal128(0, 10))",
}


@dataclass(frozen=True, slots=True)
class Summed:
    """Summed groups as columns, one list each, in ccusage's order (by scope, then by the place
    of the group's first line). ``day``: local day numbers (``local_day.day_of``), all 0 when
    days are summed together; ``file``: all '' when files are; ``model``: as stored (``'fast'``
    speed apart, see ``model_name``); ``cost``: exact USD in units of ``10 ** -scale``."""

    day: list[int]
    scope: list[str]
    file: list[str]
    model: list[str]
    fast: list[int]
    first_ms: list[int]
    last_ms: list[int]
    input_tokens: list[int]
    output_tokens: list[int]
    cache_creation_tokens: list[int]
    cache_read_tokens: list[int]
    cost: list[int]
    scale: int


def rollup_entries(
    ch: ClickHouse, *, mode: CostMode, tz: str, by_file: bool = True, by_day: bool = True
) -> list[Entry] | None:
    """Summed entries per (day in ``tz``, scope, file, model), in ccusage's order; None when
    a day was cut unlike Python's zone would (then read ``line_entries``). As
    ``summed_columns``."""
    summed = summed_columns(ch, mode=mode, tz=tz, by_file=by_file, by_day=by_day)
    return None if summed is None else _entries(summed)


def summed_columns(
    ch: ClickHouse, *, mode: CostMode, tz: str, by_file: bool = True, by_day: bool = True
) -> Summed | None:
    """The summed groups per (day in ``tz``, scope, file, model), in ccusage's order; None
    when a day was cut unlike Python's zone would (then read ``line_entries``).

    ``by_file=False`` sums a day's files together (daily, weekly, monthly, models: they never
    read an entry's file), ``by_day=False`` a file's days (session without ``since``/``until``):
    fewer groups, the same report. From ``usage_rollup`` when it sums everything stored, else
    from the counted lines (``counted_usage FINAL``, always per day and file)."""
    zone_ = zone(tz)
    if usage_rollup_ready(ch):
        summed = _summed(ch, mode=mode, zone_=zone_, by_file=by_file, by_day=by_day)
        if summed is None or not by_day:
            return summed
    else:
        summed = _grouped(ch, mode=mode, zone_=zone_)
    return summed if summed is None or _days_agree(summed, zone_) else None


# The rows of usage_rollup, each the sums of one insert's lines of a (quarter hour, scope, file,
# model, speed) group, with its first slot and instants. Those of a file with a retracted line
# are not the rollup's (it saw every +1 sent): that file's groups are summed from its counted
# lines instead (a line counts while sum(sign) over its rows is 1), which the second part adds,
# one row per quarter hour as the rollup's, when {files} lists any. In a file without a
# retraction every rollup row has a line that counts, so no row needs checking here.
_ROLLED = """
SELECT dedup_scope, source_file, model, fast, input_tokens AS i, output_tokens AS o,
       cache_creation_tokens AS cc, cache_read_tokens AS cr, {cost} AS cost, first, first_ms,
       last_ms
FROM usage_rollup
WHERE source_file NOT IN ({files})
"""

_RETRACTED = """
UNION ALL
SELECT dedup_scope, source_file, model, fast, toInt64(sum(li)), toInt64(sum(lo)),
       toInt64(sum(lcc)), toInt64(sum(lcr)), toDecimal128(sum(lcost), 10), min(slot), min(ts),
       max(ts)
FROM (
    SELECT dedup_scope, source_file, (slot_file, slot_offset) AS slot,
           any(toUnixTimestamp64Milli(timestamp)) AS ts, any(model) AS model,
           any(speed = 'fast') AS fast, any(input_tokens) AS li, any(output_tokens) AS lo,
           any(cache_creation_tokens) AS lcc, any(cache_read_tokens) AS lcr,
           any({line_cost}) AS lcost
    FROM counted_usage
    WHERE source_file IN ({files})
    GROUP BY dedup_scope, message_id, source_file, source_generation, source_offset,
             slot_file, slot_offset
    HAVING sum(sign) = 1
)
GROUP BY intDiv(ts, {bucket_ms}), dedup_scope, source_file, model, fast
"""

_SUMMED_COST = {
    CostMode.AUTO: "cost_usd",
    CostMode.CALCULATE: "cost_calculated",
    CostMode.DISPLAY: "cost_display",
}


def _summed(
    ch: ClickHouse, *, mode: CostMode, zone_: ZoneInfo, by_file: bool, by_day: bool
) -> Summed | None:
    keys = ["dedup_scope"]
    if by_day:
        utc_days = [
            int(d)
            for (d,) in ch.query(
                f"SELECT DISTINCT intDiv(bucket - if(bucket < 0, {_BUCKETS_A_DAY - 1}, 0), "
                f"{_BUCKETS_A_DAY}) FROM usage_rollup"
            )
        ]
        # A quarter hour lies in one local day, so a row's first instant names its day.
        keys.insert(0, f"{local_day_sql('first_ms', zone_, utc_days)} AS day")
    if by_file:
        keys.append("source_file")
    # Files with a retracted line, listed: the lookup of their lines uses the skip index on
    # counted_usage.source_file (most databases have few such files, or none).
    retracted = ch.query("SELECT DISTINCT source_file FROM usage_rollup WHERE retracted > 0")
    files = ", ".join(quote_string(f) for (f,) in retracted) or "''"
    rows = _ROLLED.format(cost=_SUMMED_COST[mode], files=files)
    if retracted:
        rows += _RETRACTED.format(bucket_ms=BUCKET_MS, line_cost=_COST[mode], files=files)
    # One thread: the sums are small (a row per quarter hour and file), and a second thread
    # cost a third more CPU and, on a busy machine, often more time (1M lines: 0.08 s of CPU
    # against 0.12 for the session report's sums).
    table = ch.query_arrow(
        sized_query(
            f"""
            SELECT * FROM (
                SELECT {", ".join(keys)}, model, fast, min(first_ms), max(last_ms), sum(i),
                       sum(o), sum(cc), sum(cr), sum(cost)
                FROM ({rows})
                GROUP BY {", ".join(k.split(" AS ")[-1] for k in keys)}, model, fast
                ORDER BY dedup_scope, min({_SLOT_TEXT})
                SETTINGS max_threads = 1
            )
            """
        )
    )
    return _columns(table, by_day=by_day, by_file=by_file)


_BUCKETS_A_DAY = 86_400_000 // BUCKET_MS
# A slot (file, offset) as text that sorts as the tuple does: no path holds a NUL, which sorts
# before every other byte, and the offset in 16 hex digits sorts as the number. The least of
# these strings costs ClickHouse a third of the least of the tuples, and sorts faster.
_SLOT_TEXT = "concat(first.1, '\\0', leftPad(hex(first.2), 16, '0'))"


def _grouped(ch: ClickHouse, *, mode: CostMode, zone_: ZoneInfo) -> Summed | None:
    utc_days = [
        int(d)
        for (d,) in ch.query(
            "SELECT DISTINCT intDiv(ms - if(ms < 0, 86399999, 0), 86400000) FROM "
            "(SELECT toUnixTimestamp64Milli(timestamp) AS ms FROM counted_usage)"
        )
    ]
    day = local_day_sql("ts", zone_, utc_days)
    table = ch.query_arrow(
        f"""
        SELECT {day} AS day, dedup_scope, source_file, model, fast,
               minIf(ts, sign = 1), maxIf(ts, sign = 1), sumIf(input_tokens, sign = 1),
               sumIf(output_tokens, sign = 1), sumIf(cache_creation_tokens, sign = 1),
               sumIf(cache_read_tokens, sign = 1), sumIf({_COST[mode]}, sign = 1)
        FROM ({_LINES})
        GROUP BY day, dedup_scope, source_file, model, fast
        HAVING countIf(sign = 1) > 0
        ORDER BY dedup_scope, minIf((slot_file, slot_offset), sign = 1)
        """
    )
    return _columns(table, by_day=True, by_file=True)


def _columns(table: Any, *, by_day: bool, by_file: bool) -> Summed:
    """``Summed`` of a result ([day,] scope, [file,] model, fast, first ms, last ms, input,
    output, cache creation, cache read, cost) read by position."""
    n = table.num_rows
    if n == 0:
        return Summed([], [], [], [], [], [], [], [], [], [], [], [], scale=10)
    columns = list(table.columns)
    if not by_day:
        columns.insert(0, None)
    if not by_file:
        columns.insert(2, None)
    day, scope, file, model, fast, first, last, i, o, cc, cr, cost = columns
    units, scale = decimal_units(cost)
    return Summed(
        day=[0] * n if day is None else day.to_pylist(),
        scope=scope.to_pylist(),
        file=[""] * n if file is None else file.to_pylist(),
        model=model.to_pylist(),
        fast=fast.to_pylist(),
        first_ms=first.to_pylist(),
        last_ms=last.to_pylist(),
        input_tokens=i.to_pylist(),
        output_tokens=o.to_pylist(),
        cache_creation_tokens=cc.to_pylist(),
        cache_read_tokens=cr.to_pylist(),
        cost=units,
        scale=scale,
    )


_LOW = (1 << 64) - 1


def decimal_units(column: Any) -> tuple[list[int], int]:
    """A decimal Arrow column's exact values as integers of ``10 ** -scale``, and its scale:
    read from its 128-bit words (no ``Decimal`` per value); any other column through
    ``Decimal`` (an engine that types the sums otherwise), at 10 places."""
    import pyarrow as pa  # type: ignore[import-untyped]

    if not pa.types.is_decimal128(column.type) or column.null_count:
        scale = 10
        return [int(Decimal(v).scaleb(scale)) for v in column.to_pylist()], scale
    out: list[int] = []
    for chunk in column.chunks:
        # Two's complement, little-endian: the low word, then the high one.
        words = pa.Array.from_buffers(
            pa.int64(), 2 * len(chunk), [None, chunk.buffers()[1]], offset=2 * chunk.offset
        ).to_pylist()
        out.extend(
            low if high == low >> 63 else (high << 64) | (low & _LOW)
            for low, high in zip(words[0::2], words[1::2], strict=True)
        )
    return out, column.type.scale


def _entries(s: Summed) -> list[Entry]:
    """An ``Entry`` a group: the sums at the first instant, carrying the last. A group without
    file ('') is a day's files summed: its entries name no session or project."""
    out: list[Entry] = []
    for scope, file, name, fast, first_ms, last_ms, i, o, cc, cr, cost in zip(
        s.scope, s.file, s.model, s.fast, s.first_ms, s.last_ms, s.input_tokens,
        s.output_tokens, s.cache_creation_tokens, s.cache_read_tokens, s.cost, strict=True,
    ):  # fmt: skip
        session_id, project_path, project = _file_parts(file) if file else ("", "", "")
        out.append(
            Entry(
                timestamp_ms=first_ms, project=project, session_id=session_id,
                project_path=project_path, model=model_name(name, fast), input_tokens=i,
                output_tokens=o, cache_creation_tokens=cc, cache_read_tokens=cr,
                cost=Decimal(f"{cost}E-{s.scale}"), scope=scope,
                last_ms=None if last_ms == first_ms else last_ms,
            )
        )  # fmt: skip
    return out


def line_entries(ch: ClickHouse, *, mode: CostMode) -> list[Entry]:
    """Every counted line, in ccusage's order."""
    columns = ch.query_columns(
        f"SELECT sign, dedup_scope, source_file, ts, model, fast, version, input_tokens, "
        f"output_tokens, cache_creation_tokens, cache_read_tokens, {_COST[mode]}, "
        f"usage_limit_reset_ms FROM ({_LINES}) ORDER BY dedup_scope, slot_file, slot_offset"
    )
    out: list[Entry] = []
    for sign, scope, file, ts, name, fast, version, i, o, cc, cr, cost, reset in (
        zip(*columns, strict=True) if columns else ()
    ):
        if sign != 1:
            continue
        session_id, project_path, project = _file_parts(file)
        out.append(
            Entry(
                timestamp_ms=ts, project=project, session_id=session_id,
                project_path=project_path, model=model_name(name, fast), input_tokens=i,
                output_tokens=o, cache_creation_tokens=cc, cache_read_tokens=cr,
                cost=_decimal(cost), version=version or None,
                usage_limit_reset_ms=reset or None, scope=scope,
            )
        )  # fmt: skip
    return out


def _days_agree(s: Summed, zone_: ZoneInfo) -> bool:
    """Whether each day's earliest and latest instant fall on it in Python's zone too."""
    spans: dict[int, tuple[int, int]] = {}
    for day, first, last in zip(s.day, s.first_ms, s.last_ms, strict=True):
        low, high = spans.get(day, (first, last))
        spans[day] = (min(low, first), max(high, last))
    return all(
        local_date(low, zone_) == day_of(number) == local_date(high, zone_)
        for number, (low, high) in spans.items()
    )


@lru_cache(maxsize=65_536)
def _file_parts(file: str) -> tuple[str, str, str]:
    session_id, project_path = session_parts(file)
    return session_id, project_path, project_of(file)


def model_name(name: str, fast: Any) -> str | None:
    """The model an entry names: None for none and ``<synthetic>``, ``-fast`` for fast lines."""
    if name in ("", SYNTHETIC_MODEL):
        return None
    return name + "-fast" if fast else name


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))
