"""Meeting a dedup scope: its sessions reconciled with ClickHouse, the first time a worker sees
it after a start or a rebalance (ARCHITECTURE.md, "The Faust tables follow ClickHouse's
winners")."""

from __future__ import annotations

import asyncio
import time

import faust

from ingestor.worker.flusher import flush
from ingestor.worker.restore import session_seeds
from ingestor.worker.sessions import SessionAgg, reconciled
from ingestor.worker.state import Source, WorkerState

__all__ = ["meet_scope"]


async def meet_scope(state: WorkerState, app: faust.App, scope: str, source: Source) -> None:
    """The first envelope of ``scope`` since the start or a rebalance: reconcile its sessions
    with ClickHouse (a change stored by a worker that died before its changelog write is in
    ClickHouse only), and rewrite all their summary rows (one that died before writing them
    left them behind). Nothing of the scope is in flight meanwhile: its changes are applied only
    after a store, and the insert in flight is waited for first. Then the scope is met, from
    ``source`` (its input partition: where its sessions' changelog goes)."""
    await flush(state, app, wait=True)
    truth = await asyncio.to_thread(session_seeds, state.ch, scope, lambda: _progressed(state))
    sessions = state.sessions
    for _, agg in truth:
        key = agg.session_id.encode()
        raw = sessions.get(key)
        value = reconciled(SessionAgg.decode(raw) if raw is not None else None, agg)
        if value is not None:
            sessions[key] = value.encode()  # the current event: this scope's partition
        state.dirty[key] = value or agg
    state.scopes[scope] = source


def _progressed(state: WorkerState) -> None:
    # A restore over a long history is progress: the watchdog restarted a worker whose restore
    # took over 30 s (2.5M lines on a loaded machine) before it ended, again and again.
    state.last_progress = time.monotonic()
