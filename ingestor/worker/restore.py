"""Worker state rebuilt from ClickHouse, the durable truth.

* ``session_seeds``: every session's aggregates from the counted lines (``counted_usage``),
  used to re-seed the Faust table after the embedded broker (memory only) lost its changelog,
  and a scope's, to reconcile the table with ClickHouse the first time the worker meets the
  scope (``sessions.reconciled``).
* ``budget_seeds``: the recent budget windows, for the same reason (``alerts/windows.py``).

Both read sums ClickHouse makes from ``counted_usage``; the worker holds no state of its own
that would need replaying.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

from ingestor.alerts.budgets import Budget
from ingestor.alerts.windows import ALERT_TYPE, Spend, WindowTotal, seed_windows
from ingestor.clickhouse.engine import ClickHouse, quote_string
from ingestor.producer.discover import project_of
from ingestor.usage.paths import session_parts
from ingestor.usage.prices import PriceTable, line_cost
from ingestor.usage.winners import KEY_COLUMNS
from ingestor.worker.sessions import SYNTHETIC_MODEL, ModelTotals, SessionAgg

__all__ = ["budget_seeds", "session_seeds"]

# Rows of counted_usage a chunk of session_seeds reads, its files taken by a hash of their
# name: a chunk's groups (scope, file, model) and their Python aggregates are what it holds.
# Measured on 5M lines (11.3k sessions, 1.16M counted lines): 5.1 s and 635 MB of peak RSS,
# against 8.3 s and 675 MB when each chunk grouped its lines by their key to find the counted
# ones (chunks of 200k rows, by a hash of the line); on 1M, 0.61 s against 0.81 s.
_SEED_ROWS = 1_000_000


def _counted_lines(where: str = "1") -> str:
    """A subquery of the lines that count (``sum(sign) > 0``) among the ``counted_usage`` rows
    ``where`` selects: scope, file, model, tokens, cost, instant (``ms``) and tool uses."""
    return (
        "SELECT dedup_scope, source_file, any(model) AS model, any(input_tokens) AS i, "
        "any(output_tokens) AS o, any(cache_creation_tokens) AS cc, "
        "any(cache_read_tokens) AS cr, any(cost_usd) AS cost, "
        "any(toUnixTimestamp64Milli(timestamp)) AS ms, any(tool_uses) AS tools "
        f"FROM counted_usage WHERE {where} GROUP BY {', '.join(KEY_COLUMNS)} HAVING sum(sign) > 0"
    )


def session_seeds(
    ch: ClickHouse, scope: str | None = None, progress: Callable[[], None] = lambda: None
) -> list[tuple[str, SessionAgg]]:
    """(dedup scope, aggregates) of every session with counted usage, as the worker holds them;
    of one dedup scope's sessions only, with ``scope``. ``progress`` is called before each
    chunk's query (the worker's watchdog must not take a long restore for a stall)."""
    where = "1" if scope is None else f"dedup_scope = {quote_string(scope)}"
    [(rows,)] = ch.query(f"SELECT count() FROM counted_usage WHERE {where}")
    chunks = max(1, -(-int(rows) // _SEED_ROWS))
    sessions: dict[str, SessionAgg] = {}
    scopes: dict[str, str] = {}
    for chunk in range(chunks):
        progress()
        # A session's files may fall in several chunks: _add_seeds adds them up.
        part = f"cityHash64(source_file) % {chunks} = {chunk}"
        _add_seeds(ch, f"{where} AND {part}" if chunks > 1 else where, sessions, scopes)
    seeds = []
    for session_id in sorted(sessions):  # in session order, models in model order: as one query
        agg = sessions[session_id]
        agg.models = dict(sorted(agg.models.items()))
        agg.tool_uses = dict(sorted(agg.tool_uses.items()))
        agg.revision = 1
        seeds.append((scopes[session_id], agg))
    return seeds


def _add_seeds(
    ch: ClickHouse, where: str, sessions: dict[str, SessionAgg], scopes: dict[str, str]
) -> None:
    """Add the counted lines ``where`` selects to ``sessions`` (and their scope to ``scopes``).

    ``where`` may name sorting-key columns only. The counted lines are the rows ``FINAL``
    leaves with sign 1: a line's rows (+1, -1, +1 ...) collapse to its last +1 while it counts,
    to nothing when it does not. ``sign = 1`` must filter after the collapse, never before it
    (which would count a retracted line): ClickHouse's default for a non-key column under
    ``FINAL``, pinned by the setting. Not ``_counted_lines``: over the whole table ``FINAL`` is
    the cheaper way to the counted lines; over a few days' lines (``budget_seeds``) grouping
    them is (5M lines, 3 days: 0.09 s against 0.31 s)."""
    for row in ch.query(
        "SELECT dedup_scope, source_file, model, sum(input_tokens), sum(output_tokens), "
        "sum(cache_creation_tokens), sum(cache_read_tokens), toString(sum(cost_usd)), count(), "
        "min(toUnixTimestamp64Milli(timestamp)), max(toUnixTimestamp64Milli(timestamp)), "
        "sumMap(tool_uses, arrayMap(t -> toUInt64(1), tool_uses)) "
        f"FROM counted_usage FINAL WHERE ({where}) AND sign = 1 "
        "GROUP BY dedup_scope, source_file, model "
        "SETTINGS optimize_move_to_prewhere_if_final = 0"
    ):
        scope_, file, model, i, o, cc, cr, cost, n, first, last, (names, counts) = row
        session_id = session_parts(str(file))[0]
        agg = sessions.get(session_id)
        if agg is None:
            agg = sessions[session_id] = SessionAgg(session_id, project_of(str(file)))
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
        tools = agg.tool_uses
        for name, count in zip(names, counts, strict=True):
            tools[str(name)] = tools.get(str(name), 0) + int(count)


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
    counted transcript lines (``counted_usage``) and events, priced as the worker prices them
    (``alerts/windows.py``). Grouped by subject and hour: every window is a union of hours."""
    if not budgets:
        return {}
    since = f"fromUnixTimestamp64Milli({int(since_ms)}, 'UTC')"
    hour = "intDiv(toUnixTimestamp64Milli(timestamp), 3600000) * 3600000"  # of events
    spends = [
        Spend(int(start), Decimal(cost), project=project_of(file), session=session_parts(file)[0])
        for start, file, cost in ch.query(
            f"SELECT intDiv(ms, 3600000) * 3600000 AS start, source_file, toString(sum(cost)) "
            f"FROM ({_counted_lines(f'timestamp >= {since}')}) GROUP BY start, source_file"
        )
    ]
    rows = ch.query(
        f"SELECT {hour} AS start, project_id, user_id, session_id, cost_provided, model, "
        "tokens_input, tokens_output, tokens_cache_read, tokens_cache_write, "
        "toString(sum(cost_usd)), count() FROM events FINAL "
        f"WHERE timestamp >= {since} AND event_type != {quote_string(ALERT_TYPE)} "
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
