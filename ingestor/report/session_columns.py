"""The session report from summed columns (``counted.Summed``): ccusage's ``session --json``
without an ``Entry``, a ``Summary`` or a ``Decimal`` per group.

It is the report that stays large: a row per session and a breakdown per (session, model), so
~14k rows from ~27k summed groups over 1M lines, where ``usage.reports.session`` over
``rollup_entries`` spent most of a second making and adding objects. Same rules, same result
(``tests/unit/report/test_session_columns.py`` holds the two equal, byte for byte):

* groups are added in the columns' order, which is ccusage's: a session's first group places
  it, a model's first group within a session places the model, so ``modelsUsed`` and the two
  stable cost sorts (sessions, then each one's breakdowns) come out as ``Summary`` makes them;
* ``since``/``until`` keep a group by its first instant's day in ``tz``, as they keep an entry;
* costs are added as integers of ``10 ** -scale`` USD, exactly, and become a number once per
  printed cost: a ``Decimal`` (``session_report``, what ``build`` returns) or its JSON text
  (``session_json``, orjson writing the rest: ``render.render_json``'s bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson

from ingestor.report.counted import Summed, model_name
from ingestor.report.render import ascii_json
from ingestor.usage.paths import session_parts
from ingestor.usage.reports_core import Json, in_bounds, iso_ms, local_date, normalize_bound, zone

__all__ = ["session_json", "session_report"]

# A session while its groups are added: first and last instant, the four counts, cost, and per
# model (first-seen order) the same counts and cost.
_FIRST, _LAST, _INPUT, _OUTPUT, _CREATE, _READ, _COST, _MODELS = range(8)


def session_report(
    summed: Summed, *, tz: str, since: str | None = None, until: str | None = None
) -> Json:
    """``usage.reports.session`` of ``summed``'s entries, costs as ``Decimal``."""
    scale = summed.scale
    return _report(_sessions(summed, tz, since, until), lambda units: _decimal(units, scale))


def session_json(
    summed: Summed, *, tz: str, since: str | None = None, until: str | None = None
) -> bytes | None:
    """``render_json(session_report(...))``, encoded; None when orjson cannot write it (an
    integer past 64 bits, a string that is not Unicode): render the report instead."""
    scale = summed.scale
    report = _report(
        _sessions(summed, tz, since, until), lambda units: orjson.Fragment(money_text(units, scale))
    )
    try:
        return ascii_json(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    except orjson.JSONEncodeError:
        return None


def _sessions(
    s: Summed, tz: str, since: str | None, until: str | None
) -> dict[tuple[str, str], list[Any]]:
    since, until = normalize_bound(since), normalize_bound(until)
    zone_ = zone(tz)
    bounded = bool(since or until)
    sessions: dict[tuple[str, str], list[Any]] = {}
    for file, name, fast, first, last, i, o, cc, cr, cost in zip(
        s.file, s.model, s.fast, s.first_ms, s.last_ms, s.input_tokens, s.output_tokens,
        s.cache_creation_tokens, s.cache_read_tokens, s.cost, strict=True,
    ):  # fmt: skip
        if bounded and not in_bounds(local_date(first, zone_).isoformat(), since, until):
            continue
        key = _key(file)
        row = sessions.get(key)
        if row is None:
            row = sessions[key] = [first, last, i, o, cc, cr, cost, {}]
        else:
            if first < row[_FIRST]:
                row[_FIRST] = first
            if last > row[_LAST]:
                row[_LAST] = last
            row[_INPUT] += i
            row[_OUTPUT] += o
            row[_CREATE] += cc
            row[_READ] += cr
            row[_COST] += cost
        model = model_name(name, fast)
        if model is None:
            continue
        part = row[_MODELS].get(model)
        if part is None:
            row[_MODELS][model] = [i, o, cc, cr, cost]
        else:
            part[0] += i
            part[1] += o
            part[2] += cc
            part[3] += cr
            part[4] += cost
    return sessions


def _report(sessions: dict[tuple[str, str], list[Any]], money: Callable[[int], Any]) -> Json:
    kept = [
        (key, row)
        for key, row in sessions.items()
        if row[_INPUT] + row[_OUTPUT] + row[_CREATE] + row[_READ] > 0
    ]
    kept.sort(key=lambda item: item[1][_COST], reverse=True)  # stable, as Rust's sort_by
    rows = []
    totals = [0, 0, 0, 0, 0]
    for (project_path, session_id), row in kept:
        i, o, cc, cr, cost = row[_INPUT : _COST + 1]
        models: dict[str, list[int]] = row[_MODELS]
        rows.append(
            {
                "sessionId": session_id,
                **_tokens(i, o, cc, cr),
                "totalCost": money(cost),
                "modelsUsed": list(models),
                "modelBreakdowns": [
                    {
                        "modelName": model,
                        "inputTokens": part[0],
                        "outputTokens": part[1],
                        "cacheCreationTokens": part[2],
                        "cacheReadTokens": part[3],
                        "cost": money(part[4]),
                    }
                    for model, part in sorted(
                        models.items(), key=lambda item: item[1][4], reverse=True
                    )
                ],
                "lastActivity": iso_ms(row[_LAST]),
                "firstActivity": iso_ms(row[_FIRST]),
                "projectPath": project_path,
            }
        )
        totals[0] += i
        totals[1] += o
        totals[2] += cc
        totals[3] += cr
        totals[4] += cost
    i, o, cc, cr, cost = totals
    return {
        "sessions": rows,
        "totals": {**_tokens(i, o, cc, cr), "totalCost": money(cost)},
    }


def _tokens(i: int, o: int, cc: int, cr: int) -> Json:
    return {
        "inputTokens": i,
        "outputTokens": o,
        "cacheCreationTokens": cc,
        "cacheReadTokens": cr,
        "totalTokens": i + o + cc + cr,
    }


@lru_cache(maxsize=65_536)
def _key(file: str) -> tuple[str, str]:
    """``(projectPath, sessionId)``: the session report's group of ``file``'s entries."""
    session_id, project_path = session_parts(file)
    return project_path, session_id


def _decimal(units: int, scale: int) -> Decimal:
    return Decimal(f"{units}E-{scale}")


def money_text(units: int, scale: int) -> str:
    """``units * 10 ** -scale`` as ``render_json`` writes a ``Decimal``: every digit it has,
    no trailing zeros, no exponent."""
    if not units:
        return "0"
    digits = str(abs(units))
    if scale > 0:
        digits = digits.rjust(scale + 1, "0")
        fraction = digits[-scale:].rstrip("0")
        digits = digits[:-scale] + "." + fraction if fraction else digits[:-scale]
    return "-" + digits if units < 0 else digits
