"""Reports for people (a table) and for programs (JSON with exact money).

JSON writes ``Decimal`` as a plain JSON number with every digit it has (``0.0123``), never a
float and never a string, so a consumer parsing with a decimal type gets the exact cost.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = ["render_json", "render_table"]

# The list a report keeps its rows under, the key that labels each row, and its title.
_ROWS = {
    "daily": ("date", "Date"),
    "monthly": ("month", "Month"),
    "sessions": ("sessionId", "Session"),
    "models": ("modelName", "Model"),
}
_CENT = Decimal("0.01")
_NUMBERS = (
    ("Input", "inputTokens"),
    ("Output", "outputTokens"),
    ("Cache Create", "cacheCreationTokens"),
    ("Cache Read", "cacheReadTokens"),
    ("Total Tokens", "totalTokens"),
)


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


def render_table(report: Mapping[str, Any]) -> str:
    """A fixed-width table of ``report``'s rows and a totals line; cost rounded to cents."""
    name = next((key for key in _ROWS if key in report), None)
    if name is None:
        raise ValueError(f"not a usage report: keys {sorted(report)}")
    label, title = _ROWS[name]
    header = [title, "Models", *(title for title, _ in _NUMBERS), "Cost (USD)"]
    lines = [header]
    for row in report[name]:
        cost = row.get("totalCost", row.get("cost", Decimal(0)))
        used = row.get("modelsUsed", [row.get("modelName", "")])
        lines.append(
            [
                str(row[label]),
                ", ".join(used),
                *(f"{row[key]:,}" for _, key in _NUMBERS),
                _usd(cost),
            ]
        )
    totals = report["totals"]
    lines.append(
        ["Total", "", *(f"{totals[key]:,}" for _, key in _NUMBERS), _usd(totals["totalCost"])]
    )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        cells = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0 or n == len(lines) - 2:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out) + "\n"


def _usd(value: Decimal) -> str:
    return f"{value.quantize(_CENT, rounding=ROUND_HALF_UP):,}"
