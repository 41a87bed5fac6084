"""Apache Kafka clusters for the tests: 1 broker, and 3 with replicated topics.

The jars come from Maven Central through the machine's Maven, cached in
``~/.cache/ingestor/kafka-<version>`` (``ingestor/local/kafka.py``); a machine without Java or
Maven skips these tests with the reason. Pulled into ``conftest.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestor.errors import ConfigError
from ingestor.local.kafka import KafkaCluster, kafka_jars


def _cluster(brokers: int, root: Path) -> Iterator[KafkaCluster]:
    try:
        started = time.monotonic()
        kafka_jars()
        installed = time.monotonic()
    except ConfigError as exc:
        pytest.skip(f"no Apache Kafka: {exc}")
    with KafkaCluster(brokers, root=root) as cluster:
        # -s shows them: what the tier costs (install is ~0 once cached).
        print(
            f"\nApache Kafka x{brokers}: install {installed - started:.1f}s, "
            f"start {time.monotonic() - installed:.1f}s"
        )
        yield cluster


@pytest.fixture(scope="session")
def kafka1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """One Apache Kafka broker (KRaft), shared by the session."""
    yield from _cluster(1, tmp_path_factory.mktemp("kafka1"))


@pytest.fixture
def kafka3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Three Apache Kafka brokers, replication 3, min.insync 2; per test (tests kill brokers)."""
    yield from _cluster(3, tmp_path_factory.mktemp("kafka3"))
