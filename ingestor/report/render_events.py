"""Tables for the event and ledger reports (``report/events.py``): one table a section, money in
dollars to six places (event costs are fractions of a cent; four under 110 columns). Every
column is in the JSON; a table leaves out ids and, when narrow, the cache columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

__all__ = ["event_tables"]

_MICRO = Decimal("0.000001")
_CENTI_CENT = Decimal("0.0001")  # under 110 columns
# Columns left out of tables (still in the JSON): long ids and the split of the cost.
_HIDDEN = {
    "eventId", "sessionId", "userId", "runId", "providedCostUsd", "calculatedCostUsd",
    "revenueUsd", "inputTokens", "outputTokens", "firstEvent", "creditsDeducted", "errorType",
    "budget",
}  # fmt: skip
_NARROW_HIDDEN = {
    "cacheReadTokens", "cacheCreationTokens", "agentName", "errorType", "modelId", "projectId",
}  # fmt: skip
# Label columns give way (ellipsis) so the numbers never shrink.
_SHRINK = {
    "model", "models", "stepName", "projectId", "errorType", "agentName", "providerId", "subject",
}  # fmt: skip
_HEADERS = {
    "timestamp": "Time", "projectId": "Project", "eventType": "Type", "model": "Model",
    "status": "Status", "inputTokens": "Input", "outputTokens": "Output",
    "cacheReadTokens": "Cache Read", "cacheCreationTokens": "Cache Create", "costUsd": "Cost",
    "costSource": "Source", "latencyMs": "ms", "errorType": "Error", "requests": "Requests",
    "failures": "Failures", "avgLatencyMs": "Avg ms", "unpricedEvents": "No price",
    "hour": "Hour", "errorRatePct": "Error %", "stepNumber": "Step", "stepName": "Name",
    "measured": "Timed", "p50LatencyMs": "p50 ms", "p90LatencyMs": "p90 ms",
    "p99LatencyMs": "p99 ms",
    "stepType": "Kind", "agentName": "Agent", "events": "Events", "errorEvents": "Errors",
    "totalTokens": "Tokens", "models": "Models", "lastEvent": "Last event",
    "providerId": "Provider", "modelId": "Model", "vendorCostUsd": "Vendor cost",
    "grossMarginUsd": "Margin", "marginRatio": "Margin %", "date": "Date",
    "bucketUsd": "From", "scope": "Scope", "subject": "Subject", "window": "Window",
    "windowStart": "Window start", "thresholdUsd": "Budget", "actualUsd": "Spent",
}  # fmt: skip
_TITLES = {
    "events": "Recent events",
    "costs": "Cost by model (prompt calls)",
    "errors": "Error rate by hour (prompt calls)",
    "latency": "Latency by hour (prompt calls)",
    "trace": "Agent steps",
    "projects": "Projects",
    "grossMargin": "Gross margin",
    "providers": "Cost by provider",
    "trend": "Margin by day",
    "distribution": "Requests by vendor cost",
    "alerts": "Budget alerts",
}


def event_tables(report: Mapping[str, Any], console: Console, width: int) -> None:
    """Print each section of ``report`` (lists of rows, or one row) to ``console``; under 110
    columns the cache and some label columns are left out."""
    narrow = width < 110
    hidden = _HIDDEN | (_NARROW_HIDDEN if narrow else set())
    places = _CENTI_CENT if narrow else _MICRO
    for key, title in _TITLES.items():
        section = report.get(key)
        if section is None or (key == "events" and report.get("report") == "trace"):
            continue
        rows = [section] if isinstance(section, Mapping) else list(section)
        if key == "trace" and report.get("runId"):
            title = f"{title} of run {report['runId']}"
        if not rows:
            console.print(f"{title}: none")
            continue
        totals = report.get("totals") if key == report.get("report") else None
        shown = hidden - {"projectId"} if key == "projects" else hidden
        console.print(_table(title, rows, totals, shown, places))
        if key == "trace" and report.get("events"):  # the run's events under its steps
            console.print(_table("Events of the run", report["events"], totals, shown, places))


def _table(
    title: str,
    rows: Sequence[Mapping[str, Any]],
    totals: Any,
    hidden: set[str],
    places: Decimal,
) -> Table:
    columns = [c for c in rows[0] if c not in hidden] if rows else []
    body = [[_cell(c, row.get(c), places) for c in columns] for row in rows]
    table = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False)
    for i, c in enumerate(columns):
        header = _HEADERS.get(c, c)
        numeric = isinstance(rows[0][c], (int, Decimal)) or c.endswith(("Usd", "Ms", "Ratio"))
        fit = max(len(header), *(len(cells[i]) for cells in body))
        table.add_column(
            header, justify="right" if numeric else "left", no_wrap=True, overflow="ellipsis",
            min_width=min(fit, 8) if c in _SHRINK else fit,
            max_width=(16 if places == _CENTI_CENT else 32) if c in _SHRINK else None,
        )  # fmt: skip
    for cells in body:
        table.add_row(*cells)
    if isinstance(totals, Mapping) and any(c in totals for c in columns[1:]):
        table.add_section()
        cells = [_cell(c, totals[c], places) if c in totals else "" for c in columns]
        table.add_row("Total", *cells[1:], style="bold")
    return table


def _cell(column: str, value: Any, places: Decimal) -> str:
    if value is None:
        return ""
    if isinstance(value, (Decimal, int)) and column.endswith("Usd"):
        # ints too: the worker's JSON, read back, has 0 for a zero cost
        return "$" + f"{Decimal(value).quantize(places, rounding=ROUND_HALF_UP):,}"
    if column in ("timestamp", "hour", "lastEvent", "windowStart"):
        return str(value).replace("T", " ").removesuffix("Z")[:16]
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
