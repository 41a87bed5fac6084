"""The flusher: one insert in flight while the next batch is built, and the acks after the store.

``flush`` hands the batch to a task that stores it in a thread; a batch's events are acked only
once ClickHouse confirmed its rows, so Faust commits only offsets whose rows are durable. A batch
that cannot be stored after its retries ends the process hard (``os._exit``) so that the
uncommitted events are delivered again — never acked and lost.

Sessions and transcript budgets follow what ClickHouse decides counts: the lines a stored batch
made start or stop counting (``clickhouse/winners.py``) are applied to the Faust tables, and the
changed sessions' summary rows stored, before the batch is acked.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import faust

from ingestor.clickhouse.disk import write_with_room
from ingestor.clickhouse.write import LINES_TABLE, BatchLines, batch_lines, write_batch
from ingestor.rows.columns import Rows
from ingestor.usage.winners import CountedChange
from ingestor.worker.exits import EXIT_STORAGE_FAILED
from ingestor.worker.follow import apply_changes, budget_alerts
from ingestor.worker.process import RECORD_TABLES
from ingestor.worker.restart import reset_restarts
from ingestor.worker.state import Source, WorkerState

__all__ = ["busy", "flush", "rested", "store_held"]

log = logging.getLogger(__name__)


def busy(state: WorkerState) -> bool:
    """An insert is in flight, or a flush holds the lock to start one: a flush called then
    would wait for that whole insert (the agent stalled ~0.5 s on each such race)."""
    return state.lock.locked() or (state.inflight is not None and not state.inflight.done())


def rested(state: WorkerState) -> bool:
    """The insert thread has rested ``batch_rest_ratio`` times as long as the last store took
    (``Batch.ready``: before that, a batch waits for the age bound or the size limits). A rest
    leaves the stream the CPU between stores, at the cost of the latency: ``settings.py`` has the
    figures."""
    return time.monotonic() - state.stored_at >= state.insert_s * state.settings.batch_rest_ratio


async def flush(state: WorkerState, app: faust.App, *, wait: bool = False) -> None:
    """Start storing the batch; its events are acked once ClickHouse confirmed it.

    At most one insert is in flight: it overlaps with stream processing, and a second flush first
    waits for it (back-pressure). ``wait`` also waits for the insert just started (rebalances).
    """
    async with state.lock:
        prepared = None
        if state.inflight is not None:
            if not state.inflight.done():
                prepared = await _prepare(state)
            await state.inflight
        if state.held or state.batch.size or state.dirty:
            # Changelog writes and dead letters first: ClickHouse must never be ahead of them.
            await app.producer.flush()
            rows = state.batch.take()
            lines = prepared.built if prepared and prepared.of(rows.get(LINES_TABLE)) else None
            held, state.held = state.held, []
            sources = dict(state.scopes)  # where this batch's changes go
            rows.update(_owed_summaries(state))
            state.flushes += 1
            state.inflight_rows = sum(len(r) for r in rows.values())
            state.inflight_messages = len(held)
            token = f"{state.run_id}:{state.flushes}"
            state.inflight = asyncio.create_task(
                _store(state, app, rows, held, token, sources, lines)
            )
        if wait and state.inflight is not None:
            await state.inflight


async def store_held(app: faust.App) -> None:
    """Store everything the agents hold and ack it (before a stop)."""
    await flush(app.ingestor_state, app, wait=True)  # type: ignore[attr-defined]


async def _store(
    state: WorkerState,
    app: faust.App,
    rows: dict[str, Rows],
    held: list[Any],
    token: str,
    sources: dict[str, Source],
    lines: BatchLines | None = None,
) -> None:
    metrics = state.metrics
    changes: list[CountedChange] = []

    def write(
        rows: dict[str, Rows] = rows, token: str = token, lines: BatchLines | None = lines
    ) -> int:
        def store() -> int:
            started = time.perf_counter()  # the insert's time, not the wait for disk room
            stored = write_batch(
                state.ch,
                rows,
                token=token,
                retries=state.settings.insert_retries,
                backoff_s=state.settings.insert_backoff_s,
                on_retry=metrics.retries.inc,
                positions=state.positions,
                changes=changes,
                lines=lines,
            )
            metrics.stored(rows, time.perf_counter() - started)
            return stored

        return write_with_room(state.ch, state.settings.disk_reserve_mb, store)

    started = time.monotonic()
    try:
        stored = await asyncio.to_thread(write)
    except Exception:
        # Faust would commit the held offsets on a clean stop: exit hard so they are re-delivered.
        log.critical(
            "ClickHouse insert failed after retries; exiting for re-delivery", exc_info=True
        )
        os._exit(EXIT_STORAGE_FAILED)
    if changes:
        apply_changes(state, changes)
        # The alerts, and the summary rows of the sessions changed, before the ack: a worker
        # that died after acking a batch whose summaries were still owed left no message whose
        # re-delivery makes the next worker reconcile the scope (the failover test: a survivor
        # that took over when every line was stored never wrote them).
        after = {**budget_alerts(state, changes, held, sources), **_owed_summaries(state)}
        try:
            if after:
                await asyncio.to_thread(write, after, f"{token}:after", None)
            # The tables' changelog before the ack: a committed batch's changes are in it.
            await app.producer.flush()
        except Exception:
            log.critical(
                "could not store the batch's alerts and session summaries or write the tables' "
                "changelog; exiting for re-delivery",
                exc_info=True,
            )
            os._exit(EXIT_STORAGE_FAILED)
    state.stored_at = time.monotonic()
    state.insert_s = state.stored_at - started
    state.counts["rows_stored"] += stored  # every table's rows, positions and summaries too
    # What a person counts: input records (transcript lines, events, ledger entries) now in
    # ClickHouse, and dead letters.
    state.counts["records_stored"] += sum(len(rows.get(t, ())) for t in RECORD_TABLES)
    state.counts["dead_letters_stored"] += len(rows.get("dead_letters", ()))
    for stream, event in held:
        await stream.ack(event)
    if held:
        reset_restarts()  # progress: in-place restarts count anew
    state.inflight_rows = state.inflight_messages = 0
    rows.clear()  # this store's own: free the batch now, so that a trim can hand it back
    held.clear()
    state.trimmer.after_store()


@dataclass(frozen=True)
class _Prepared:
    """A batch's ``transcript_lines`` built (``batch_lines``) while the insert before it ran."""

    lines: Rows
    count: int
    built: BatchLines

    def of(self, lines: Rows | None) -> bool:
        """Whether ``built`` holds exactly ``lines``: the same rows, none added since (a batch's
        lines only grow, in place)."""
        return lines is self.lines and len(lines) == self.count


async def _prepare(state: WorkerState) -> _Prepared | None:
    """The batch's lines as Arrow and their copies, built in a thread while the insert in
    flight runs: its store would build them first, on the insert thread (the backfill's
    critical path: ~4 of 28 s at 1M lines), while the agent waits for that insert anyway. The
    agent calling ``flush`` holds the transcript lines back meanwhile; ``_Prepared.of`` checks
    that none came."""
    lines = state.batch.rows.get(LINES_TABLE)
    if not lines:
        return None
    count = len(lines)
    built = await asyncio.to_thread(batch_lines, state.ch, lines)
    return None if built is None else _Prepared(lines, count, built)


def _owed_summaries(state: WorkerState) -> dict[str, Rows]:
    """The summary rows of the sessions changed since they were last written (taken)."""
    dirty, state.dirty = state.dirty, {}
    if not dirty:
        return {}
    version = time.time_ns()
    return {"session_summaries": [agg.summary_row(version) for agg in dirty.values()]}
