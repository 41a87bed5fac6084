"""Report entries from ``counted_usage``, the dedup winners the worker keeps at write time.

``rollup_entries`` lets ClickHouse sum the counted lines per (local day, scope, file, model)
and returns one ``Entry`` per such group, in ccusage's order: daily, weekly, monthly, session
and models only add entries up, per day and file at the finest, so those sums build the same
report as the lines themselves. What else the builders read of an entry is kept exact:

* order: a group stands at its first line's place in ccusage's list (``slot``), so
  ``modelsUsed``, breakdown ties and session ties come out in first-seen order;
* time: the group's entry carries its earliest instant, and a zero entry without model its
  latest (the session report's ``firstActivity``/``lastActivity``); both are on the group's day.

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
from ingestor.sink.engine import ClickHouse
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


def rollup_entries(ch: ClickHouse, *, mode: CostMode, tz: str) -> list[Entry] | None:
    """Summed entries per (day in ``tz``, scope, file, model), in ccusage's order; None when
    a day was cut unlike Python's zone would (then read ``line_entries``)."""
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
               minIf((slot_file, slot_offset), sign = 1) AS first, minIf(ts, sign = 1),
               maxIf(ts, sign = 1), sumIf(input_tokens, sign = 1),
               sumIf(output_tokens, sign = 1), sumIf(cache_creation_tokens, sign = 1),
               sumIf(cache_read_tokens, sign = 1), sumIf({_COST[mode]}, sign = 1)
        FROM ({_LINES})
        GROUP BY day, dedup_scope, source_file, model, fast
        HAVING countIf(sign = 1) > 0
        ORDER BY dedup_scope, first
        """
    )
    if not columns:
        return []
    rows = list(zip(*columns, strict=True))  # ordered as ClickHouse sorts strings: by bytes
    if not _days_agree(rows, zone_):
        return None
    out: list[Entry] = []
    for _day, scope, file, name, fast, _first, first_ms, last_ms, i, o, cc, cr, cost in rows:
        session_id, project_path, project = _file_parts(file)
        out.append(
            Entry(
                timestamp_ms=first_ms, project=project, session_id=session_id,
                project_path=project_path, model=_model(name, fast), input_tokens=i,
                output_tokens=o, cache_creation_tokens=cc, cache_read_tokens=cr,
                cost=_decimal(cost), scope=scope,
            )
        )  # fmt: skip
        if last_ms == first_ms:
            continue
        out.append(
            Entry(
                timestamp_ms=last_ms, project=project, session_id=session_id,
                project_path=project_path, model=None, input_tokens=0, output_tokens=0,
                cache_creation_tokens=0, cache_read_tokens=0, cost=Decimal(0), scope=scope,
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


def _days_agree(rows: list[tuple[Any, ...]], zone_: ZoneInfo) -> bool:
    """Whether each day's earliest and latest instant fall on it in Python's zone too."""
    spans: dict[int, tuple[int, int]] = {}
    for row in rows:
        low, high = spans.get(row[0], (row[6], row[7]))
        spans[row[0]] = (min(low, row[6]), max(high, row[7]))
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
