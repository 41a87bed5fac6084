"""Reports for people (a table) and for programs (JSON with exact money).

JSON writes ``Decimal`` as a plain JSON number with every digit it has (``0.0123``), never a
float and never a string, so a consumer parsing with a decimal type gets the exact cost.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from json.encoder import encode_basestring_ascii as _quote  # json.dumps' own, in C
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["ascii_json", "render_json", "render_table"]

# The list a report keeps its rows under, the key that labels each row, and its title.
_ROWS = ("daily", "weekly", "monthly", "sessions", "blocks", "models")
_CENT = Decimal("0.01")
_NUMBERS = (
    ("Input", "inputTokens"),
    ("Output", "outputTokens"),
    ("Cache Create", "cacheCreationTokens"),
    ("Cache Read", "cacheReadTokens"),
    ("Total Tokens", "totalTokens"),
)
_COMPACT = (_NUMBERS[0], _NUMBERS[1], _NUMBERS[4])
_BLOCK_KEYS = {
    "cacheCreationTokens": "cacheCreationInputTokens",
    "cacheReadTokens": "cacheReadInputTokens",
}


def render_json(report: Any, *, indent: int = 2) -> str:
    """``report`` as JSON; Decimals become exact JSON numbers."""
    return _encode(report, indent, 0)


_NOT_ASCII = re.compile(r"[^\x00-\x7e]+")


def ascii_json(raw: bytes) -> bytes:
    """orjson's text (``OPT_INDENT_2``) as ``render_json`` writes the same values: orjson writes
    characters past ASCII, and DEL, as they are, ``render_json`` escapes them as ``json.dumps``
    does. Both only occur inside strings, so they are escaped wherever they are."""
    if raw.isascii() and b"\x7f" not in raw:
        return raw
    return _NOT_ASCII.sub(lambda run: _quote(run.group())[1:-1], raw.decode()).encode()


def _encode(value: Any, indent: int, depth: int) -> str:
    # Scalars by exact type first (json.dumps builds an encoder a call: most of a big report's
    # time); subclasses and the rest go the general way below.
    kind = type(value)
    if kind is str:
        return _quote(value)
    if kind is int:
        return int.__repr__(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot write {value} as JSON")
        text = format(value.normalize(), "f")
        return "0" if text in ("-0", "0") else text
    pad, inner = "\n" + " " * (indent * depth), "\n" + " " * (indent * (depth + 1))
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        deeper = depth + 1
        items = [f"{_quote(str(k))}: {_encode(v, indent, deeper)}" for k, v in value.items()]
        return "{" + inner + ("," + inner).join(items) + pad + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        deeper = depth + 1
        return (
            "["
            + inner
            + ("," + inner).join([_encode(v, indent, deeper) for v in value])
            + pad
            + "]"
        )
    return json.dumps(value)


def render_table(
    report: Mapping[str, Any], *, breakdown: bool = False, width: int = 0, color: bool = False
) -> str:
    """``report``'s rows and totals as a table (``rich``); cost in dollars rounded to cents.

    ``width`` is the terminal's (0: ask it). Under 110 columns the cache columns are left out,
    as ccusage's compact mode does, so a table fits 80 columns. ``breakdown`` adds a row per
    model under each row. Daily ``--instances`` and ``--machines`` reports print one table a
    group. ``color``: ANSI colours (the caller decides: a terminal, ``NO_COLOR``, ``--no-color``).
    """
    # Imported here: `--json` (and the worker) never draws a table, and rich is a tenth of
    # the CLI's start.
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from ingestor.report.render_events import event_tables

    width = width or shutil.get_terminal_size((80, 24)).columns
    console = Console(
        width=width,
        file=io.StringIO(),
        force_terminal=bool(color),
        no_color=not color,
        color_system="standard" if color else None,
        highlight=False,
    )
    if "report" in report:  # the event and ledger reports
        event_tables(report, console, width)
    elif "projects" in report or "machines" in report:
        groups = report.get("projects") or {
            m["machine"]: next(v for k, v in m.items() if isinstance(v, list))
            for m in report.get("machines", [])
        }
        for name, rows in groups.items():
            console.print(_table(rows, breakdown, width, None, title=name))
        console.print(_table([], False, width, report["totals"], title="All"))
    elif "skipped" in report:
        table = Table(box=box.SIMPLE_HEAD, title="Lines kept out of the counts")
        table.add_column("Rule")
        table.add_column("Lines", justify="right")
        for row in report["skipped"]:
            table.add_row(row["rule"], f"{row['lines']:,}")
        table.add_row("Total", f"{report['totals']['lines']:,}", style="bold")
        console.print(table)
    else:
        name = next((key for key in _ROWS if key in report), None)
        if name is None:
            raise ValueError(f"not a usage report: keys {sorted(report)}")
        if not report[name]:
            return "No usage data found.\n"
        console.print(_table(report[name], breakdown, width, report.get("totals")))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in out.splitlines()) + "\n"


def _table(
    rows: list[Mapping[str, Any]],
    breakdown: bool,
    width: int,
    totals: Mapping[str, Any] | None,
    *,
    title: str | None = None,
) -> Table:
    from rich import box
    from rich.table import Table

    numbers = _NUMBERS if width >= 110 else _COMPACT
    body: list[tuple[list[str], str | None]] = []
    for row in rows:
        body.append(
            ([_label(row), *(f"{_tokens(row, key):,}" for _, key in numbers), _cost(row)], None)
        )
        if breakdown:
            for part in row.get("modelBreakdowns", []):
                part = {**part, "totalTokens": sum(_tokens(part, k) for _, k in _NUMBERS[:4])}
                cells = [f"{_tokens(part, key):,}" for _, key in numbers]
                body.append((["  " + _short_model(part["modelName"]), *cells, _cost(part)], "dim"))
    if totals is not None:
        cells = [f"{_tokens(totals, key):,}" for _, key in numbers]
        body.append((["Total", *cells, _cost(totals)], "bold yellow"))
    headers = ["", *(title_ for title_, _ in numbers), "Cost"]
    table = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False)
    # Numbers never shrink: the label column gives way (ellipsis) instead.
    fits = [max([len(h), *(len(cells[i]) for cells, _ in body)]) for i, h in enumerate(headers)]
    label_width = max(10, width - sum(fit + 3 for fit in fits[1:]) - 3)
    table.add_column(headers[0], overflow="ellipsis", no_wrap=True, max_width=label_width)
    for header, fit in zip(headers[1:], fits[1:], strict=True):
        colour = "green" if header == "Cost" else "cyan"
        table.add_column(header, justify="right", no_wrap=True, min_width=fit, style=colour)
    for n, (cells, row_style) in enumerate(body):
        if totals is not None and n == len(body) - 1:
            table.add_section()
        table.add_row(*cells, style=row_style)
    return table


def _label(row: Mapping[str, Any]) -> str:
    for key in ("date", "week", "month", "modelName"):
        if key in row:
            return str(row[key])
    if "sessionId" in row:  # the id's first block is enough to tell sessions apart
        return f"{str(row['sessionId'])[:8]} {row.get('projectPath', '')}"
    if "startTime" in row:
        mark = " (active)" if row.get("isActive") else " (gap)" if row.get("isGap") else ""
        return str(row["startTime"])[:16].replace("T", " ") + mark
    return ""


def _tokens(row: Mapping[str, Any], key: str) -> int:
    if key in row:
        return int(row[key])
    counts = row.get("tokenCounts", {})  # blocks
    alias = {
        "cacheCreationTokens": "cacheCreationInputTokens",
        "cacheReadTokens": "cacheReadInputTokens",
    }
    return int(counts.get(alias.get(key, key), 0))


def _cost(row: Mapping[str, Any]) -> str:
    value = row.get("totalCost", row.get("cost", row.get("costUSD", Decimal(0))))
    return "$" + _usd(Decimal(str(value)))


def _short_model(name: str) -> str:
    """``claude-sonnet-4-20250514`` -> ``sonnet-4`` (ccusage's short names)."""
    short = name.removeprefix("claude-")
    parts = short.split("-")
    if parts and len(parts[-1]) == 8 and parts[-1].isdigit():
        parts = parts[:-1]
    return "-".join(parts)


def _usd(value: Decimal) -> str:
    return f"{value.quantize(_CENT, rounding=ROUND_HALF_UP):,}"
