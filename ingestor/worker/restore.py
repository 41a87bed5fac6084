"""Worker state rebuilt from ClickHouse, the durable truth.

* ``load_index``: a dedup scope's index (request ids seen per message, and the copy that counts
  per key), loaded the first time the worker meets the project; replayed lines that ClickHouse
  already holds then change nothing.
* ``session_seeds``: every session's aggregates, used to re-seed the Faust table after the
  embedded broker (memory only) lost its changelog.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from ingestor.sink.engine import ClickHouse
from ingestor.worker.dedup import Contribution, DedupIndex
from ingestor.worker.sessions import SYNTHETIC_MODEL, ModelTotals, SessionAgg

__all__ = ["load_index", "session_seeds"]

_CONTRIBUTION_COLUMNS = (
    "source_file, source_generation, source_offset, session_id, model, "
    "toUnixTimestamp64Milli(timestamp), input_tokens, output_tokens, cache_creation_tokens, "
    "cache_read_tokens, toString(cost_usd), tool_uses, is_sidechain"
)


def _contribution(row: tuple[Any, ...]) -> Contribution:
    (file, gen, offset, session, model, ts, i, o, cc, cr, cost, tools, sidechain) = row
    return Contribution(
        identity=(str(file), int(gen), int(offset)),
        session_id=str(session),
        model=str(model),
        timestamp_ms=int(ts),
        input_tokens=int(i),
        output_tokens=int(o),
        cache_creation_tokens=int(cc),
        cache_read_tokens=int(cr),
        cost=Decimal(cost),
        tool_uses=tuple(tools),
        is_sidechain=bool(sidechain),
    )


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def load_index(ch: ClickHouse, scope: str) -> DedupIndex:
    """The dedup index of ``scope`` as ClickHouse holds it."""
    index = DedupIndex()
    p = quote(scope)
    requests = ch.query(
        "SELECT message_id, groupUniqArray(request_id) FROM transcript_lines "
        f"WHERE dedup_scope = {p} AND has_usage = 1 AND message_id != '' GROUP BY message_id"
    )
    winners: dict[str, dict[str, Contribution]] = defaultdict(dict)
    for row in ch.query(
        f"SELECT message_id, request_id, {_CONTRIBUTION_COLUMNS} FROM usage_dedup "
        f"WHERE dedup_scope = {p} AND message_id != ''"
    ):
        winners[str(row[0])][str(row[1])] = _contribution(row[2:])
    for message_id, request_ids in requests:
        index.load(str(message_id), [str(r) for r in request_ids], winners.get(str(message_id), {}))
    return index


def session_seeds(ch: ClickHouse) -> list[tuple[str, SessionAgg]]:
    """(dedup scope, aggregates) of every session with counted usage, as the worker holds them."""
    sessions: dict[str, SessionAgg] = {}
    scopes: dict[str, str] = {}
    for row in ch.query(
        "SELECT session_id, any(project), any(dedup_scope), model, "
        "sum(input_tokens), sum(output_tokens), "
        "sum(cache_creation_tokens), sum(cache_read_tokens), toString(sum(cost_usd)), count(), "
        "min(toUnixTimestamp64Milli(timestamp)), max(toUnixTimestamp64Milli(timestamp)) "
        "FROM usage_dedup GROUP BY session_id, model ORDER BY session_id, model"
    ):
        session_id, project, scope, model, i, o, cc, cr, cost, n, first, last = row
        agg = sessions.get(session_id)
        if agg is None:
            agg = sessions[session_id] = SessionAgg(
                session_id=str(session_id), project=str(project)
            )
            scopes[session_id] = str(scope)
        totals = ModelTotals(int(i), int(o), int(cc), int(cr), Decimal(cost), int(n))
        _merge(agg.totals, totals)
        if model != SYNTHETIC_MODEL:
            agg.models[str(model)] = totals
        agg.first_activity_ms = _min(agg.first_activity_ms, int(first))
        agg.last_activity_ms = _max(agg.last_activity_ms, int(last))
    for session_id, name, count in ch.query(
        "SELECT session_id, tool, count() FROM usage_dedup ARRAY JOIN tool_uses AS tool "
        "GROUP BY session_id, tool"
    ):
        if session_id in sessions:
            sessions[session_id].tool_uses[str(name)] = int(count)
    for agg in sessions.values():
        agg.revision = 1
    return [(scopes[session_id], agg) for session_id, agg in sessions.items()]


def _merge(into: ModelTotals, more: ModelTotals) -> None:
    into.input_tokens += more.input_tokens
    into.output_tokens += more.output_tokens
    into.cache_creation_tokens += more.cache_creation_tokens
    into.cache_read_tokens += more.cache_read_tokens
    into.cost += more.cost
    into.messages += more.messages


def _min(a: int | None, b: int) -> int:
    return b if a is None else min(a, b)


def _max(a: int | None, b: int) -> int:
    return b if a is None else max(a, b)
