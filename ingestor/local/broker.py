"""The broker ``ingestor up`` runs on (``cli/up_supervise.py``): the embedded Tansu it started or
a configured one, its address published for SDK clients (``ingestor.sdk``), and whether a
planned restart would lose a record (``drained``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingestor.local.stack import worker_stats
from ingestor.settings import Settings

if TYPE_CHECKING:
    from ingestor.local.tansu import TansuBroker

__all__ = ["Broker", "drained"]


def _publish_bootstrap(data_dir: Path, bootstrap: str) -> Any:
    """Write the broker's address where ``ingestor.sdk`` looks for it while ``up`` runs; returns
    the clean-up (which leaves a newer ``up``'s file alone)."""
    from ingestor.sdk import BOOTSTRAP_FILE

    path = data_dir / BOOTSTRAP_FILE
    tmp = path.with_name(f".{BOOTSTRAP_FILE}.{os.getpid()}")
    try:
        tmp.write_text(bootstrap + "\n")
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise

    def remove() -> None:
        with contextlib.suppress(OSError):
            if path.read_text().strip() == bootstrap:
                path.unlink()

    return remove


@dataclass
class Broker:
    """The broker ``up`` runs on: the embedded Tansu it started (restarted when it dies or
    outgrows ``tansu_max_rss_mb``), or a configured one (``tansu`` None, never touched)."""

    tansu: TansuBroker | None
    bootstrap: str
    unpublish: Callable[[], None] = lambda: None
    # The data dir the address is still to be written to: a full disk made the write fail.
    pending: Path | None = None

    def restart(self) -> None:
        """A new, empty broker on a new address, published only by ``publish``."""
        assert self.tansu is not None
        self.tansu.restart()
        self.bootstrap = self.tansu.bootstrap

    def publish(self, data_dir: Path) -> OSError | None:
        """Tell SDK clients the address (they look it up again when a send fails). A write that
        fails (a full disk: seen in a fault run, where it ended `up`) is left ``pending`` for
        ``publish_pending`` and its error returned: meanwhile a client keeps the address it has
        and retries its sends."""
        try:
            self.unpublish = _publish_bootstrap(data_dir, self.bootstrap)
        except OSError as e:
            self.pending = data_dir
            return e
        self.pending = None
        return None

    def publish_pending(self) -> OSError | None:
        """``publish`` again where the last one failed; None when nothing is pending now."""
        return None if self.pending is None else self.publish(self.pending)


def drained(settings: Settings, bootstrap: str, *, stopped: bool = False) -> bool:
    """Asked of the broker itself before a planned restart: is every events and ledger record it
    holds handled by the worker (``stopped``: committed by the worker's group, once the worker
    has stopped)? The worker's own view comes from its last fetch (and Tansu's
    ListOffsets(latest) reads low after multi-record batches: the SDK's), so an event sent a
    moment ago can be missing from it; lost with the broker, nobody sends it again. What is left
    is the moment between the last check and the kill. False when unsure."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from ingestor.kafka.config import client_kwargs
    from ingestor.local.compat import end_offsets

    topics = [settings.topic("events"), settings.topic("ledger")]

    async def check() -> bool:
        group = {"group_id": settings.app_id} if stopped else {}
        consumer = AIOKafkaConsumer(
            **client_kwargs(settings, bootstrap), enable_auto_commit=False, **group
        )
        await consumer.start()
        try:
            await consumer._client.force_metadata_update()
            tps = [
                TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
            ]
            ends = await end_offsets(consumer, tps)
            if stopped:  # Kafka keeps the next offset to read
                committed = {tp: (await consumer.committed(tp)) or 0 for tp in ends}
                return all(committed[tp] >= end for tp, end in ends.items())
        finally:
            await consumer.stop()
        stats = worker_stats(settings.web_host, settings.web_port, timeout_s=3)
        if not stats:
            return False  # no answer: unsure
        handled = stats.get("handled_unreplayable", {})
        return all(
            int(handled.get(f"{tp.topic}[{tp.partition}]", -1)) >= end - 1
            for tp, end in ends.items()
        )

    try:
        return asyncio.run(asyncio.wait_for(check(), timeout=10))
    except Exception:  # noqa: BLE001 - unsure: keep the broker for now
        return False
