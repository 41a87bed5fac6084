"""What the worker's agents, timers and views share (``app.py`` wires them)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ingestor.clickhouse.engine import ClickHouse
from ingestor.clickhouse.write import Batch
from ingestor.obs.metrics import WorkerMetrics
from ingestor.settings import Settings
from ingestor.worker.budgets import BudgetTable
from ingestor.worker.dlq import DeadLetterLimit
from ingestor.worker.sessions import SessionAgg
from ingestor.worker.trim import Trimmer

__all__ = ["Source", "WorkerState"]


class Source:
    """A dedup scope's input partition, shaped as Faust's current event (``message.topic``,
    ``message.partition``): a session's changelog partition is its scope's (``scopes.py``)."""

    __slots__ = ("__weakref__", "partition", "topic")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition

    @property
    def message(self) -> Source:
        return self


@dataclass
class WorkerState:
    """Everything the agents share. Mutated only on the event loop."""

    settings: Settings
    ch: ClickHouse
    batch: Batch
    limit: DeadLetterLimit
    # The dedup scopes met since the start or the last rebalance, and their input partition.
    scopes: dict[str, Source] = field(default_factory=dict)
    sessions: Any = None  # the Faust table of SessionAgg values
    held: list[tuple[Any, Any]] = field(default_factory=list)  # (stream, event) awaiting ack
    dirty: dict[bytes, SessionAgg] = field(default_factory=dict)  # sessions changed since flush
    counts: Counter[str] = field(default_factory=Counter)
    last_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    # End offsets the watchdog had from the broker: a partition Faust stopped fetching keeps a
    # stale fetch high-watermark (see lag.partition_lag).
    ends: dict[tuple[str, int], int] = field(default_factory=dict)
    last_progress: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    inflight: asyncio.Task[None] | None = None  # the insert being stored, if any
    stored_at: float = 0.0  # when the last insert ended (monotonic)
    insert_s: float = 0.0  # how long it took
    inflight_rows: int = 0
    inflight_messages: int = 0
    handling: int = 0  # messages in ``handle`` (an index may be loading)
    behind: bool = False  # the last message handled had a backlog behind it (Batch.due)
    seeks: int = 0  # watchdog seeks since the last record handled
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    flushes: int = 0
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    input_topics: frozenset[str] = frozenset()
    bootstrap: str = ""  # for ``POST /replay/``'s own consumer
    positions: bool = True  # write file_positions (see build_app)
    alerting: BudgetTable | None = None  # budget alerts, when budgets are configured
    trimmer: Trimmer = field(default_factory=lambda: Trimmer(0, time.monotonic))

    @classmethod
    def of(
        cls, settings: Settings, ch: ClickHouse, *, bootstrap: str, positions: bool
    ) -> WorkerState:
        """A worker's state at its start: an empty batch and dead-letter window, as configured."""
        return cls(
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

    @property
    def pending_rows(self) -> int:
        """Rows not yet confirmed by ClickHouse: the batch, the insert in flight, and the summary
        rows owed to changed sessions (a reconciliation's go with the next batch)."""
        return self.batch.size + self.inflight_rows + len(self.dirty)
