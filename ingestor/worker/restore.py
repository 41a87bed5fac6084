"""Worker state rebuilt from ClickHouse, the durable truth.

* ``load_index``: a dedup scope's index, its stored usage lines replayed through the rule in
  ccusage's order the first time the worker meets the scope; replayed lines that ClickHouse
  already holds then change nothing.
* ``session_seeds``: every session's aggregates, used to re-seed the Faust table after the
  embedded broker (memory only) lost its changelog, and a scope's, to reconcile the table with
  ClickHouse as the worker loads that scope's index (``sessions.reconciled``).
* ``budget_seeds``: the recent budget windows, for the same reason (``alerts/windows.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from ingestor.alerts.budgets import Budget
from ingestor.alerts.windows import ALERT_TYPE, Spend, WindowTotal, seed_windows
from ingestor.sink.engine import ClickHouse
from ingestor.usage.prices import PriceTable, line_cost
from ingestor.worker.dedup import Contribution, DedupIndex
from ingestor.worker.sessions import SYNTHETIC_MODEL, ModelTotals, SessionAgg
from ingestor.worker.trim import malloc_trim

__all__ = ["budget_seeds", "load_index", "session_seeds"]

# Bounds on what one query reads (and its result, in Python) when restoring from history, so
# that the memory stays flat as the history grows.
# Usage lines of a page of files (load_index). A page's rows in Python are the restore's peak:
# at 232k entries 50k-line pages peaked 376 MB above the engine, 20k-line pages 242 MB, no
# slower (the index after it is ~180 MB).
_PAGE_LINES = 20_000
_SEED_LINES = 100_000  # usage lines of a chunk of usage_dedup (session_seeds)

_CONTRIBUTION_COLUMNS = (
    "source_file, source_generation, source_offset, session_id, model, "
    "toUnixTimestamp64Milli(timestamp), input_tokens, output_tokens, cache_creation_tokens, "
    "cache_read_tokens, toString(cost_usd), tool_uses, is_sidechain, line_session_id"
)


def _contribution(row: tuple[Any, ...], has_speed: bool = False) -> Contribution:
    (file, gen, offset, session, model, ts, i, o, cc, cr, cost, tools, sidechain, line_sid) = row
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
        has_speed=has_speed,
        line_session_id=str(line_sid),
    )


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def load_index(
    ch: ClickHouse, scope: str, progress: Callable[[], None] = lambda: None
) -> DedupIndex:
    """The dedup index of ``scope``: its stored usage lines replayed in ccusage's order.

    Read a page of files at a time (``_PAGE_LINES`` lines or so, in file order): all of a big
    scope at once was a JSON result and its rows in Python together (2.2 GB of peak RSS for 624k
    lines), where the index itself is ~450 bytes a line. ``progress`` is called before each page:
    a long history takes minutes, and the worker's watchdog must not take it for a stall."""
    index = DedupIndex()
    where = f"dedup_scope = {quote(scope)} AND has_usage = 1"
    for files in _file_pages(ch, where, _PAGE_LINES):
        progress()
        rows = ch.query(
            f"SELECT message_id, request_id, speed != '', {_CONTRIBUTION_COLUMNS} "
            f"FROM transcript_lines FINAL WHERE {where} AND {files} "
            "AND (source_file, source_generation) IN "
            f"(SELECT source_file, source_generation FROM current_generations WHERE {files}) "
            "ORDER BY source_file, source_offset"
        )
        for row in rows:
            contribution = _contribution(row[3:], bool(row[2]))
            index.observe(str(row[0]), str(row[1]), contribution)
        # A page's rows are freed between the index entries made from them: hand their pages
        # back before the next page is read (trim.py).
        del rows
        malloc_trim()
    return index


def _file_pages(ch: ClickHouse, where: str, lines: int) -> list[str]:
    """Conditions on ``source_file`` that split the rows ``where`` selects into ranges of whole
    files of about ``lines`` rows (more when one file has more), in ClickHouse's order of
    ``source_file``. The ranges cover every name, so a file stored meanwhile is in one of
    them."""
    bounds: list[str] = []  # the first file of every range but the first
    held = 0
    for file, count in ch.query(
        f"SELECT source_file, count() FROM transcript_lines WHERE {where} "
        "GROUP BY source_file ORDER BY source_file"
    ):
        if held >= lines:
            bounds.append(str(file))
            held = 0
        held += int(count)
    edges: list[str | None] = [None, *bounds, None]
    pages = []
    for low, high in zip(edges, edges[1:], strict=False):
        terms = [] if low is None else [f"source_file >= {quote(low)}"]
        terms += [] if high is None else [f"source_file < {quote(high)}"]
        pages.append(" AND ".join(terms) or "1")
    return pages


def session_seeds(
    ch: ClickHouse, scope: str | None = None, progress: Callable[[], None] = lambda: None
) -> list[tuple[str, SessionAgg]]:
    """(dedup scope, aggregates) of every session with counted usage, as the worker holds them;
    of one dedup scope's sessions only, with ``scope``; ``progress`` is called before each chunk.

    ``usage_dedup`` sorts every line it reads, all columns (1 GB of peak RSS for 624k usage
    lines at once), so it is read in chunks of ``_SEED_LINES`` lines or so by a hash of the
    message id. Exact: its windows partition by (scope, message id, ...), so a chunk's rows are
    decided as among all the rows, and ClickHouse filters on the hash before the windows."""
    scoped = "" if scope is None else f" AND dedup_scope = {quote(scope)}"
    [(lines,)] = ch.query(f"SELECT count() FROM transcript_lines WHERE has_usage = 1{scoped}")
    chunks = max(1, -(-int(lines) // _SEED_LINES))
    sessions: dict[str, SessionAgg] = {}
    scopes: dict[str, str] = {}
    for chunk in range(chunks):
        progress()
        where = f"WHERE cityHash64(message_id) % {chunks} = {chunk}{scoped} "
        for row in ch.query(
            "SELECT session_id, any(project), any(dedup_scope), model, "
            "sum(input_tokens), sum(output_tokens), "
            "sum(cache_creation_tokens), sum(cache_read_tokens), toString(sum(cost_usd)), "
            "count(), min(toUnixTimestamp64Milli(timestamp)), "
            "max(toUnixTimestamp64Milli(timestamp)) "
            f"FROM usage_dedup {where}GROUP BY session_id, model"
        ):
            session_id, project, scope_, model, i, o, cc, cr, cost, n, first, last = row
            agg = sessions.get(session_id)
            if agg is None:
                agg = sessions[session_id] = SessionAgg(
                    session_id=str(session_id), project=str(project)
                )
                scopes[session_id] = str(scope_)
            totals = ModelTotals(int(i), int(o), int(cc), int(cr), Decimal(cost), int(n))
            _merge(agg.totals, totals)
            if model != SYNTHETIC_MODEL:
                known = agg.models.get(str(model))
                if known is None:
                    agg.models[str(model)] = totals
                else:
                    _merge(known, totals)
            agg.first_activity_ms = _min(agg.first_activity_ms, int(first))
            agg.last_activity_ms = _max(agg.last_activity_ms, int(last))
        for session_id, name, count in ch.query(
            f"SELECT session_id, tool, count() FROM usage_dedup ARRAY JOIN tool_uses AS tool "
            f"{where}GROUP BY session_id, tool"
        ):
            if session_id in sessions:
                tools = sessions[session_id].tool_uses
                tools[str(name)] = tools.get(str(name), 0) + int(count)
        malloc_trim()  # as in load_index
    seeds = []
    for session_id in sorted(sessions):  # in session order, models in model order: as one query
        agg = sessions[session_id]
        agg.models = dict(sorted(agg.models.items()))
        agg.revision = 1
        seeds.append((scopes[session_id], agg))
    return seeds


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


def budget_seeds(
    ch: ClickHouse, budgets: Sequence[Budget], *, since_ms: int, prices: PriceTable
) -> dict[bytes, WindowTotal]:
    """The budget windows of spend since ``since_ms`` (event time) as ClickHouse holds it:
    counted transcript lines (``usage_dedup``) and events, priced as the worker prices them
    (``alerts/windows.py``). Grouped by subject and hour: every window is a union of hours."""
    if not budgets:
        return {}
    since = f"fromUnixTimestamp64Milli({int(since_ms)}, 'UTC')"
    hour = "intDiv(toUnixTimestamp64Milli(timestamp), 3600000) * 3600000"
    spends = [
        Spend(int(start), Decimal(cost), project=str(project), session=str(session))
        for start, project, session, cost in ch.query(
            f"SELECT {hour} AS start, project, session_id, toString(sum(cost_usd)) "
            f"FROM usage_dedup WHERE timestamp >= {since} GROUP BY start, project, session_id"
        )
    ]
    rows = ch.query(
        f"SELECT {hour} AS start, project_id, user_id, session_id, cost_provided, model, "
        "tokens_input, tokens_output, tokens_cache_read, tokens_cache_write, "
        "toString(sum(cost_usd)), count() FROM events FINAL "
        f"WHERE timestamp >= {since} AND event_type != {quote(ALERT_TYPE)} "
        "GROUP BY start, project_id, user_id, session_id, cost_provided, model, tokens_input, "
        "tokens_output, tokens_cache_read, tokens_cache_write"
    )
    for start, project, user, session, provided, model, i, o, cr, cw, cost, n in rows:
        if provided:
            total = Decimal(cost)
        else:
            priced = line_cost(
                prices, str(model), input_tokens=int(i), output_tokens=int(o),
                cache_write_5m=int(cw), cache_write_1h=0, cache_read=int(cr), fast=False,
            )  # fmt: skip
            total = Decimal(0) if priced is None else priced * int(n)
        if total:
            spends.append(
                Spend(
                    int(start), total, project=str(project), user=str(user), session=str(session)
                )  # fmt: skip
            )
    return seed_windows(budgets, spends)
