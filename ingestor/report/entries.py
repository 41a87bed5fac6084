"""The counted usage entries of what ClickHouse holds, in ccusage's order and under its rule.

Every report is built from these (``ingestor.usage.reports``). ClickHouse returns the accepted
usage lines of the current generation of each file (what is on disk now; a deleted file's is
its empty tombstone, ``schema/0011_current_generations.sql``), ordered as ccusage reads
them: by dedup scope, then file path, then position in the file. ``ingestor.usage.dedup`` then
applies ccusage's duplicate rule step for step, per scope (one machine's transcripts).

This runs over every stored usage line on each report, so it is kept lean: columns arrive as
lists (``query_columns``), the rule reads a tuple per line, and an ``Entry`` is made only for the
lines that count.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from ingestor.sink.engine import ClickHouse
from ingestor.usage.dedup import Copy, Deduper
from ingestor.usage.entry import Entry
from ingestor.usage.paths import project_of, session_parts
from ingestor.usage.prices import SYNTHETIC_MODEL, CostMode

__all__ = ["ENTRY_SQL", "counted_entries", "entries_from_columns"]

ENTRY_SQL = """
SELECT dedup_scope, source_file, toUnixTimestamp64Milli(timestamp), message_id, request_id,
       is_sidechain, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens,
       speed, model, version, cost_usd, has_cost_usd, cost_calculated, usage_limit_reset_ms,
       line_session_id
FROM transcript_lines FINAL
WHERE has_usage = 1
  AND (source_file, source_generation) IN
      (SELECT source_file, source_generation FROM current_generations)
ORDER BY dedup_scope, source_file, source_offset
"""


def counted_entries(
    ch: ClickHouse, *, mode: CostMode = CostMode.AUTO, project: str | None = None
) -> list[Entry]:
    """Every counted usage entry; ``project`` limits them before dedup, as ccusage's does."""
    return entries_from_columns(ch.query_columns(ENTRY_SQL), mode=mode, project=project)


def entries_from_columns(
    columns: Sequence[list[Any]], *, mode: CostMode, project: str | None = None
) -> list[Entry]:
    """``ENTRY_SQL``'s columns (rows in order) through the dedup rule, one ``Deduper`` a scope."""
    if not columns:
        return []
    (scopes, files, stamps, mids, rids, sidechains, ins, outs, ccs, crs, speeds) = columns[:11]
    (models, versions, costs, has_costs, calculated, resets, line_sids) = columns[11:]
    kept: list[int] = []
    scope: str | None = None
    deduper: Deduper[int] = Deduper()
    for i, (row_scope, file, mid) in enumerate(zip(scopes, files, mids, strict=True)):
        if project is not None and project_of(file) != project:
            continue
        if row_scope != scope:
            kept += deduper.kept
            scope, deduper = row_scope, Deduper()
        copy = Copy(
            mid or None,
            rids[i] or None,
            bool(sidechains[i]),
            ins[i] + outs[i] + ccs[i] + crs[i],
            bool(speeds[i]),
            stamps[i],
            Decimal(0),
            line_sids[i] or None,
        )
        deduper.push(copy, i)
    kept += deduper.kept
    pick_cost = _cost_picker(mode, costs, has_costs, calculated)
    out = []
    for i in kept:
        file = files[i]
        session_id, project_path = session_parts(file)
        name = models[i]
        fast = speeds[i] == "fast"
        out.append(
            Entry(
                timestamp_ms=stamps[i],
                project=project_of(file),
                session_id=session_id,
                project_path=project_path,
                model=None if name in ("", SYNTHETIC_MODEL) else (name + "-fast" if fast else name),
                input_tokens=ins[i],
                output_tokens=outs[i],
                cache_creation_tokens=ccs[i],
                cache_read_tokens=crs[i],
                cost=pick_cost(i),
                version=versions[i] or None,
                usage_limit_reset_ms=resets[i] or None,
                scope=scopes[i],
            )
        )
    return out


def _cost_picker(
    mode: CostMode, costs: list[Any], has_costs: list[Any], calculated: list[Any]
) -> Any:
    zero = Decimal(0)
    if mode is CostMode.CALCULATE:
        return lambda i: _decimal(calculated[i])
    if mode is CostMode.DISPLAY:
        return lambda i: _decimal(costs[i]) if has_costs[i] else zero
    return lambda i: _decimal(costs[i])  # auto: costUSD when the line has it, else calculated


def _decimal(value: Any) -> Decimal:
    # Arrow gives Decimal(scale 10) with trailing zeros; normalize like the JSON path's values.
    return value if isinstance(value, Decimal) else Decimal(str(value))
