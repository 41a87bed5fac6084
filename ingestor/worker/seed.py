"""Re-seed the Faust ``sessions`` and ``budgets`` tables' changelogs from ClickHouse.

Needed when the broker lost its changelog (the embedded Tansu keeps everything in memory): the
worker then recovers the tables from these records exactly as from its own writes. Each session
value is written to the partition its dedup scope's transcripts use, which is where the worker
updates it; each budget window to the partition of its key (the table's ``use_partitioner``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner

from ingestor.alerts.windows import WindowTotal
from ingestor.kafka.config import client_kwargs
from ingestor.settings import Settings
from ingestor.worker.sessions import SessionAgg

__all__ = ["changelog_topic", "seed_budgets", "seed_sessions"]


def changelog_topic(settings: Settings, table: str = "sessions") -> str:
    # Faust's naming: "{app id}-{table name}-changelog".
    return f"{settings.app_id}-{table}-changelog"


async def seed_budgets(
    settings: Settings, bootstrap: str, seeds: Mapping[bytes, WindowTotal]
) -> int:
    """Write every budget window to the ``budgets`` changelog; returns how many were written."""
    # Partitioned by the key, as Faust's producer does.
    records = [(key, key, window.encode()) for key, window in seeds.items()]
    return await _write(settings, bootstrap, changelog_topic(settings, "budgets"), records)


async def seed_sessions(
    settings: Settings, bootstrap: str, seeds: Sequence[tuple[str, SessionAgg]]
) -> int:
    """Write every seed to the changelog; returns how many were written."""
    # The partition of the scope's transcripts: where the worker will update the value.
    records = [(scope.encode(), agg.session_id.encode(), agg.encode()) for scope, agg in seeds]
    return await _write(settings, bootstrap, changelog_topic(settings), records)


async def _write(
    settings: Settings, bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes, bytes]]
) -> int:
    """Send ``(partition key, key, value)`` records to the compacted changelog ``topic``
    (created when missing), each to the default partitioner's partition of its partition key."""
    await _create_changelog(settings, bootstrap, topic)
    partitions = list(range(settings.topic_partitions))
    choose = DefaultPartitioner()
    producer = AIOKafkaProducer(**client_kwargs(settings, bootstrap), acks="all")
    await producer.start()
    try:
        for by, key, value in records:
            partition = choose(by, partitions, partitions)
            await producer.send(topic, value, key=key, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()
    return len(records)


async def _create_changelog(settings: Settings, bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(**client_kwargs(settings, bootstrap))
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    topic,
                    num_partitions=settings.topic_partitions,
                    replication_factor=settings.topic_replication,
                    topic_configs={"cleanup.policy": "compact"},
                )
            ]
        )
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()
