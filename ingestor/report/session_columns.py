"""The session report from summed columns (``counted.Summed``): ccusage's ``session --json``
without an ``Entry``, a ``Summary`` or a ``Decimal`` per group.

It is the report that stays large: a row per session and a breakdown per (session, model), so
~14k rows from ~27k summed groups over 1M lines. The groups are added up here, per session and
per model, as ``usage.reports.session`` adds entries up, and the rows go to the same
``usage.reports.session_rows_json`` (``tests/unit/report/test_session_columns.py`` holds the two
equal, byte for byte):

* groups are added in the columns' order, which is ccusage's: a session's first group places
  it, a model's first group within a session places the model;
* ``since``/``until`` keep a group by its first instant's day in ``tz``, as they keep an entry;
* costs are added as integers of ``10 ** -scale`` USD, exactly, and become a number once per
  printed cost: a ``Decimal`` (``session_report``, what ``build`` returns) or its JSON text
  (``session_json``, orjson writing the rest: ``render.render_json``'s bytes).
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

import orjson

from ingestor.report.counted import Summed, model_name
from ingestor.report.render import ascii_json
from ingestor.usage.paths import session_parts
from ingestor.usage.reports import SessionRow, add_to_model, session_rows_json
from ingestor.usage.reports_core import Json, in_bounds, local_date, normalize_bound, zone

__all__ = ["money_text", "session_json", "session_report"]


def session_report(
    summed: Summed, *, tz: str, since: str | None = None, until: str | None = None
) -> Json:
    """``usage.reports.session`` of ``summed``'s entries, costs as ``Decimal``."""
    scale = summed.scale
    rows = _sessions(summed, tz, since, until)
    return session_rows_json(rows.items(), lambda units: Decimal(f"{units}E-{scale}"))


def session_json(
    summed: Summed, *, tz: str, since: str | None = None, until: str | None = None
) -> bytes | None:
    """``render_json(session_report(...))``, encoded; None when orjson cannot write it (an
    integer past 64 bits, a string that is not Unicode): render the report instead."""
    scale = summed.scale
    rows = _sessions(summed, tz, since, until)
    report = session_rows_json(
        rows.items(), lambda units: orjson.Fragment(money_text(units, scale))
    )
    try:
        return ascii_json(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    except orjson.JSONEncodeError:
        return None


def _sessions(
    s: Summed, tz: str, since: str | None, until: str | None
) -> dict[tuple[str, str], SessionRow]:
    """The groups added up per session (``usage.reports.SessionRow``), in first-seen order."""
    since, until = normalize_bound(since), normalize_bound(until)
    zone_ = zone(tz)
    bounded = bool(since or until)
    sessions: dict[tuple[str, str], SessionRow] = {}
    keys: dict[str, tuple[str, str]] = {}
    names: dict[tuple[str, int], str | None] = {}
    for file, name, fast, first, last, i, o, cc, cr, cost in zip(
        s.file, s.model, s.fast, s.first_ms, s.last_ms, s.input_tokens, s.output_tokens,
        s.cache_creation_tokens, s.cache_read_tokens, s.cost, strict=True,
    ):  # fmt: skip
        if bounded and not in_bounds(local_date(first, zone_).isoformat(), since, until):
            continue
        key = keys.get(file)
        if key is None:
            key = keys[file] = _key(file)
        row = sessions.get(key)
        if row is None:
            sessions[key] = row = [first, last, i, o, cc, cr, cost, {}]
        else:
            if first < row[0]:
                row[0] = first
            if last > row[1]:
                row[1] = last
            row[2] += i
            row[3] += o
            row[4] += cc
            row[5] += cr
            row[6] += cost
        model = names.get((name, fast), "")
        if model == "":
            model = names[name, fast] = model_name(name, fast)
        if model is None:
            continue
        add_to_model(row[7], model, i, o, cc, cr, cost)
    return sessions


@lru_cache(maxsize=65_536)
def _key(file: str) -> tuple[str, str]:
    """``(projectPath, sessionId)``: the session report's group of ``file``'s entries."""
    session_id, project_path = session_parts(file)
    return project_path, session_id


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
