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
test ``tests/unit/usage/test_reports_vs_ccusage.py``):

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

from collections.abc import Sequence

from ingestor.usage.blocks import blocks
from ingestor.usage.entry import Entry
from ingestor.usage.periods import WeekDay, daily, monthly, weekly
from ingestor.usage.reports_core import (
    Json,
    Order,
    Summary,
    in_bounds,
    iso_ms,
    local_date,
    normalize_bound,
    totals_json,
    zone,
)

__all__ = ["Json", "Order", "WeekDay", "blocks", "daily", "monthly", "session", "weekly"]


class _Session:
    __slots__ = ("first_ms", "last_ms", "summary")

    def __init__(self, timestamp_ms: int) -> None:
        self.summary = Summary()
        self.first_ms = timestamp_ms
        self.last_ms = timestamp_ms

    def add(self, entry: Entry) -> None:
        self.summary.add(entry)
        self.first_ms = min(self.first_ms, entry.timestamp_ms)
        last = entry.timestamp_ms if entry.last_ms is None else entry.last_ms
        self.last_ms = max(self.last_ms, last)


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
    groups: dict[tuple[str, str], _Session] = {}
    for entry in entries:
        if (since or until) and not in_bounds(
            local_date(entry.timestamp_ms, zone_).isoformat(), since, until
        ):
            continue
        key = (entry.project_path, entry.session_id)
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Session(entry.timestamp_ms)
        group.add(entry)
    kept = [(key, group) for key, group in groups.items() if group.summary.total_tokens > 0]
    kept.sort(key=lambda item: item[1].summary.cost, reverse=True)
    return {
        "sessions": [_session_json(key, group) for key, group in kept],
        "totals": totals_json([group.summary for _, group in kept]),
    }


def _session_json(key: tuple[str, str], group: _Session) -> Json:
    row = group.summary.json()
    project_path, session_id = key
    return {
        "sessionId": session_id,
        **row,
        "lastActivity": iso_ms(group.last_ms),
        "firstActivity": iso_ms(group.first_ms),
        "projectPath": project_path,
    }
