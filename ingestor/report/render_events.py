"""Tables for the event and ledger reports (``report/events.py``): one table a section, columns
as the JSON names them, money in dollars to six places (event costs are fractions of a cent)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

__all__ = ["event_tables"]

_MICRO = Decimal("0.000001")
# Columns left out of tables (still in the JSON): long ids and the split of the cost.
_HIDDEN = {"eventId", "sessionId", "userId", "runId", "providedCostUsd", "calculatedCostUsd"}
_TITLES = {
    "events": "Recent events",
    "costs": "Cost by model (prompt calls)",
    "errors": "Error rate by hour (prompt calls)",
    "trace": "Agent steps",
    "projects": "Projects",
    "grossMargin": "Gross margin",
    "providers": "Cost by provider",
    "trend": "Margin by day",
    "distribution": "Requests by vendor cost",
}


def event_tables(report: Mapping[str, Any], console: Console) -> None:
    """Print each section of ``report`` (lists of rows, or one row) to ``console``."""
    for key, title in _TITLES.items():
        section = report.get(key)
        if section is None:
            continue
        rows = [section] if isinstance(section, Mapping) else list(section)
        if key == "trace" and report.get("runId"):
            title = f"{title} of run {report['runId']}"
        if not rows:
            console.print(f"{title}: none")
            continue
        totals = report.get("totals") if key == report.get("report") else None
        console.print(_table(title, rows, totals))
        if key == "trace":  # the run's events under its steps
            console.print(_table("Events of the run", report.get("events", []), totals))


def _table(title: str, rows: Sequence[Mapping[str, Any]], totals: Any) -> Table:
    columns = [c for c in rows[0] if c not in _HIDDEN] if rows else []
    table = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False)
    for c in columns:
        numeric = isinstance(rows[0][c], (int, Decimal)) or c.endswith(("Usd", "Ms"))
        table.add_column(c, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        table.add_row(*(_cell(c, row.get(c)) for c in columns))
    if isinstance(totals, Mapping) and columns:
        table.add_section()
        cells = [_cell(c, totals[c]) if c in totals else "" for c in columns]
        table.add_row("Total", *cells[1:], style="bold")
    return table


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (Decimal, int)) and column.endswith("Usd"):
        # ints too: the worker's JSON, read back, has 0 for a zero cost
        return "$" + f"{Decimal(value).quantize(_MICRO, rounding=ROUND_HALF_UP):,}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
