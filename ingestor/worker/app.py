"""The Faust app: thin agents over the pure steps in ``process`` and ``sessions``.

Commit discipline: agents iterate with acks disabled and hold each event until the batch holding
its rows is stored in ClickHouse; only then are the events acked, so Faust commits only offsets
whose rows are durable. A batch that cannot be stored after its retries ends the process hard
(``os._exit``) so that the uncommitted events are delivered again — never acked and lost.

Sessions and transcript budgets follow what ClickHouse decides counts: the lines a stored batch
made start or stop counting (``sink/winners.py``) are applied to the Faust tables, and the
changed sessions' summary rows stored, before the batch is acked.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import Any, NoReturn, cast

import faust

from ingestor.errors import DeadLetterLimitExceeded, InvalidInput, Location
from ingestor.kafka.config import faust_credentials
from ingestor.obs.metrics import WorkerMetrics
from ingestor.settings import Settings
from ingestor.sink.disk import write_with_room
from ingestor.sink.engine import ClickHouse
from ingestor.sink.row_columns import Rows
from ingestor.sink.write import Batch, write_batch
from ingestor.usage.winners import CountedChange
from ingestor.wire import Kind, decode_message
from ingestor.worker.budgets import BudgetTable, budget_table
from ingestor.worker.dlq import DeadLetterLimit
from ingestor.worker.exits import EXIT_BAD_INPUT, EXIT_OFFSET_GAP, EXIT_STORAGE_FAILED
from ingestor.worker.follow import apply_changes, budget_alerts
from ingestor.worker.guard import SEEK_S, missing
from ingestor.worker.lag import partition_lag
from ingestor.worker.process import process_decoded, undecodable, with_dead_letter_rows
from ingestor.worker.restore import session_seeds
from ingestor.worker.sessions import SessionAgg, reconciled
from ingestor.worker.state import Source, WorkerState
from ingestor.worker.trim import Trimmer
from ingestor.worker.views import register_views
from ingestor.worker.watchdog import watch_round

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_OFFSET_GAP",
    "EXIT_STORAGE_FAILED",
    "RESTARTABLE",
    "WorkerState",
    "build_app",
    "store_held",
]

log = logging.getLogger(__name__)
RESTARTABLE = (EXIT_STORAGE_FAILED, EXIT_OFFSET_GAP)
DEFAULT_SESSION_TIMEOUT_S = 10.0  # on a Kafka cluster; `ingestor up` sets Tansu's


def build_app(
    settings: Settings, bootstrap: str, ch: ClickHouse, *, positions: bool = True
) -> faust.App:
    """The worker's app. ``positions=False`` (a date-filtered backfill) stores no file position."""
    session_timeout_s = settings.broker_session_timeout_s or DEFAULT_SESSION_TIMEOUT_S
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{bootstrap}",
        broker_credentials=faust_credentials(settings),
        store="memory://",
        autodiscover=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        broker_session_timeout=session_timeout_s,
        broker_heartbeat_interval=min(3.0, session_timeout_s / 3),
        broker_commit_interval=1.0,
        producer_max_request_size=max(1_048_576, settings.envelope_max_bytes * 2),
        consumer_max_fetch_size=8 * 1_048_576,
        stream_buffer_maxsize=settings.worker_stream_buffer,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        table_standby_replicas=0,
    )
    state = WorkerState(
        settings=settings,
        ch=ch,
        batch=Batch(
            settings.batch_max_rows,
            settings.batch_max_age_s,
            time.monotonic,
            max_bytes=settings.batch_max_bytes,
            min_age_s=settings.batch_min_age_s,
            backlog_rows=settings.batch_backlog_rows,
            backlog_age_s=settings.batch_backlog_age_s,
        ),
        limit=DeadLetterLimit(settings.dlq_max_invalid_ratio, settings.dlq_window),
        bootstrap=bootstrap,
        positions=positions,
        trimmer=Trimmer(settings.worker_trim_interval_s, time.monotonic),
    )

    state.metrics = WorkerMetrics(
        scrape=lambda: (
            partition_lag(app, state.last_offsets, state.ends),
            state.pending_rows,
        )
    )

    def raw_topic(name: str) -> Any:
        return app.topic(
            settings.topic(name),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )

    transcripts_topic = raw_topic("transcripts")
    events_topic = raw_topic("events")
    ledger_topic = raw_topic("ledger")
    dlq_topic = raw_topic("dead-letters")
    # Values are our own bytes (SessionAgg.encode): bytes types make Faust use raw serializers
    # for the store, the changelog and its recovery alike.
    sessions: Any = app.Table(
        "sessions",
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.topic_partitions,
    )
    state.sessions = sessions
    budgets = settings.budget_list
    alerting = (
        BudgetTable(budget_table(app, settings.topic_partitions), budgets) if budgets else None
    )
    state.alerting = alerting

    async def handle(kind: Kind, stream: Any, event: Any) -> None:
        message = event.message
        where = Location(message.topic, message.partition, message.offset)
        last = state.last_offsets.get((message.topic, message.partition))
        committed = None
        if last is None:  # the first record since the assignment: it must be the committed one
            committed = cast(Any, app.consumer)._committed_offset.get(message.tp)
        if hole := missing(message.offset, last, committed):
            # Our topics are neither compacted nor transactional, so a hole means Faust skipped
            # records. faust-streaming 0.15 does so when a group starts with no committed offset
            # (or offset 0, which it treats as none) on a topic that already holds data: it
            # resumes fetching before seeking, drops the records fetched behind the first one,
            # and counts the hole as processed; and at times on a start with one (guard.missing).
            # Exit before acking anything past the hole: the restarted worker seeks to the
            # committed offset and gets them again.
            log.critical(
                "offsets %s..%s of %s[%s] never reached the agent; restarting for re-delivery",
                *hole,
                message.topic,
                message.partition,
            )
            await _restart_committed(state, app)
        state.last_offsets[(message.topic, message.partition)] = message.offset
        state.behind = _behind(app, message, settings.batch_backlog_messages)
        state.last_progress = time.monotonic()
        state.seeks = 0
        try:
            envelope = decode_message(kind, event.value)
        except InvalidInput as exc:
            processed = undecodable(
                kind, exc, where, event.value or b"", bad_line_max_bytes=settings.bad_line_max_bytes
            )
        else:
            if kind == "transcript":
                assert envelope.source is not None
                scope = envelope.source.scope
                if scope not in state.scopes:
                    await _meet_scope(state, app, scope)
                    state.scopes[scope] = Source(message.topic, message.partition)
            processed = process_decoded(
                kind, envelope, where, bad_line_max_bytes=settings.bad_line_max_bytes
            )
            if alerting is not None:
                state.counts["alerts"] += alerting.apply(kind, processed, where)
        for dead in processed.dead:
            await dlq_topic.send(key=dead.key(), value=dead.message())
        with_dead_letter_rows(processed)
        state.counts.update(processed.outcomes)
        state.counts["messages"] += 1
        state.metrics.envelope(kind, (dead.reason for dead in processed.dead))
        state.batch.add(processed.rows, len(event.value or b""))
        state.held.append((stream, event))
        state.limit.record(processed.valid, len(processed.dead))
        if state.batch.ready(inflight=_busy(state), rested=_rested(state), behind=state.behind):
            await flush(state, app)

    def agent_for(kind: Kind, topic: Any) -> None:
        async def consume(stream: Any) -> None:
            manual = stream.noack()
            async for event in manual.events():
                state.handling += 1
                try:
                    await handle(kind, manual, event)
                except DeadLetterLimitExceeded:
                    # Not restartable: the held events stay unacked for whoever fixes the input.
                    log.critical("dead-letter limit exceeded on %s; stopping", kind, exc_info=True)
                    os._exit(EXIT_BAD_INPUT)
                finally:
                    state.handling -= 1

        app.agent(topic, name=f"ingest-{kind}")(consume)

    agent_for("transcript", transcripts_topic)
    agent_for("event", events_topic)
    agent_for("ledger", ledger_topic)

    async def flush_by_age() -> None:
        # Never wait behind an insert in flight: the agent's next flush does that.
        if _busy(state):
            return
        # Sessions changed by the last store: their summary rows, once the insert thread rested.
        if state.batch.due(idle=_rested(state), behind=state.behind) or (
            state.dirty and _rested(state)
        ):
            await flush(state, app)

    # A tick is cheap, and up to one tick is added to the age that makes a batch due.
    interval = min(settings.batch_max_age_s, settings.batch_min_age_s) / 4
    app.timer(interval=max(0.02, interval))(flush_by_age)

    inputs = {transcripts_topic.get_topic_name(), events_topic.get_topic_name()}
    inputs.add(ledger_topic.get_topic_name())
    state.input_topics = frozenset(inputs)

    async def watchdog() -> None:
        await watch_round(app, state, inputs, restart=lambda: _restart_committed(state, app))

    app.timer(interval=SEEK_S / 3)(watchdog)

    async def on_revoked(sender: Any, revoked: Any, **_: Any) -> None:
        # Another worker may take these partitions: store what we have first.
        await flush(state, app, wait=True)
        state.scopes.clear()  # met again: reconciled with ClickHouse then
        state.last_offsets.clear()  # another worker may move these partitions on meanwhile
        state.ends.clear()

    app.on_partitions_revoked.connect(cast(Any, on_revoked))

    register_views(app, sessions, state)
    app.ingestor_state = state  # type: ignore[attr-defined]
    return app


async def _meet_scope(state: WorkerState, app: faust.App, scope: str) -> None:
    """The first envelope of ``scope`` since the start or a rebalance: reconcile its sessions
    with ClickHouse (a change stored by a worker that died before its changelog write is in
    ClickHouse only), and rewrite all their summary rows (one that died before writing them
    left them behind). Nothing of the scope is in flight meanwhile: its changes are applied only
    after a store, and the insert in flight is waited for first."""
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


def _progressed(state: WorkerState) -> None:
    # A restore over a long history is progress: the watchdog restarted a worker whose restore
    # took over 30 s (2.5M lines on a loaded machine) before it ended, again and again.
    state.last_progress = time.monotonic()


def _behind(app: faust.App, message: Any, backlog: int) -> bool:
    """Whether ``message`` has ``backlog`` or more records after it in its partition (as the
    last fetch saw its end)."""
    try:
        highwater = cast(Any, app.consumer).highwater(message.tp)
    except Exception:  # noqa: BLE001 - not known: batch as when caught up
        return False
    return isinstance(highwater, int) and highwater - 1 - message.offset >= backlog


def _busy(state: WorkerState) -> bool:
    """An insert is in flight, or a flush holds the lock to start one: a flush called then
    would wait for that whole insert (the agent stalled ~0.5 s on each such race)."""
    return state.lock.locked() or (state.inflight is not None and not state.inflight.done())


def _rested(state: WorkerState) -> bool:
    """The insert thread has rested as long as the last insert took (``Batch.ready``): inserts
    back to back took the CPU the stream needed and doubled the latency at 5k lines/s. Under load
    inserts slow down, so do the short-age flushes; the age bound and the size limits still
    apply."""
    return time.monotonic() - state.stored_at >= state.insert_s


async def flush(state: WorkerState, app: faust.App, *, wait: bool = False) -> None:
    """Start storing the batch; its events are acked once ClickHouse confirmed it.

    At most one insert is in flight: it overlaps with stream processing, and a second flush first
    waits for it (back-pressure). ``wait`` also waits for the insert just started (rebalances).
    """
    async with state.lock:
        if state.inflight is not None:
            await state.inflight
        if state.held or state.batch.size or state.dirty:
            # Changelog writes and dead letters first: ClickHouse must never be ahead of them.
            await app.producer.flush()
            rows = state.batch.take()
            held, state.held = state.held, []
            sources = dict(state.scopes)  # where this batch's changes go
            rows.update(_owed_summaries(state))
            state.flushes += 1
            state.inflight_rows = sum(len(r) for r in rows.values())
            state.inflight_messages = len(held)
            token = f"{state.run_id}:{state.flushes}"
            state.inflight = asyncio.create_task(_store(state, app, rows, held, token, sources))
        if wait and state.inflight is not None:
            await state.inflight


_RECORD_TABLES = ("transcript_lines", "events", "token_usage_ledger")


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
) -> None:
    metrics = state.metrics
    changes: list[CountedChange] = []

    def write(rows: dict[str, Rows] = rows, token: str = token) -> int:
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
                await asyncio.to_thread(write, after, f"{token}:after")
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
    state.counts["records_stored"] += sum(len(rows.get(t, ())) for t in _RECORD_TABLES)
    state.counts["dead_letters_stored"] += len(rows.get("dead_letters", ()))
    for stream, event in held:
        await stream.ack(event)
    if held:
        os.environ.pop(_RESTARTS_ENV, None)  # progress: in-place restarts count anew
    state.inflight_rows = state.inflight_messages = 0
    rows.clear()  # this store's own: free the batch now, so that a trim can hand it back
    held.clear()
    state.trimmer.after_store()


def _owed_summaries(state: WorkerState) -> dict[str, Rows]:
    """The summary rows of the sessions changed since they were last written (taken)."""
    dirty, state.dirty = state.dirty, {}
    if not dirty:
        return {}
    version = time.time_ns()
    return {"session_summaries": [agg.summary_row(version) for agg in dirty.values()]}


async def _restart_committed(state: WorkerState, app: faust.App) -> NoReturn:
    """Store and commit what was handled before a hole, then restart in place.

    Everything held precedes the hole (offsets are checked contiguous per partition), so storing
    and acking it commits no record past the hole. It matters: the hole comes from a partition
    without a committed offset, and a restarted image that still finds none there runs into the
    same hole again — restart after restart, one envelope at a time at best. With the handled
    records committed, the new image seeks to a real offset and reads on at full speed.
    """
    try:
        await flush(state, app, wait=True)
        await app.consumer.commit()
    except Exception:  # noqa: BLE001 - restart anyway: the committed offsets are still right
        log.warning("could not commit before restarting", exc_info=True)
    _restart_in_place()


def _restart_in_place() -> NoReturn:
    """Replace this process with a fresh worker (same pid, same arguments), without acking.

    Nothing is committed past what was acked; the new image rejoins and seeks to the committed
    offsets. Bounded, so that a persistent fault ends in an exit a supervisor can see.
    """
    restarts = int(os.environ.get(_RESTARTS_ENV, "0"))
    if restarts >= 5:
        os._exit(EXIT_OFFSET_GAP)
    os.environ[_RESTARTS_ENV] = str(restarts + 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


_RESTARTS_ENV = "INGESTOR_WORKER_RESTARTS"
