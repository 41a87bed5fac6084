"""The one shared Kafka broker for the test session.

``kafka_bootstrap`` is, in order of preference: ``$INGESTOR_TEST_KAFKA_BOOTSTRAP``; Apache Kafka
in a testcontainer when a Docker engine answers; the embedded Tansu broker. When none can start,
tests that need a broker are skipped, never failed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from ingestor.errors import ConfigError, LocalBrokerError
from ingestor.local.tansu import TansuBroker


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of a Kafka-compatible broker shared by the whole session."""
    if env := os.environ.get("INGESTOR_TEST_KAFKA_BOOTSTRAP", "").strip():
        yield env
        return
    with contextlib.ExitStack() as stack:
        bootstrap = _docker_kafka(stack)
        if bootstrap is None:
            bootstrap = _tansu(stack)
        yield bootstrap


def _docker_kafka(stack: contextlib.ExitStack) -> str | None:
    try:
        import docker  # type: ignore[import-untyped]
        from testcontainers.community.kafka import KafkaContainer

        docker.from_env(timeout=3).ping()
        container = stack.enter_context(KafkaContainer().with_kraft())
        return str(container.get_bootstrap_server())
    except Exception:  # no library, no engine, or no image: fall back to Tansu
        return None


def _tansu(stack: contextlib.ExitStack) -> str:
    try:
        broker = stack.enter_context(TansuBroker())
    except (ConfigError, LocalBrokerError) as exc:
        pytest.skip(f"no Kafka broker available: {exc}")
    return broker.bootstrap
