"""ccusage-shaped usage reports, read from ``usage_dedup`` (every counted usage line).

Each function returns ccusage's JSON shape (``daily``, ``monthly``, ``session``) or the same
idea per model (``models``), with costs as exact ``Decimal``. ``since``/``until`` are inclusive
dates in ``tz``, the zone days and months are cut in. ``<synthetic>`` lines (and lines without a
model) count in every total but are left out of ``modelsUsed`` and ``modelBreakdowns``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ingestor.errors import ConfigError
from ingestor.pricing import SYNTHETIC_MODEL
from ingestor.sink.engine import ClickHouse

__all__ = ["daily", "models", "monthly", "session"]

_ZONE = re.compile(r"[A-Za-z0-9_+\-/]+")


@dataclass
class _Totals:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    cost: Decimal = Decimal(0)

    def add(self, other: _Totals) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_creation_tokens += other.cache_creation_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cost += other.cost

    def tokens(self) -> dict[str, int]:
        return {
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "cacheCreationTokens": self.cache_creation_tokens,
            "cacheReadTokens": self.cache_read_tokens,
        }

    def summary(self) -> dict[str, Any]:
        total = (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_tokens
            + self.cache_read_tokens
        )
        return {**self.tokens(), "totalTokens": total, "totalCost": self.cost}


@dataclass
class _Group:
    totals: _Totals = field(default_factory=_Totals)
    by_model: dict[str, _Totals] = field(default_factory=dict)
    last_day: str = ""

    def entry(self) -> dict[str, Any]:
        breakdowns = sorted(self.by_model.items(), key=lambda kv: (-kv[1].cost, kv[0]))
        return {
            **self.totals.summary(),
            "modelsUsed": sorted(self.by_model),
            "modelBreakdowns": [
                {"modelName": name, **t.tokens(), "cost": t.cost} for name, t in breakdowns
            ],
        }


def daily(
    ch: ClickHouse, *, since: date | None = None, until: date | None = None, tz: str = "UTC"
) -> dict[str, Any]:
    """``{"daily": [{"date": "YYYY-MM-DD", …}], "totals": {…}}``, oldest day first."""
    key = f"toString(toDate(timestamp, {_zone(tz)}))"
    groups, totals = _grouped(ch, [key], since, until, tz)
    rows = [{"date": k[0], **g.entry()} for k, g in sorted(groups.items())]
    return {"daily": rows, "totals": totals.summary()}


def monthly(
    ch: ClickHouse, *, since: date | None = None, until: date | None = None, tz: str = "UTC"
) -> dict[str, Any]:
    """``{"monthly": [{"month": "YYYY-MM", …}], "totals": {…}}``, oldest month first."""
    key = f"formatDateTime(timestamp, '%Y-%m', {_zone(tz)})"
    groups, totals = _grouped(ch, [key], since, until, tz)
    rows = [{"month": k[0], **g.entry()} for k, g in sorted(groups.items())]
    return {"monthly": rows, "totals": totals.summary()}


def session(
    ch: ClickHouse, *, since: date | None = None, until: date | None = None, tz: str = "UTC"
) -> dict[str, Any]:
    """``{"sessions": [{"sessionId", "projectPath", …, "lastActivity": "YYYY-MM-DD"}], …}``.

    Most recent session first (ties by project, then session id).
    """
    groups, totals = _grouped(ch, ["toString(project)", "session_id"], since, until, tz)
    ordered = sorted(groups.items(), key=lambda kv: (kv[1].last_day, kv[0]), reverse=True)
    rows = [
        {"sessionId": k[1], "projectPath": k[0], **g.entry(), "lastActivity": g.last_day}
        for k, g in ordered
    ]
    return {"sessions": rows, "totals": totals.summary()}


def models(
    ch: ClickHouse, *, since: date | None = None, until: date | None = None, tz: str = "UTC"
) -> dict[str, Any]:
    """``{"models": [{"modelName", …tokens, "totalTokens", "cost"}], "totals": {…}}``.

    Costliest model first.
    """
    groups, totals = _grouped(ch, [], since, until, tz)
    per_model = groups[()].by_model if groups else {}
    ordered = sorted(per_model.items(), key=lambda kv: (-kv[1].cost, kv[0]))
    rows = []
    for name, t in ordered:
        summary = t.summary()
        rows.append(
            {"modelName": name, **t.tokens(), "totalTokens": summary["totalTokens"], "cost": t.cost}
        )
    return {"models": rows, "totals": totals.summary()}


def _zone(tz: str) -> str:
    """``tz`` as a SQL string literal, after checking it names a real zone."""
    try:
        ZoneInfo(tz)
    except (ValueError, KeyError) as e:
        raise ConfigError(f"unknown time zone {tz!r}") from e
    if not _ZONE.fullmatch(tz):
        raise ConfigError(f"unknown time zone {tz!r}")
    return f"'{tz}'"


def _grouped(
    ch: ClickHouse, keys: list[str], since: date | None, until: date | None, tz: str
) -> tuple[dict[tuple[str, ...], _Group], _Totals]:
    zone = _zone(tz)
    conditions = ["1"]
    if since is not None:
        conditions.append(f"toDate(timestamp, {zone}) >= toDate('{since.isoformat()}')")
    if until is not None:
        conditions.append(f"toDate(timestamp, {zone}) <= toDate('{until.isoformat()}')")
    key_list = "".join(f"{k}, " for k in keys)
    sql = (
        f"SELECT {key_list}toString(model), sum(input_tokens), sum(output_tokens), "
        "sum(cache_creation_tokens), sum(cache_read_tokens), sum(cost_usd), "
        f"toString(toDate(max(timestamp), {zone})) "
        f"FROM usage_dedup WHERE {' AND '.join(conditions)} "
        f"GROUP BY {key_list}model"
    )
    groups: dict[tuple[str, ...], _Group] = {}
    totals = _Totals()
    for row in ch.query(sql):
        key = tuple(str(v) for v in row[: len(keys)])
        model, i, o, cc, cr, cost, last_day = row[len(keys) :]
        t = _Totals(int(i), int(o), int(cc), int(cr), Decimal(cost))
        group = groups.setdefault(key, _Group())
        group.totals.add(t)
        group.last_day = max(group.last_day, str(last_day))
        totals.add(t)
        if model and model != SYNTHETIC_MODEL:
            group.by_model.setdefault(str(model), _Totals()).add(t)
    return groups, totals
