"""The worker's side of budget alerts: the Faust table of window totals, and the alerts it
yields as ``events`` rows. Thin: the rules are ``ingestor/alerts/``.

The alerts are stored directly, in the same ClickHouse batch as the records whose spend crossed
the limit, rather than produced to the events topic: the batch is acked only once ClickHouse
holds it, so an alert is never behind the records that caused it, the worker does not consume its
own output, and a crash before the insert re-delivers the records, which re-emit the alert (same
id; ``alerts/windows.py``). It lands in ``events`` like any event: the views and reports see it.

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
    events_spends,
    transcript_spends,
)
from ingestor.errors import Location
from ingestor.models import validate_event
from ingestor.sink.rows import event_rows
from ingestor.usage.prices import price_table
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
        """Returns the alert rows added (re-emissions included; the sink drops stored ids)."""
        if kind == "transcript":
            spends = transcript_spends(processed.adds, processed.retracts, processed.project)
        elif kind == "event":
            spends = events_spends(processed.rows.get("events", ()), price_table(), self._seen)
        else:
            return 0
        if not spends or where.offset is None:
            return 0
        updates, alerts = apply_spends(
            self.table.get,
            self.budgets,
            spends,
            source=f"{where.topic}:{where.partition}",
            offset=where.offset,
        )
        for key, window in updates.items():
            self.table[key] = window.encode()
        for alert in alerts:
            for table, rows in event_rows(validate_event(alert)).items():
                processed.rows.setdefault(table, []).extend(rows)
        self._newest_ms = max(self._newest_ms, *(s.timestamp_ms for s in spends))
        self._envelopes += 1
        if self._envelopes % _SWEEP_EVERY == 0:
            self._sweep()
        return len(alerts)

    def _sweep(self) -> None:
        horizon = self._newest_ms - KEEP_MS
        old = [
            key
            for key, raw in list(self.table.items())
            if raw is not None and WindowTotal.decode(raw).end_ms < horizon
        ]
        for key in old:
            del self.table[key]
