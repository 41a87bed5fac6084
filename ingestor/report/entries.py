"""The counted usage entries of what ClickHouse holds, in ccusage's order and under its rule.

Every report is built from these (``ingestor.usage.reports``). ClickHouse returns the accepted
usage lines of the current generation of each file (what is on disk now; a deleted file's is
its empty tombstone, ``schema/0011_current_generations.sql``), ordered as ccusage reads
them: by dedup scope, then file path, then position in the file. ``ingestor.usage.dedup`` then
applies ccusage's duplicate rule step for step, per scope (one machine's transcripts).

This runs over every stored usage line on each report, so it is kept lean: columns arrive as
lists (``query_columns``), the rule reads a tuple per line, and an ``Entry`` is made only for the
lines that count. And most lines never reach Python: a message none of whose copies is a
sidechain line has copies that only compete by key (the sidechain match needs a sidechain line on
one side), so ClickHouse picks each key's winner itself (``DECIDED_SQL``: the larger total, then
``speed``, then the first) and keeps the place of its first copy; only messages with a sidechain
copy go through ``Deduper`` (``SIDECHAIN_SQL``). ``entries_from_columns`` runs the whole rule in
Python: with ``--project`` (filtered before dedup, as ccusage does) and in the tests that hold
the two ways equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from ingestor.clickhouse.engine import ClickHouse
from ingestor.usage.dedup import Copy, Deduper, Outcome
from ingestor.usage.entry import Entry
from ingestor.usage.paths import project_of, session_parts
from ingestor.usage.prices import SYNTHETIC_MODEL, CostMode

__all__ = [
    "DECIDED_SQL",
    "ENTRY_SQL",
    "SIDECHAIN_SQL",
    "counted_entries",
    "entries_from_columns",
]

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


_USAGE = """
WITH usage AS (
    SELECT dedup_scope, source_file, toUnixTimestamp64Milli(timestamp) AS ts, message_id,
           request_id, is_sidechain, input_tokens, output_tokens, cache_creation_tokens,
           cache_read_tokens, speed, model, version, cost_usd, has_cost_usd, cost_calculated,
           usage_limit_reset_ms, line_session_id,
           row_number() OVER (ORDER BY dedup_scope, source_file, source_offset) AS pos,
           (dedup_scope, message_id) IN (
               SELECT dedup_scope, message_id FROM transcript_lines
               WHERE has_usage = 1 AND is_sidechain = 1 AND message_id != ''
           ) AS with_sidechain
    FROM transcript_lines FINAL
    WHERE has_usage = 1
      AND (source_file, source_generation) IN
          (SELECT source_file, source_generation FROM current_generations)
)
"""
_COLUMNS = (
    "dedup_scope, source_file, ts, message_id, request_id, is_sidechain, input_tokens, "
    "output_tokens, cache_creation_tokens, cache_read_tokens, speed, model, version, cost_usd, "
    "has_cost_usd, cost_calculated, usage_limit_reset_ms, line_session_id"
)
SIDECHAIN_SQL = (
    _USAGE + f"SELECT pos, {_COLUMNS} FROM usage WHERE with_sidechain AND message_id != '' "
    "ORDER BY pos"
)
# One row per key: the winner's columns, at the place of the key's first copy. A line without
# message id, or without both request id and sessionId, is a key of its own (never matched).
DECIDED_SQL = (
    _USAGE
    + f"""
SELECT slot, w.* FROM (
    SELECT min(pos) AS slot,
           argMax(tuple({_COLUMNS}),
                  (input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens,
                   speed != '', -pos)) AS w
    FROM usage
    WHERE NOT (with_sidechain AND message_id != '')
    GROUP BY dedup_scope, message_id, request_id, if(request_id = '', line_session_id, ''),
             if(message_id = '' OR (request_id = '' AND line_session_id = ''), pos, 0)
)
ORDER BY slot
"""
)


def counted_entries(
    ch: ClickHouse, *, mode: CostMode = CostMode.AUTO, project: str | None = None
) -> list[Entry]:
    """Every counted usage entry; ``project`` limits them before dedup, as ccusage's does."""
    if project is not None:
        return entries_from_columns(ch.query_columns(ENTRY_SQL), mode=mode, project=project)
    decided = ch.query_columns(DECIDED_SQL)
    sidechain = ch.query_columns(SIDECHAIN_SQL)
    slots: list[int] = list(decided[0]) if decided else []
    columns: list[list[Any]] = (
        [list(c) for c in decided[1:]] if decided else [[] for _ in range(18)]
    )
    if sidechain:
        positions, rows = sidechain[0], sidechain[1:]
        for slot, index in _sidechain_winners(positions, rows):
            slots.append(slot)
            for column, values in zip(columns, rows, strict=True):
                column.append(values[index])
    order = sorted(range(len(slots)), key=slots.__getitem__)
    return _entries([[column[i] for i in order] for column in columns], mode)


def _sidechain_winners(positions: list[int], rows: Sequence[list[Any]]) -> list[tuple[int, int]]:
    """(place of the slot's first copy, row index of its winner) of each counted slot."""
    (scopes, _files, stamps, mids, rids, sidechains, ins, outs, ccs, crs, speeds) = rows[:11]
    line_sids = rows[17]
    out: list[tuple[int, int]] = []
    scope: str | None = None
    deduper: Deduper[int] = Deduper()
    firsts: list[int] = []
    for i, row_scope in enumerate(scopes):
        if row_scope != scope:
            out += zip(firsts, deduper.kept, strict=True)
            scope, deduper, firsts = row_scope, Deduper(), []
        copy = Copy(
            mids[i], rids[i] or None, bool(sidechains[i]), ins[i] + outs[i] + ccs[i] + crs[i],
            bool(speeds[i]), stamps[i], Decimal(0), line_sids[i] or None,
        )  # fmt: skip
        if deduper.push(copy, i).outcome is Outcome.COUNTED:
            firsts.append(positions[i])
    out += zip(firsts, deduper.kept, strict=True)
    return out


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
    return _entries([[column[i] for i in kept] for column in columns], mode)


def _entries(columns: Sequence[list[Any]], mode: CostMode) -> list[Entry]:
    """An ``Entry`` per row of ``ENTRY_SQL``-shaped columns, in their order."""
    (scopes, files, stamps, _mids, _rids, _sidechains, ins, outs, ccs, crs, speeds) = columns[:11]
    (models, versions, costs, has_costs, calculated, resets, _line_sids) = columns[11:]
    pick_cost = _cost_picker(mode, costs, has_costs, calculated)
    out = []
    for i, file in enumerate(files):
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
