"""Budget windows: spend in, window totals and alerts out. Pure: no broker, no ClickHouse, no Faust.

**Windows.** Tumbling, by event time: a spend at ``t`` belongs to the window starting at
``t - t % size`` (UTC hours, UTC days). A window's total is kept under a key naming the budget,
the subject and the window's start; the worker keeps these values in a Faust table.

**One alert per crossing per window.** A window alerts the first time its total goes above the
limit. Its alert is a ``cost_threshold_exceeded`` event whose id is derived from the budget, the
subject and the window start (``alert_id``), so any second emission of it, after a replay, a
re-processing with a fresh consumer group, a restart that lost the table, is the same event id,
which the sink drops (``clickhouse/write.py``: ids the ``events`` table holds are not inserted
again).
A window alerts at most once even if a retraction takes it below its limit and it rises again.

**Exact totals under re-delivery.** The Faust table is at-least-once: its changelog can be ahead
of the committed offsets, so a crash re-delivers envelopes whose spend a value already holds.
Every value remembers the last offset applied from each source partition (a window may be fed
from several: a user's events and transcripts) and skips an envelope at or below it. A skipped
envelope re-emits the window's alert when it has one: the crash may have come after the table
remembered the crossing and before ClickHouse stored the alert; a stored one is dropped by id.

**What counts.** Events: the cost their producer sent, else their tokens priced from the price
file (the reports price them at query time; this is the same price, taken now), once per event
id: a producer's retry that the broker had stored arrives again at a new offset, which the offset
guard cannot tell from new spend, so the worker remembers the most recent ids (``RecentIds``).
Transcripts: the
counted lines only, as ClickHouse's winners change (``clickhouse/winners.py``: a line that starts
counting adds, one that loses to a later copy is taken back from its window), at the cost
``--mode auto`` reports, applied once those changes are stored. Alerts themselves count for
nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from ingestor.alerts.budgets import Budget
from ingestor.producer.discover import project_of
from ingestor.usage.paths import session_parts
from ingestor.usage.prices import PriceTable, line_cost
from ingestor.usage.winners import CountedChange

__all__ = [
    "ALERT_TYPE",
    "KEEP_MS",
    "RecentIds",
    "Spend",
    "WindowTotal",
    "alert_id",
    "apply_spends",
    "seed_windows",
    "events_spends",
    "change_spends",
    "window_key",
    "window_start",
]

ALERT_TYPE = "cost_threshold_exceeded"
KEEP_MS = 3 * 86_400_000  # windows this much older than the newest spend are let go
_NAMESPACE = uuid.UUID("5b2f0c8e-6f0e-4a53-9d0e-1c6a3b1f7a10")  # ours; fixed forever
_ZERO = Decimal(0)
Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Spend:
    """Cost at an instant, and whom it is charged to (empty: no such subject)."""

    timestamp_ms: int
    cost: Decimal  # negative for a retracted transcript line
    project: str = ""
    user: str = ""
    session: str = ""

    def subject(self, scope: str) -> str:
        return str(getattr(self, scope))


class RecentIds:
    """The last ``size`` event ids seen; ``first`` says whether an id is new (and remembers it).

    Producer retries arrive within seconds of the original, so a bounded memory catches them.
    A retry whose original was handled before a restart is counted again (a known limit)."""

    def __init__(self, size: int = 200_000) -> None:
        self._size = size
        self._ids: dict[str, None] = {}  # insertion-ordered: the oldest first

    def first(self, event_id: str) -> bool:
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._size:
            del self._ids[next(iter(self._ids))]
        return True


def events_spends(
    rows: Iterable[Row], prices: PriceTable, seen: RecentIds | None = None
) -> list[Spend]:
    """The spend of ``events`` rows (``rows.records.event_rows``), alerts and ids ``seen`` before
    left out."""
    out = []
    for row in rows:
        if row["event_type"] == ALERT_TYPE or (
            seen is not None and not seen.first(row["event_id"])
        ):
            continue
        cost = row["cost_usd"] if row["cost_provided"] else _priced(row, prices)
        if not cost:
            continue
        out.append(
            Spend(
                _ms(row["timestamp"]),
                cost,
                project=row["project_id"],
                user=row["user_id"],
                session=row["session_id"],
            )
        )
    return out


def _priced(row: Row, prices: PriceTable) -> Decimal:
    cost = line_cost(
        prices, row["model"], input_tokens=row["tokens_input"], output_tokens=row["tokens_output"],
        cache_write_5m=row["tokens_cache_write"], cache_write_1h=0,
        cache_read=row["tokens_cache_read"], fast=False,
    )  # fmt: skip
    return _ZERO if cost is None else cost


def change_spends(changes: Iterable[CountedChange]) -> list[Spend]:
    """The spend of stored changes to what counts (``usage.winners.CountedChange``): a line that
    starts counting adds its cost, one that stops takes it back. Transcripts name no user: they
    count toward session and project budgets (the file's, as the watcher names them)."""
    return [
        Spend(
            c.timestamp_ms,
            c.sign * c.cost,
            project=project_of(c.source_file),
            session=session_parts(c.source_file)[0],
        )
        for c in changes
        if c.cost
    ]


@dataclass(slots=True)
class WindowTotal:
    """One window of one budget and subject: the value kept in the Faust table."""

    total: Decimal = _ZERO
    end_ms: int = 0
    applied: dict[str, int] = field(default_factory=dict)  # source partition -> last offset
    alert: dict[str, Any] | None = None  # the alert event, once the window crossed its limit

    def encode(self) -> bytes:
        return orjson.dumps(
            {"t": str(self.total), "e": self.end_ms, "o": self.applied, "a": self.alert}
        )

    @classmethod
    def decode(cls, raw: bytes) -> WindowTotal:
        d = orjson.loads(raw)
        return cls(Decimal(d["t"]), int(d["e"]), dict(d["o"]), d["a"])


def window_start(timestamp_ms: int, budget: Budget) -> int:
    return timestamp_ms - timestamp_ms % budget.window_ms


def window_key(budget: Budget, subject: str, start_ms: int) -> bytes:
    return f"{budget.key}|{subject}|{start_ms}".encode()


def alert_id(budget: Budget, subject: str, start_ms: int) -> str:
    """The alert's event id: the same for the same budget, subject and window, wherever and
    however often it is computed."""
    return str(uuid.uuid5(_NAMESPACE, window_key(budget, subject, start_ms).decode()))


def apply_spends(
    get: Callable[[bytes], bytes | None],
    budgets: Sequence[Budget],
    spends: Sequence[Spend],
    *,
    source: str,
    offset: int,
) -> tuple[dict[bytes, WindowTotal], list[dict[str, Any]]]:
    """Apply one envelope's spends (from ``source`` at ``offset``) to their windows.

    ``get`` reads a window's stored value. Returns the windows to store and the alert events to
    store (``models.CostThresholdExceeded`` dicts): new crossings, and the alerts of windows this
    envelope had already been applied to (a re-delivery; see the module docstring).
    """
    by_window: dict[bytes, tuple[Budget, str, int, list[Spend]]] = {}
    for key, budget, subject, start, spend in _windows_of(budgets, spends):
        by_window.setdefault(key, (budget, subject, start, []))[3].append(spend)
    updates: dict[bytes, WindowTotal] = {}
    alerts: list[dict[str, Any]] = []
    for key, (budget, subject, start, window_spends) in by_window.items():
        raw = get(key)
        window = WindowTotal(end_ms=start + budget.window_ms) if raw is None else (
            WindowTotal.decode(raw)
        )  # fmt: skip
        if window.applied.get(source, -1) >= offset:
            if window.alert is not None:
                alerts.append(window.alert)
            continue
        for spend in window_spends:
            window.total += spend.cost
            if window.alert is None and window.total > budget.limit_usd:
                window.alert = _alert(budget, subject, start, spend, window.total)
                alerts.append(window.alert)
        window.applied[source] = offset
        updates[key] = window
    return updates, alerts


def seed_windows(budgets: Sequence[Budget], spends: Iterable[Spend]) -> dict[bytes, WindowTotal]:
    """Windows rebuilt from what ClickHouse holds (``spends``: one per stored sum, any grouping
    finer than subject and window), for a table whose changelog is gone. They remember no offset
    (the broker is new); a window already above its limit carries its alert, which keeps it from
    alerting again (its id is the stored alert's)."""
    out: dict[bytes, WindowTotal] = {}
    meta: dict[bytes, tuple[Budget, str, int, Spend]] = {}  # the newest spend of each window
    for key, budget, subject, start, spend in _windows_of(budgets, spends):
        window = out.setdefault(key, WindowTotal(end_ms=start + budget.window_ms))
        window.total += spend.cost
        newest = meta.get(key)
        if newest is None or spend.timestamp_ms >= newest[3].timestamp_ms:
            meta[key] = (budget, subject, start, spend)
    for key, window in out.items():
        budget, subject, start, spend = meta[key]
        if window.total > budget.limit_usd:
            window.alert = _alert(budget, subject, start, spend, window.total)
    return out


def _alert(
    budget: Budget, subject: str, start_ms: int, crossing: Spend, total: Decimal
) -> dict[str, Any]:
    """The ``cost_threshold_exceeded`` event of a window that went above its limit, at the
    instant of the spend that took it there, charged to nothing (its cost is 0)."""
    return {
        "event_type": ALERT_TYPE,
        "event_id": alert_id(budget, subject, start_ms),
        "project_id": crossing.project or "-",
        "timestamp": _iso(crossing.timestamp_ms),
        "user_id": crossing.user or None,
        "session_id": crossing.session or None,
        "cost_usd": "0",
        "tags": ["budget"],
        "threshold_usd": str(budget.limit_usd),
        "actual_usd": str(total),
        "window": budget.window,
        "budget": budget.key,
        "scope": budget.scope,
        "subject": subject,
        "window_start": _iso(start_ms),
    }


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(milliseconds=1)  # exact, unlike a float timestamp


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _windows_of(
    budgets: Sequence[Budget], spends: Iterable[Spend]
) -> Iterator[tuple[bytes, Budget, str, int, Spend]]:
    """Each spend under each budget that applies to it: (window key, budget, subject, window
    start, spend)."""
    for spend in spends:
        for budget in budgets:
            subject = spend.subject(budget.scope)
            if budget.applies_to(subject):
                start = window_start(spend.timestamp_ms, budget)
                yield window_key(budget, subject, start), budget, subject, start, spend
