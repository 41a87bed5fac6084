"""ccusage's JSON reports from counted usage entries: one pure function per report kind.

Every function takes ``Sequence[Entry]`` (accepted, deduplicated, in ccusage's load order: files
sorted by path, lines in file order) and returns the object ``ccusage claude <kind> --json``
20.0.24 prints, as dicts and lists with ``Decimal`` costs and ``int`` tokens (render it with
``ingestor.report.render.render_json``). Nothing here reads a clock: reports that depend on
"now" (``blocks``, ``--last``) take ``now_ms``.

- ``daily``, ``weekly``, ``monthly`` live in ``periods.py`` (flags documented there);
- ``blocks`` lives in ``blocks.py`` (flags documented there);
- ``session`` is here.

Where the kinds disagree with each other (two ccusage loaders, which date each filter compares,
``--order`` ignored by ``session``): ``docs/ccusage-report-notes.md``.

``session`` (``commands::run_session`` plus the 20.0.24 binary's differences, found by the parity
test ``tests/parity/test_reports_vs_ccusage.py``):

- rows group entries by (``project_path``, ``session_id``) in first-seen order;
- ``since``/``until`` filter *entries* by their day in ``tz`` before grouping (the 20.0.11 source
  filtered rows on ``lastActivity``; the binary does not), so a session cut by ``--until`` shows
  only its entries up to that day;
- rows with no tokens are dropped; rows sort by ``totalCost`` descending, stable, whatever
  ``--order`` says (``session_shared.order = SortOrder::Desc``);
- ``firstActivity``/``lastActivity`` are UTC ``...T..:..:..mmmZ`` whatever ``tz`` is;
- ``versions`` is collected by ccusage but not printed (``session_summary_json``), so it is absent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

from ingestor.usage.blocks import blocks
from ingestor.usage.entry import Entry
from ingestor.usage.periods import WeekDay, daily, monthly, weekly
from ingestor.usage.reports_core import (
    Json,
    Order,
    in_bounds,
    iso_ms,
    local_date,
    normalize_bound,
    zone,
)

__all__ = [
    "Json",
    "Order",
    "SessionRow",
    "add_to_model",
    "WeekDay",
    "blocks",
    "daily",
    "monthly",
    "session",
    "session_rows_json",
    "weekly",
]

# A session while its entries are added (a list: the loops that fill it run once per entry or
# summed group): first and last instant, input, output, cache creation and cache read tokens,
# cost, and per model in first-seen order the four counts and cost.
SessionRow = list[Any]
FIRST, LAST, INPUT, OUTPUT, CREATE, READ, COST, MODELS = range(8)


def session(
    entries: Sequence[Entry],
    *,
    tz: str,
    since: str | None = None,
    until: str | None = None,
) -> Json:
    """``ccusage claude session --json`` (``--order`` has no effect on it)."""
    zone_ = zone(tz)
    since, until = normalize_bound(since), normalize_bound(until)
    sessions: dict[tuple[str, str], SessionRow] = {}
    for entry in entries:
        first = entry.timestamp_ms
        if (since or until) and not in_bounds(local_date(first, zone_).isoformat(), since, until):
            continue
        last = first if entry.last_ms is None else max(first, entry.last_ms)
        i, o = entry.input_tokens, entry.output_tokens
        cc, cr, cost = entry.cache_creation_tokens, entry.cache_read_tokens, entry.cost
        key = (entry.project_path, entry.session_id)
        row = sessions.get(key)
        if row is None:
            row = sessions[key] = [first, last, i, o, cc, cr, cost, {}]
        else:
            row[FIRST] = min(row[FIRST], first)
            row[LAST] = max(row[LAST], last)
            row[INPUT] += i
            row[OUTPUT] += o
            row[CREATE] += cc
            row[READ] += cr
            row[COST] += cost
        if entry.model is None:
            continue
        add_to_model(row[MODELS], entry.model, i, o, cc, cr, cost)
    return session_rows_json(sessions.items(), _decimal)


def add_to_model(
    models: dict[str, list[Any]], model: str, i: int, o: int, cc: int, cr: int, cost: Any
) -> None:
    """Add a group's tokens and cost to ``model``'s part of a session row's breakdown."""
    part = models.get(model)
    if part is None:
        models[model] = [i, o, cc, cr, cost]
    else:
        part[0] += i
        part[1] += o
        part[2] += cc
        part[3] += cr
        part[4] += cost


def _decimal(cost: Decimal | int) -> Decimal:
    return cost if isinstance(cost, Decimal) else Decimal(cost)


def session_rows_json(
    sessions: Iterable[tuple[tuple[str, str], SessionRow]], money: Callable[[Any], Any]
) -> Json:
    """The report of ``(projectPath, sessionId)`` rows in first-seen order, each with its models
    in first-seen order: rows without tokens dropped, rows then each row's models sorted by cost
    (descending, stable: ties stay in first-seen order, as Rust's ``sort_by``), totals over the
    rows kept. ``money``: a cost as the report holds it (``Decimal``, or text for orjson)."""
    kept = [
        (key, row)
        for key, row in sessions
        if row[INPUT] + row[OUTPUT] + row[CREATE] + row[READ] > 0
    ]
    kept.sort(key=_cost, reverse=True)
    out = []
    ti = to = tcc = tcr = 0
    tcost: Any = 0
    for (project_path, session_id), (first, last, i, o, cc, cr, cost, models) in kept:
        parts = sorted(models.items(), key=_part_cost, reverse=True)
        out.append(
            {
                "sessionId": session_id,
                "inputTokens": i,
                "outputTokens": o,
                "cacheCreationTokens": cc,
                "cacheReadTokens": cr,
                "totalTokens": i + o + cc + cr,
                "totalCost": money(cost),
                "modelsUsed": list(models),
                "modelBreakdowns": [
                    {
                        "modelName": model,
                        "inputTokens": mi,
                        "outputTokens": mo,
                        "cacheCreationTokens": mcc,
                        "cacheReadTokens": mcr,
                        "cost": money(mcost),
                    }
                    for model, (mi, mo, mcc, mcr, mcost) in parts
                ],
                "lastActivity": iso_ms(last),
                "firstActivity": iso_ms(first),
                "projectPath": project_path,
            }
        )
        ti += i
        to += o
        tcc += cc
        tcr += cr
        tcost += cost
    totals = {
        "inputTokens": ti,
        "outputTokens": to,
        "cacheCreationTokens": tcc,
        "cacheReadTokens": tcr,
        "totalTokens": ti + to + tcc + tcr,
        "totalCost": money(tcost),
    }
    return {"sessions": out, "totals": totals}


def _cost(item: tuple[Any, SessionRow]) -> Any:
    return item[1][COST]


def _part_cost(item: tuple[str, list[Any]]) -> Any:
    return item[1][4]
