"""The Faust app: thin agents over the pure steps, wired once.

A message goes through the offset guard (``guard.py``), then ``process.py`` (pure: decode, rows,
dead letters; a transcript envelope's scope is met in between, ``scopes.py``), then into the
batch; the flusher (``flusher.py``) stores the batch with one insert in flight and acks its
events only once ClickHouse confirmed it. Holes in the offsets are mended by restarting in place
(``restart.py``); the exit codes are in ``exits.py``; what the agents, timers and views share is
``state.py``'s ``WorkerState``.
"""

from __future__ import annotations

import logging
import os
import time
from functools import partial
from typing import Any, NoReturn, cast

import faust

from ingestor.clickhouse.engine import ClickHouse
from ingestor.errors import DeadLetterLimitExceeded, Location
from ingestor.kafka.config import faust_credentials
from ingestor.obs.metrics import WorkerMetrics
from ingestor.settings import Settings
from ingestor.wire import Kind
from ingestor.worker.budgets import BudgetTable, budget_table
from ingestor.worker.buffer import BytesBoundedQueue
from ingestor.worker.exits import EXIT_BAD_INPUT
from ingestor.worker.flusher import busy, flush, rested
from ingestor.worker.guard import SEEK_S, missing
from ingestor.worker.lag import has_backlog, partition_lag
from ingestor.worker.process import Processed, decode, process_decoded, with_dead_letter_rows
from ingestor.worker.restart import restart_committed
from ingestor.worker.scopes import meet_scope
from ingestor.worker.state import Source, WorkerState
from ingestor.worker.views import register_views
from ingestor.worker.watchdog import watch_round

__all__ = ["DEFAULT_SESSION_TIMEOUT_S", "build_app", "handle"]

log = logging.getLogger(__name__)
DEFAULT_SESSION_TIMEOUT_S = 10.0  # on a Kafka cluster; `ingestor up` sets Tansu's


def build_app(
    settings: Settings, bootstrap: str, ch: ClickHouse, *, positions: bool = True
) -> faust.App:
    """The worker's app. ``positions=False`` (a date-filtered backfill) stores no file position."""
    app = _faust_app(settings, bootstrap)
    state = WorkerState.of(settings, ch, bootstrap=bootstrap, positions=positions)
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

    topics: dict[Kind, Any] = {
        "transcript": raw_topic("transcripts"),
        "event": raw_topic("events"),
        "ledger": raw_topic("ledger"),
    }
    dead_letters = raw_topic("dead-letters")
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

    def agent_for(kind: Kind, topic: Any) -> None:
        async def consume(stream: Any) -> None:
            manual = stream.noack()
            async for event in manual.events():
                state.handling += 1
                try:
                    await handle(state, app, dead_letters, kind, manual, event)
                except DeadLetterLimitExceeded:
                    # Not restartable: the held events stay unacked for whoever fixes the input.
                    log.critical("dead-letter limit exceeded on %s; stopping", kind, exc_info=True)
                    os._exit(EXIT_BAD_INPUT)
                finally:
                    state.handling -= 1

        app.agent(topic, name=f"ingest-{kind}")(consume)

    for kind, topic in topics.items():
        agent_for(kind, topic)

    async def flush_by_age() -> None:
        # Never wait behind an insert in flight: the agent's next flush does that.
        if busy(state):
            return
        # Sessions changed outside a store (a scope met): their summary rows, once rested.
        if state.batch.due(idle=rested(state), behind=state.behind) or (
            state.dirty and rested(state)
        ):
            await flush(state, app)

    # A tick is cheap, and up to one tick is added to the age that makes a batch due.
    interval = min(settings.batch_max_age_s, settings.batch_min_age_s) / 4
    app.timer(interval=max(0.02, interval))(flush_by_age)

    inputs = frozenset(topic.get_topic_name() for topic in topics.values())
    state.input_topics = inputs

    async def watchdog() -> None:
        await watch_round(app, state, inputs, restart=partial(_restart, state, app))

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


class _App(faust.App):
    """Faust's app whose stream buffers are bounded in bytes too (``buffer.py``)."""

    stream_buffer_bytes = 0  # 0: in messages only, as Faust's

    def FlowControlQueue(  # noqa: N802 - Faust's name
        self, maxsize: int | None = None, *, clear_on_resume: bool = False
    ) -> Any:
        if not self.stream_buffer_bytes:
            return super().FlowControlQueue(maxsize, clear_on_resume=clear_on_resume)
        return BytesBoundedQueue(
            maxsize=maxsize,
            max_bytes=self.stream_buffer_bytes,
            flow_control=self.flow_control,
            clear_on_resume=clear_on_resume,
        )


def _faust_app(settings: Settings, bootstrap: str) -> faust.App:
    session_timeout_s = settings.broker_session_timeout_s or DEFAULT_SESSION_TIMEOUT_S
    app = _App(
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
    app.stream_buffer_bytes = settings.worker_stream_buffer_bytes
    return app


async def handle(
    state: WorkerState, app: faust.App, dead_letters: Any, kind: Kind, stream: Any, event: Any
) -> None:
    """One input message: the offset guard, its rows (``process.py``), its dead letters sent to
    ``dead_letters``, its rows into the batch and its event held until they are stored.

    Raises ``DeadLetterLimitExceeded`` when too much of the input went to dead letters."""
    message = event.message
    await _guard_offsets(state, app, message)
    state.last_offsets[(message.topic, message.partition)] = message.offset
    state.last_progress = time.monotonic()
    state.seeks = 0
    where = Location(message.topic, message.partition, message.offset)
    max_bytes = state.settings.bad_line_max_bytes
    decoded_all = decode(kind, event.value, where, bad_line_max_bytes=max_bytes)
    # The backlog counted in envelopes: the messages behind taken to be bundles like this one.
    backlog = -(-state.settings.batch_backlog_messages // len(decoded_all))
    state.behind = has_backlog(app, message, backlog)
    processed = Processed()
    # A bundle's envelopes in order; an envelope (or item) that is none: its dead letter.
    for decoded in decoded_all:
        if isinstance(decoded, Processed):
            processed.add(decoded)
            continue
        if kind == "transcript":
            assert decoded.source is not None
            scope = decoded.source.scope
            if scope not in state.scopes:  # before its rows join a batch (scopes.meet_scope)
                await meet_scope(state, app, scope, Source(message.topic, message.partition))
        part = process_decoded(kind, decoded, where, bad_line_max_bytes=max_bytes)
        if state.alerting is not None:
            state.counts["alerts"] += state.alerting.apply(kind, part, where)
        processed.add(part)
    for dead in processed.dead:
        await dead_letters.send(key=dead.key(), value=dead.message())
    with_dead_letter_rows(processed)
    state.counts.update(processed.outcomes)
    state.counts["messages"] += 1
    state.metrics.envelope(kind, (dead.reason for dead in processed.dead))
    state.batch.add(processed.rows, len(event.value or b""))
    state.held.append((stream, event))
    state.limit.record(processed.valid, len(processed.dead))
    if state.batch.ready(inflight=busy(state), rested=rested(state), behind=state.behind):
        await flush(state, app)


async def _guard_offsets(state: WorkerState, app: faust.App, message: Any) -> None:
    """Restart in place, after storing what was handled, when ``message`` reveals a hole."""
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
        await _restart(state, app)


async def _restart(state: WorkerState, app: faust.App) -> NoReturn:
    """Store and commit what the agents hold, then restart in place (``restart.py``)."""
    await restart_committed(app, partial(flush, state, app, wait=True))
