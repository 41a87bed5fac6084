"""Stored changes to what counts (``CountedChange``, from ``clickhouse/winners.py``) applied to the
worker's Faust tables: the sessions they belong to, and their spend to the budget windows.

Called with a batch's changes once ClickHouse confirmed them, from the insert's task
(``flusher.py``) or a replayed chunk's request (``replay_view.py``), outside any stream
iteration; the caller flushes the tables' changelog before it acks anything.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from ingestor.rows.columns import Rows
from ingestor.usage.winners import CountedChange
from ingestor.worker.sessions import SessionAgg, by_session
from ingestor.worker.state import Source, WorkerState

__all__ = ["apply_changes", "budget_alerts"]


def apply_changes(state: WorkerState, changes: list[CountedChange]) -> None:
    """Apply a stored batch's changes to what counts to their sessions (in the Faust table,
    whose changelog partition is the session's scope's input partition)."""
    sessions = state.sessions
    for session_id, (project, session_changes) in by_session(changes).items():
        source = state.scopes.get(session_changes[0].dedup_scope)
        if source is None:  # not met since the rebalance: reconciled when it is
            continue
        key = session_id.encode()
        raw = sessions.get(key)
        agg = SessionAgg.decode(raw) if raw is not None else SessionAgg(session_id, project)
        agg.apply(session_changes)
        with _as_current(source):
            sessions[key] = agg.encode()
        state.dirty[key] = agg
    counted = sum(c.sign > 0 for c in changes)
    state.counts["counted"] += counted
    state.counts["retracted"] += len(changes) - counted


@contextmanager
def _as_current(source: Source) -> Iterator[None]:
    """``source`` as Faust's current event meanwhile: a table write takes its changelog partition
    from it (``Table.partition_for_key``), and changes are applied outside any stream
    iteration."""
    from faust.streams import _current_event

    token = _current_event.set(weakref.ref(cast(Any, source)))
    try:
        yield
    finally:
        _current_event.reset(token)


def budget_alerts(
    state: WorkerState, changes: list[CountedChange], held: list[Any], sources: dict[str, Source]
) -> dict[str, Rows]:
    """Apply the changes' spend to the budget windows (as from the batch's last transcript
    offset of their scope's partition); the alert rows to store."""
    if state.alerting is None:
        return {}
    last: dict[tuple[str, int], int] = {}
    for _, event in held:
        message = event.message
        last[(message.topic, message.partition)] = message.offset
    alerts: dict[str, Rows] = {}
    by_scope: dict[str, list[CountedChange]] = {}
    for change in changes:
        by_scope.setdefault(change.dedup_scope, []).append(change)
    for scope, scoped in by_scope.items():
        source = sources.get(scope)
        offset = None if source is None else last.get((source.topic, source.partition))
        if source is None or offset is None:
            continue
        found = state.alerting.apply_changes(scoped, f"{source.topic}:{source.partition}", offset)
        for table, rows in found.items():
            alerts.setdefault(table, []).extend(rows)
    state.counts["alerts"] += len(alerts.get("events", ()))
    return alerts
