"""Per-session token aggregates: the value kept in the Faust ``sessions`` table. Pure.

A session follows the winners ClickHouse keeps (``clickhouse/winners.py``): every line that starts
or stops counting there (a ``CountedChange``, +1 or -1) is applied to its session once that change
is stored. So the worker holds no dedup state of the history, and a session equals what the
reports read. A change is applied once: a re-delivered batch finds its groups decided and
changes nothing. A worker that dies after storing a change and before its session's changelog
write misses it; that is why a scope's sessions are reconciled with ClickHouse the first time
the worker meets the scope (``reconciled``, ``restore.session_seeds``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from ingestor.producer.discover import project_of
from ingestor.usage.paths import session_parts
from ingestor.usage.winners import CountedChange

__all__ = ["SYNTHETIC_MODEL", "ModelTotals", "SessionAgg", "by_session", "reconciled"]

SYNTHETIC_MODEL = "<synthetic>"


def by_session(changes: Iterable[CountedChange]) -> dict[str, tuple[str, list[CountedChange]]]:
    """``changes`` by the session they belong to: session id -> (project, its changes). The
    session and project are the file's, as the watcher named them (``rows/records.py``)."""
    out: dict[str, tuple[str, list[CountedChange]]] = {}
    for change in changes:
        file = change.source_file
        session = session_parts(file)[0]
        entry = out.get(session)
        if entry is None:
            entry = out[session] = (project_of(file), [])
        entry[1].append(change)
    return out


@dataclass(slots=True)
class ModelTotals:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    cost: Decimal = Decimal(0)
    messages: int = 0

    def add(self, c: CountedChange, sign: int) -> None:
        self.input_tokens += sign * c.input_tokens
        self.output_tokens += sign * c.output_tokens
        self.cache_creation_tokens += sign * c.cache_creation_tokens
        self.cache_read_tokens += sign * c.cache_read_tokens
        self.cost += sign * c.cost
        self.messages += sign

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_tokens
            + self.cache_read_tokens
        )

    def as_list(self) -> list[Any]:
        return [
            self.input_tokens,
            self.output_tokens,
            self.cache_creation_tokens,
            self.cache_read_tokens,
            str(self.cost),
            self.messages,
        ]

    @classmethod
    def from_list(cls, raw: list[Any]) -> ModelTotals:
        i, o, cc, cr, cost, messages = raw
        return cls(i, o, cc, cr, Decimal(cost), messages)


@dataclass(slots=True)
class SessionAgg:
    """Exact usage of one session under the dedup rule."""

    session_id: str
    project: str
    totals: ModelTotals = field(default_factory=ModelTotals)
    models: dict[str, ModelTotals] = field(default_factory=dict)
    tool_uses: dict[str, int] = field(default_factory=dict)
    first_activity_ms: int | None = None
    last_activity_ms: int | None = None
    revision: int = 0  # bumps on every change applied

    def apply(self, changes: Iterable[CountedChange]) -> None:
        """Apply stored changes to ``counted_usage`` (each once: see the module docstring)."""
        for c in changes:
            self._apply(c, c.sign)
        self.revision += 1

    def _apply(self, c: CountedChange, sign: int) -> None:
        self.totals.add(c, sign)
        if c.model != SYNTHETIC_MODEL:
            per_model = self.models.get(c.model)
            if per_model is None:
                per_model = self.models[c.model] = ModelTotals()
            per_model.add(c, sign)
            if per_model.messages == 0:
                del self.models[c.model]
        for name in c.tool_uses:
            count = self.tool_uses.get(name, 0) + sign
            if count:
                self.tool_uses[name] = count
            else:
                self.tool_uses.pop(name, None)
        if sign > 0:
            # First/last activity only move outwards; a superseded streaming copy of a message
            # has (nearly) the same timestamp as its successor, so nothing is lost by that.
            ts = c.timestamp_ms
            if self.first_activity_ms is None or ts < self.first_activity_ms:
                self.first_activity_ms = ts
            if self.last_activity_ms is None or ts > self.last_activity_ms:
                self.last_activity_ms = ts

    # ------------------------------------------------------------------ (de)serialisation

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "s": self.session_id,
                "p": self.project,
                "t": self.totals.as_list(),
                "m": {name: totals.as_list() for name, totals in self.models.items()},
                "u": self.tool_uses,
                "f": self.first_activity_ms,
                "l": self.last_activity_ms,
                "r": self.revision,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> SessionAgg:
        d = orjson.loads(raw)
        return cls(
            session_id=d["s"],
            project=d["p"],
            totals=ModelTotals.from_list(d["t"]),
            models={name: ModelTotals.from_list(v) for name, v in d["m"].items()},
            tool_uses=dict(d["u"]),
            first_activity_ms=d["f"],
            last_activity_ms=d["l"],
            revision=d["r"],
        )

    def summary_row(self, version: int) -> dict[str, Any]:
        """The ``session_summaries`` row (seed 000); the highest ``version`` wins."""
        t = self.totals
        return {
            "session_id": self.session_id,
            "project": self.project,
            "input_tokens": t.input_tokens,
            "output_tokens": t.output_tokens,
            "cache_creation_tokens": t.cache_creation_tokens,
            "cache_read_tokens": t.cache_read_tokens,
            "total_tokens": t.total_tokens,
            "messages": t.messages,
            "cost_usd": t.cost,
            "models": {name: m.total_tokens for name, m in self.models.items()},
            "tool_uses": dict(self.tool_uses),
            "message_types": {"assistant": t.messages},
            "first_activity": _utc(self.first_activity_ms),
            "last_activity": _utc(self.last_activity_ms),
            "version": version,
        }

    def as_json(self) -> dict[str, Any]:
        """The shape served over HTTP (close to ccusage's session report)."""
        t = self.totals
        return {
            "sessionId": self.session_id,
            "projectPath": self.project,
            "inputTokens": t.input_tokens,
            "outputTokens": t.output_tokens,
            "cacheCreationTokens": t.cache_creation_tokens,
            "cacheReadTokens": t.cache_read_tokens,
            "totalTokens": t.total_tokens,
            "totalCost": t.cost,
            "messages": t.messages,
            "firstActivity": _iso(self.first_activity_ms),
            "lastActivity": _iso(self.last_activity_ms),
            "modelsUsed": sorted(self.models),
            "modelBreakdowns": [
                {
                    "modelName": name,
                    "inputTokens": m.input_tokens,
                    "outputTokens": m.output_tokens,
                    "cacheCreationTokens": m.cache_creation_tokens,
                    "cacheReadTokens": m.cache_read_tokens,
                    "cost": m.cost,
                    "messages": m.messages,
                }
                for name, m in sorted(self.models.items(), key=lambda kv: -kv[1].cost)
            ],
            "toolUses": dict(sorted(self.tool_uses.items())),
        }


def _utc(ms: int | None) -> datetime:
    return datetime.fromtimestamp((ms or 0) / 1000, tz=UTC)


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def reconciled(current: SessionAgg | None, truth: SessionAgg) -> SessionAgg | None:
    """The value to store so that a session agrees with ClickHouse (``truth``: its stored lines'
    aggregates), or None when it already does.

    The table recovered from its changelog is behind ClickHouse when a worker died between
    storing a change and writing its session's changelog (or the broker lost the changelog).
    The worker calls this the first time it meets a scope, before any change of that scope is
    applied; from then on every stored change is applied as it is stored.
    """
    if current is not None and (
        current.project,
        current.totals,
        current.models,
        current.tool_uses,
        current.first_activity_ms,
        current.last_activity_ms,
    ) == (
        truth.project,
        truth.totals,
        truth.models,
        truth.tool_uses,
        truth.first_activity_ms,
        truth.last_activity_ms,
    ):
        return None
    revision = max(truth.revision, current.revision + 1 if current is not None else 0)
    return replace(truth, revision=revision)
