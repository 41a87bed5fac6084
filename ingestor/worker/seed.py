"""Re-seed the Faust ``sessions`` table's changelog from ClickHouse aggregates.

Needed when the broker lost its changelog (the embedded Tansu keeps everything in memory): the
worker then recovers the table from these records exactly as from its own writes. Each value is
written to the partition its dedup scope's transcripts use, which is where the worker updates it.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner

from ingestor.kafka.config import client_kwargs
from ingestor.settings import Settings
from ingestor.worker.sessions import SessionAgg

__all__ = ["changelog_topic", "seed_sessions"]


def changelog_topic(settings: Settings) -> str:
    # Faust's naming: "{app id}-{table name}-changelog".
    return f"{settings.app_id}-sessions-changelog"


async def seed_sessions(
    settings: Settings, bootstrap: str, seeds: Sequence[tuple[str, SessionAgg]]
) -> int:
    """Write every seed to the changelog; returns how many were written."""
    topic = changelog_topic(settings)
    kwargs = client_kwargs(settings, bootstrap)
    admin = AIOKafkaAdminClient(**kwargs)
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
    partitions = list(range(settings.topic_partitions))
    choose = DefaultPartitioner()
    producer = AIOKafkaProducer(**kwargs, acks="all")
    await producer.start()
    try:
        for scope, agg in seeds:
            # The partition of the scope's transcripts: where the worker will update the value.
            partition = choose(scope.encode(), partitions, partitions)
            await producer.send(
                topic, agg.encode(), key=agg.session_id.encode(), partition=partition
            )
        await producer.flush()
    finally:
        await producer.stop()
    return len(seeds)
