"""Reports for people (a table) and for programs (JSON with exact money).

JSON writes ``Decimal`` as a plain JSON number with every digit it has (``0.0123``), never a
float and never a string, so a consumer parsing with a decimal type gets the exact cost.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = ["render_json", "render_table"]

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


def _encode(value: Any, indent: int, depth: int) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot write {value} as JSON")
        text = format(value.normalize(), "f")
        return "0" if text in ("-0", "0") else text
    pad, inner = "\n" + " " * (indent * depth), "\n" + " " * (indent * (depth + 1))
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = (f"{json.dumps(str(k))}: {_encode(v, indent, depth + 1)}" for k, v in value.items())
        return "{" + inner + ("," + inner).join(items) + pad + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        return (
            "["
            + inner
            + ("," + inner).join(_encode(v, indent, depth + 1) for v in value)
            + pad
            + "]"
        )
    return json.dumps(value)


def render_table(report: Mapping[str, Any], *, breakdown: bool = False, width: int = 0) -> str:
    """``report``'s rows and totals as a table; cost in dollars rounded to cents.

    ``width`` is the terminal's (0: ask it). Under 110 columns the cache columns are left out,
    as ccusage's compact mode does, so a table fits 80 columns. ``breakdown`` adds a row per
    model under each row. Daily ``--instances`` and ``--machines`` reports print one table a group.
    """
    width = width or shutil.get_terminal_size((80, 24)).columns
    if "projects" in report or "machines" in report:
        groups = report.get("projects") or {
            m["machine"]: next(v for k, v in m.items() if isinstance(v, list))
            for m in report.get("machines", [])
        }
        parts = [
            f"{name}\n" + _table(rows, breakdown, width, None) for name, rows in groups.items()
        ]
        return "\n".join(parts) + _table([], False, width, report["totals"])
    if "skipped" in report:
        rows = [f"{row['rule']:<40} {row['lines']:>12,}" for row in report["skipped"]]
        total = f"{'Total':<40} {report['totals']['lines']:>12,}"
        return "\n".join([f"{'Rule':<40} {'Lines':>12}", *rows, total]) + "\n"
    name = next((key for key in _ROWS if key in report), None)
    if name is None:
        raise ValueError(f"not a usage report: keys {sorted(report)}")
    if not report[name]:
        return "No usage data found.\n"
    return _table(report[name], breakdown, width, report.get("totals"))


def _table(
    rows: list[Mapping[str, Any]], breakdown: bool, width: int, totals: Mapping[str, Any] | None
) -> str:
    numbers = _NUMBERS if width >= 110 else _COMPACT
    lines = [["", *(title for title, _ in numbers), "Cost"]]
    for row in rows:
        lines.append([_label(row), *(f"{_tokens(row, key):,}" for _, key in numbers), _cost(row)])
        if breakdown:
            for part in row.get("modelBreakdowns", []):
                part = {**part, "totalTokens": sum(_tokens(part, k) for _, k in _NUMBERS[:4])}
                lines.append(
                    ["  " + _short_model(part["modelName"])]
                    + [f"{_tokens(part, key):,}" for _, key in numbers]
                    + [_cost(part)]
                )
    if totals is not None:
        lines.append(["Total", *(f"{_tokens(totals, key):,}" for _, key in numbers), _cost(totals)])
    label_width = max(
        10, width - sum(max(len(x[i]) for x in lines) + 2 for i in range(1, len(lines[0])))
    )
    for line in lines:
        if len(line[0]) > label_width:
            line[0] = line[0][: label_width - 1] + "…"
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for n, line in enumerate(lines):
        cells = [
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0 or (totals is not None and n == len(lines) - 2):
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out) + "\n"


def _label(row: Mapping[str, Any]) -> str:
    for key in ("date", "week", "month", "modelName"):
        if key in row:
            return str(row[key])
    if "sessionId" in row:
        return f"{row.get('projectPath', '')}/{row['sessionId']}"
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
