"""Report entries from the dedup winners the worker keeps at write time.

``rollup_entries`` returns one summed ``Entry`` per (local day, scope, file, model) group, or a
coarser grain a report allows, in ccusage's order: from ``usage_rollup`` (sums kept per quarter
hour at write time, schema 0015) when it covers everything stored, else by grouping
``counted_usage FINAL``. Daily, weekly, monthly, session and models only add entries up, so those
sums build the same report as the lines themselves. What else the builders read of an entry is
kept exact:

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

from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from ingestor.report.local_day import day_of, local_day_sql
from ingestor.sink.engine import ClickHouse, quote_string, sized_query
from ingestor.sink.usage_rollup import BUCKET_MS, usage_rollup_ready
from ingestor.usage.entry import Entry
from ingestor.usage.paths import project_of, session_parts
from ingestor.usage.prices import SYNTHETIC_MODEL, CostMode
from ingestor.usage.reports_core import local_date, zone

__all__ = ["line_entries", "rollup_entries"]

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


def rollup_entries(
    ch: ClickHouse, *, mode: CostMode, tz: str, by_file: bool = True, by_day: bool = True
) -> list[Entry] | None:
    """Summed entries per (day in ``tz``, scope, file, model), in ccusage's order; None when
    a day was cut unlike Python's zone would (then read ``line_entries``).

    ``by_file=False`` sums a day's files together (daily, weekly, monthly, models: they never
    read an entry's file), ``by_day=False`` a file's days (session without ``since``/``until``):
    fewer entries, the same report. From ``usage_rollup`` when it sums everything stored, else
    from the counted lines (``counted_usage FINAL``, always per day and file)."""
    if usage_rollup_ready(ch):
        return _summed_entries(ch, mode=mode, tz=tz, by_file=by_file, by_day=by_day)
    return _grouped_entries(ch, mode=mode, tz=tz)


# usage_rollup's groups with some line counted, their sums for {cost}, and their first slot and
# instants. Those of a file with a retracted line are not the rollup's (it saw every +1 sent):
# that file's groups are summed from its counted lines instead (a line counts while sum(sign)
# over its rows is 1), which the second part adds when {files} lists any.
_SUMMED = """
SELECT bucket, dedup_scope, source_file, model, fast, sum(input_tokens) AS i,
       sum(output_tokens) AS o, sum(cache_creation_tokens) AS cc, sum(cache_read_tokens) AS cr,
       sum({cost}) AS cost, min(first) AS first, min(first_ms) AS first_ms,
       max(last_ms) AS last_ms
FROM usage_rollup
WHERE source_file NOT IN ({files})
GROUP BY bucket, dedup_scope, source_file, model, fast
HAVING sum(lines) > 0
"""

_RETRACTED = """
UNION ALL
SELECT intDiv(ts, {bucket_ms}) AS bucket, dedup_scope, source_file, model, fast,
       toInt64(sum(li)), toInt64(sum(lo)), toInt64(sum(lcc)), toInt64(sum(lcr)),
       toDecimal128(sum(lcost), 10), min(slot), min(ts), max(ts)
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
GROUP BY bucket, dedup_scope, source_file, model, fast
"""

_SUMMED_COST = {
    CostMode.AUTO: "cost_usd",
    CostMode.CALCULATE: "cost_calculated",
    CostMode.DISPLAY: "cost_display",
}


def _summed_entries(
    ch: ClickHouse, *, mode: CostMode, tz: str, by_file: bool, by_day: bool
) -> list[Entry] | None:
    zone_ = zone(tz)
    keys = ["dedup_scope"]
    if by_day:
        utc_days = [
            int(d)
            for (d,) in ch.query(
                f"SELECT DISTINCT intDiv(bucket - if(bucket < 0, {_BUCKETS_A_DAY - 1}, 0), "
                f"{_BUCKETS_A_DAY}) FROM usage_rollup"
            )
        ]
        keys.insert(0, f"{local_day_sql('first_ms', zone_, utc_days)} AS day")
    if by_file:
        keys.append("source_file")
    # Files with a retracted line, listed: the lookup of their lines uses the skip index on
    # counted_usage.source_file (most databases have few such files, or none).
    retracted = ch.query(
        "SELECT DISTINCT source_file FROM usage_rollup GROUP BY dedup_scope, source_file "
        "HAVING sum(retracted) > 0"
    )
    files = ", ".join(quote_string(f) for (f,) in retracted) or "''"
    groups = _SUMMED.format(cost=_SUMMED_COST[mode], files=files)
    if retracted:
        groups += _RETRACTED.format(bucket_ms=BUCKET_MS, line_cost=_COST[mode], files=files)
    columns = ch.query_columns(
        sized_query(
            f"""
            SELECT {", ".join(keys)}, model, fast, min(first_ms), max(last_ms), sum(i), sum(o),
                   sum(cc), sum(cr), sum(cost)
            FROM ({groups})
            GROUP BY {", ".join(k.split(" AS ")[-1] for k in keys)}, model, fast
            ORDER BY dedup_scope, min(first)
            """
        )
    )
    if not columns:
        return []
    if not by_day:
        columns.insert(0, [0] * len(columns[0]))
    if not by_file:
        columns.insert(2, [""] * len(columns[0]))
    rows = list(zip(*columns, strict=True))  # ordered as ClickHouse sorts strings: by bytes
    if by_day and not _days_agree(rows, zone_, first=5, last=6):
        return None
    return _entries(rows)


_BUCKETS_A_DAY = 86_400_000 // BUCKET_MS


def _grouped_entries(ch: ClickHouse, *, mode: CostMode, tz: str) -> list[Entry] | None:
    zone_ = zone(tz)
    utc_days = [
        int(d)
        for (d,) in ch.query(
            "SELECT DISTINCT intDiv(ms - if(ms < 0, 86399999, 0), 86400000) FROM "
            "(SELECT toUnixTimestamp64Milli(timestamp) AS ms FROM counted_usage)"
        )
    ]
    day = local_day_sql("ts", zone_, utc_days)
    columns = ch.query_columns(
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
    if not columns:
        return []
    rows = list(zip(*columns, strict=True))  # ordered as ClickHouse sorts strings: by bytes
    if not _days_agree(rows, zone_, first=5, last=6):
        return None
    return _entries(rows)


def _entries(rows: list[tuple[Any, ...]]) -> list[Entry]:
    """Entries of rows (day, scope, file, model, fast, first ms, last ms, input, output, cache
    creation, cache read, cost): the sums at the first instant, carrying the last. A row
    without file ('') is a day's files summed: its entries name no session or project."""
    out: list[Entry] = []
    for _day, scope, file, name, fast, first_ms, last_ms, i, o, cc, cr, cost in rows:
        session_id, project_path, project = _file_parts(file) if file else ("", "", "")
        out.append(
            Entry(
                timestamp_ms=first_ms, project=project, session_id=session_id,
                project_path=project_path, model=_model(name, fast), input_tokens=i,
                output_tokens=o, cache_creation_tokens=cc, cache_read_tokens=cr,
                cost=_decimal(cost), scope=scope, last_ms=None if last_ms == first_ms else last_ms,
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
                project_path=project_path, model=_model(name, fast), input_tokens=i,
                output_tokens=o, cache_creation_tokens=cc, cache_read_tokens=cr,
                cost=_decimal(cost), version=version or None,
                usage_limit_reset_ms=reset or None, scope=scope,
            )
        )  # fmt: skip
    return out


def _days_agree(rows: list[tuple[Any, ...]], zone_: ZoneInfo, *, first: int, last: int) -> bool:
    """Whether each day's earliest and latest instant (columns ``first`` and ``last``) fall on
    it (column 0) in Python's zone too."""
    spans: dict[int, tuple[int, int]] = {}
    for row in rows:
        low, high = spans.get(row[0], (row[first], row[last]))
        spans[row[0]] = (min(low, row[first]), max(high, row[last]))
    return all(
        local_date(low, zone_) == day_of(number) == local_date(high, zone_)
        for number, (low, high) in spans.items()
    )


@lru_cache(maxsize=65_536)
def _file_parts(file: str) -> tuple[str, str, str]:
    session_id, project_path = session_parts(file)
    return session_id, project_path, project_of(file)


def _model(name: str, fast: Any) -> str | None:
    if name in ("", SYNTHETIC_MODEL):
        return None
    return name + "-fast" if fast else name


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))
