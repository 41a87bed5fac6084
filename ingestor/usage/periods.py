"""``daily``, ``weekly`` and ``monthly``: usage summed per calendar period in one time zone.

Pure. Each function takes the counted entries in ccusage's load order (files sorted by path,
lines in file order, dedup applied) and returns the ``--json`` object ccusage 20.0.24 prints.

Flags, and the ccusage code each follows (``rust/crates/ccusage/src``; the binary wins):

- ``tz`` (``-z``): every date is the entry's day in this IANA zone (``format_date_tz``).
- ``since``/``until`` (``-s``/``-u``, ``YYYYMMDD`` or ``YYYY-MM-DD``, inclusive): compared with
  the *day* of each daily row (``filter_and_sort_summaries`` in ``commands::run_daily``,
  ``run_weekly``, ``run_bucket``). Weekly and monthly filter the day rows *before* bucketing, so a
  week cut by ``--since`` holds only its days from ``since`` on, under the full week's label.
- ``order`` (``-o``, default ``asc``): stable sort by the row label; ``desc`` also orders the
  day rows before bucketing, which decides a bucket's ``modelsUsed`` order (``run_weekly``).
- ``start_of_week`` (``-w``, weekly only, default ``sunday``): ``summary::week_start``.
- ``instances`` (``-i``, daily only): rows per (day, project), printed as
  ``{"projects": {project: [rows]}, "totals"}`` with projects in name order; when no row is left
  the shape falls back to ``{"daily": [], "totals"}`` (``run_daily``).
- ``project`` (``-p``, daily only): only that project's entries; rows then carry ``"project"``
  even without ``--instances`` (``load_daily_summaries(.., instances || project.is_some())``).
- ``last`` (``--last N``, 20.0.24 only, not in the source snapshot): ``since`` becomes the first
  day of the period N-1 periods before the one holding ``now_ms`` in ``tz``; no ``until`` (later
  rows stay). It cannot be combined with ``since``/``until`` and must be >= 1 (binary's errors).
- ``--breakdown`` changes only the table; the JSON always has ``modelBreakdowns``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from ingestor.usage.entry import Entry
from ingestor.usage.reports_core import (
    Json,
    Order,
    Summary,
    in_bounds,
    local_date,
    normalize_bound,
    sort_rows,
    totals_json,
    zone,
)

__all__ = ["WEEKDAYS", "WeekDay", "daily", "monthly", "week_start", "weekly"]

WeekDay = Literal["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
WEEKDAYS: tuple[WeekDay, ...] = (
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
)
_Period = Literal["day", "week", "month"]


def week_start(day: date, start: WeekDay) -> date:
    """The first day of ``day``'s week when weeks begin on ``start``."""
    from_sunday = (day.weekday() + 1) % 7  # date.weekday() counts from Monday
    return day - timedelta(days=(from_sunday - WEEKDAYS.index(start)) % 7)


def daily(
    entries: Sequence[Entry],
    *,
    tz: str,
    since: str | None = None,
    until: str | None = None,
    order: Order = "asc",
    instances: bool = False,
    project: str | None = None,
    last: int | None = None,
    now_ms: int | None = None,
) -> Json:
    """``ccusage claude daily --json``."""
    zone_ = zone(tz)
    since, until = _bounds(since, until, last, now_ms, zone_, "day", "sunday")
    by_project = instances or project is not None
    groups: dict[tuple[str, str], Summary] = {}
    for entry in entries:
        if project is not None and entry.project != project:
            continue
        key = (local_date(entry.timestamp_ms, zone_).isoformat(), entry.project)
        groups.setdefault(key if by_project else (key[0], ""), Summary()).add(entry)
    # BTreeMap order first (day, then project), then the stable sort by day alone.
    kept = [(key, row) for key, row in sorted(groups.items()) if in_bounds(key[0], since, until)]
    kept.sort(key=lambda item: item[0][0], reverse=order == "desc")
    rows = [row for _, row in kept]

    def row_json(key: tuple[str, str], row: Summary) -> Json:
        return row.json(date=key[0], project=key[1]) if by_project else row.json(date=key[0])

    if instances and kept:
        projects: dict[str, list[Json]] = {}
        for name in sorted({key[1] for key, _ in kept}):
            projects[name] = [row_json(key, row) for key, row in kept if key[1] == name]
        return {"projects": projects, "totals": totals_json(rows)}
    return {"daily": [row_json(key, row) for key, row in kept], "totals": totals_json(rows)}


def weekly(
    entries: Sequence[Entry],
    *,
    tz: str,
    since: str | None = None,
    until: str | None = None,
    order: Order = "asc",
    start_of_week: WeekDay = "sunday",
    last: int | None = None,
    now_ms: int | None = None,
) -> Json:
    """``ccusage claude weekly --json``; each row's ``week`` is its first day."""
    zone_ = zone(tz)
    since, until = _bounds(since, until, last, now_ms, zone_, "week", start_of_week)
    rows = _bucketed(
        entries, zone_, since, until, order, lambda day: week_start(day, start_of_week).isoformat()
    )
    return {
        "weekly": [row.json(week=label) for label, row in rows],
        "totals": totals_json([row for _, row in rows]),
    }


def monthly(
    entries: Sequence[Entry],
    *,
    tz: str,
    since: str | None = None,
    until: str | None = None,
    order: Order = "asc",
    last: int | None = None,
    now_ms: int | None = None,
) -> Json:
    """``ccusage claude monthly --json``; each row's ``month`` is ``YYYY-MM``."""
    zone_ = zone(tz)
    since, until = _bounds(since, until, last, now_ms, zone_, "month", "sunday")
    rows = _bucketed(entries, zone_, since, until, order, lambda day: day.isoformat()[:7])
    return {
        "monthly": [row.json(month=label) for label, row in rows],
        "totals": totals_json([row for _, row in rows]),
    }


def _bucketed(
    entries: Sequence[Entry],
    zone_: ZoneInfo,
    since: str | None,
    until: str | None,
    order: Order,
    bucket_of: Callable[[date], str],
) -> list[tuple[str, Summary]]:
    """``run_weekly``/``run_bucket``: day rows, filtered and ordered, folded into buckets."""
    days: dict[date, Summary] = {}
    for entry in entries:
        days.setdefault(local_date(entry.timestamp_ms, zone_), Summary()).add(entry)
    day_rows = sort_rows(
        [(day.isoformat(), row) for day, row in sorted(days.items())],
        order,
    )
    buckets: dict[str, Summary] = {}
    for label, row in day_rows:
        if in_bounds(label, since, until):
            buckets.setdefault(bucket_of(date.fromisoformat(label)), Summary()).merge(row)
    return sort_rows(sorted(buckets.items(), key=lambda item: item[0]), order)


def _bounds(
    since: str | None,
    until: str | None,
    last: int | None,
    now_ms: int | None,
    zone_: ZoneInfo,
    period: _Period,
    start_of_week: WeekDay,
) -> tuple[str | None, str | None]:
    if last is None:
        return normalize_bound(since), normalize_bound(until)
    if since is not None or until is not None:
        raise ValueError("The --last option cannot be combined with --since or --until.")
    if last < 1:
        raise ValueError(f"Invalid value for --last '{last}'. Expected 1 or greater.")
    if now_ms is None:
        raise ValueError("--last needs now_ms: its periods count back from today")
    today = local_date(now_ms, zone_)
    if period == "day":
        first = today - timedelta(days=last - 1)
    elif period == "week":
        first = week_start(today, start_of_week) - timedelta(weeks=last - 1)
    else:
        months = today.year * 12 + today.month - 1 - (last - 1)
        first = date(months // 12, months % 12 + 1, 1)
    return first.isoformat().replace("-", ""), None
