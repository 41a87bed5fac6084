"""The worker's side of budget alerts: the Faust table of window totals, and the alerts it
yields as ``events`` rows. Thin: the rules are ``ingestor/alerts/``.

The alerts are stored directly, rather than produced to the events topic, so the worker does
not consume its own output: an event's alert in the same ClickHouse batch as the event (a crash
before the insert re-delivers the events, which re-emit the alert, same id:
``alerts/windows.py``); a transcript's once its lines' changes to what counts are stored (the
spend is known only then, ``clickhouse/winners.py``), before the batch is acked. It lands in
``events`` like any event: the views and reports see it.

The table's changelog is partitioned by key (``use_partitioner``), not by the source partition:
one user's or project's window is fed from several partitions, and a key must recover from one
changelog partition. Exact with one worker (the embedded stack); with several, each worker sums
the share of a user's or project's spend on the partitions it holds (a session's transcripts live
in one partition, its events in one). Windows more than ``KEEP_MS`` older than the newest spend
seen are dropped from the table; late spend for them starts a fresh window, whose alert, if any,
has the id of the old one, so it cannot alert twice.
"""

from __future__ import annotations

from typing import Any

from ingestor.alerts.budgets import Budget
from ingestor.alerts.windows import (
    KEEP_MS,
    RecentIds,
    WindowTotal,
    apply_spends,
    change_spends,
    events_spends,
)
from ingestor.errors import Location
from ingestor.models import validate_event
from ingestor.rows.records import event_rows
from ingestor.usage.prices import price_table
from ingestor.usage.winners import CountedChange
from ingestor.wire import Kind
from ingestor.worker.process import Processed

__all__ = ["BudgetTable", "budget_table"]

_SWEEP_EVERY = 1000  # envelopes between sweeps of old windows


def budget_table(app: Any, partitions: int) -> Any:
    """The Faust table of window totals (raw bytes, as ``WindowTotal.encode``)."""
    return app.Table(
        "budgets",
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=partitions,
        use_partitioner=True,
    )


class BudgetTable:
    """Applies each envelope's spend to the table and adds the alerts to its rows. Called from
    the agents (Faust tables are written inside a stream only)."""

    def __init__(self, table: Any, budgets: tuple[Budget, ...]) -> None:
        self.table = table
        self.budgets = budgets
        self._newest_ms = 0
        self._seen = RecentIds()
        self._envelopes = 0

    def apply(self, kind: Kind, processed: Processed, where: Location) -> int:
        """An event envelope's spend: returns the alert rows added to ``processed``
        (re-emissions included; the sink drops stored ids). Transcripts: ``apply_changes``."""
        if kind != "event" or where.offset is None:
            return 0
        spends = events_spends(processed.rows.get("events", ()), price_table(), self._seen)
        alerts = self._apply(spends, f"{where.topic}:{where.partition}", where.offset)
        for table, rows in alerts.items():
            processed.rows.setdefault(table, []).extend(rows)
        return len(alerts.get("events", ()))

    def apply_changes(
        self, changes: list[CountedChange], source: str, offset: int
    ) -> dict[str, list[dict[str, Any]]]:
        """Stored changes to what counts (from the batch ``source`` up to ``offset``): the alert
        rows to store."""
        return self._apply(change_spends(changes), source, offset)

    def _apply(self, spends: list[Any], source: str, offset: int) -> dict[str, list[Any]]:
        if not spends:
            return {}
        updates, alerts = apply_spends(
            self.table.get, self.budgets, spends, source=source, offset=offset
        )
        for key, window in updates.items():
            self.table[key] = window.encode()
        out: dict[str, list[Any]] = {}
        for alert in alerts:
            for table, rows in event_rows(validate_event(alert)).items():
                out.setdefault(table, []).extend(rows)
        self._newest_ms = max(self._newest_ms, *(s.timestamp_ms for s in spends))
        self._envelopes += 1
        if self._envelopes % _SWEEP_EVERY == 0:
            self._sweep()
        return out

    def _sweep(self) -> None:
        horizon = self._newest_ms - KEEP_MS
        old = [
            key
            for key, raw in list(self.table.items())
            if raw is not None and WindowTotal.decode(raw).end_ms < horizon
        ]
        for key in old:
            del self.table[key]
