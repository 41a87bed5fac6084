"""The counted usage entries of what ClickHouse holds, in ccusage's order and under its rule.

Every report is built from these (``ingestor.usage.reports``). ClickHouse returns the accepted
usage lines of the newest generation of each file (what is on disk now), ordered as ccusage reads
them: by dedup scope, then file path, then position in the file. ``ingestor.usage.dedup`` then
applies ccusage's duplicate rule step for step, per scope (one machine's transcripts).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from ingestor.sink.engine import ClickHouse
from ingestor.usage.dedup import Copy, Deduper
from ingestor.usage.entry import Entry
from ingestor.usage.paths import project_of, session_parts
from ingestor.usage.prices import SYNTHETIC_MODEL, CostMode

__all__ = ["ENTRY_SQL", "counted_entries", "entries_from_rows"]

ENTRY_SQL = """
SELECT dedup_scope, source_file, toUnixTimestamp64Milli(timestamp), message_id, request_id,
       is_sidechain, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens,
       speed, model, version, toString(cost_usd), has_cost_usd, toString(cost_calculated),
       usage_limit_reset_ms
FROM transcript_lines FINAL
WHERE has_usage = 1
  AND (source_file, source_generation) IN
      (SELECT source_file, max(source_generation) FROM transcript_lines GROUP BY source_file)
ORDER BY dedup_scope, source_file, source_offset
"""


def counted_entries(
    ch: ClickHouse, *, mode: CostMode = CostMode.AUTO, project: str | None = None
) -> list[Entry]:
    """Every counted usage entry; ``project`` limits them before dedup, as ccusage's does."""
    return entries_from_rows(ch.query(ENTRY_SQL), mode=mode, project=project)


def entries_from_rows(
    rows: Iterable[tuple[Any, ...]], *, mode: CostMode, project: str | None = None
) -> list[Entry]:
    """``ENTRY_SQL``'s rows (ordered) through the dedup rule, one ``Deduper`` per scope."""
    out: list[Entry] = []
    scope: str | None = None
    deduper: Deduper[Entry] = Deduper()
    for row in rows:
        (row_scope, file, ts, mid, rid, sidechain, i, o, cc, cr, speed, model, version) = row[:13]
        cost_usd, has_cost, calculated, reset_ms = row[13:]
        file = str(file)
        line_project = project_of(file)
        if project is not None and line_project != project:
            continue
        if row_scope != scope:
            out.extend(deduper.kept)
            scope, deduper = str(row_scope), Deduper()
        session_id, project_path = session_parts(file)
        name = str(model)
        fast = speed == "fast"
        entry = Entry(
            timestamp_ms=int(ts),
            project=line_project,
            session_id=session_id,
            project_path=project_path,
            model=None if name in ("", SYNTHETIC_MODEL) else (name + "-fast" if fast else name),
            input_tokens=int(i),
            output_tokens=int(o),
            cache_creation_tokens=int(cc),
            cache_read_tokens=int(cr),
            cost=_cost(mode, bool(has_cost), cost_usd, calculated),
            version=str(version) or None,
            usage_limit_reset_ms=int(reset_ms) or None,
            scope=str(row_scope),
        )
        copy = Copy(
            message_id=str(mid) or None,
            request_id=str(rid) or None,
            is_sidechain=bool(sidechain),
            total=entry.total_tokens,
            has_speed=bool(speed),
            timestamp_ms=entry.timestamp_ms,
        )
        deduper.push(copy, entry)
    out.extend(deduper.kept)
    return out


def _cost(mode: CostMode, has_cost: bool, cost_usd: Any, calculated: Any) -> Decimal:
    if mode is CostMode.CALCULATE:
        return Decimal(calculated)
    if mode is CostMode.DISPLAY:
        return Decimal(cost_usd) if has_cost else Decimal(0)
    return Decimal(cost_usd)  # auto: costUSD when the line has it, else calculated (rows.py)
