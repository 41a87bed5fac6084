"""Topic definitions (``topics/topics.toml``) and their idempotent creation.

The TOML file is the one place a topic's partitioning key, retention and cleanup are stated;
names there are unprefixed and get ``settings.topic_prefix`` on load.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from aiokafka import errors as kafka_errors
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ingestor.errors import BrokerError, ConfigError
from ingestor.kafka.config import client_kwargs
from ingestor.settings import Settings
from ingestor.wire import Kind

__all__ = ["DEFINITIONS", "TopicDef", "create_topics", "load_topic_defs"]

#: The repository's ``topics/topics.toml`` (found from a source checkout / editable install).
DEFINITIONS = Path(__file__).resolve().parents[2] / "topics" / "topics.toml"

Cleanup = Literal["delete", "compact", "compact,delete"]
_DAY_MS = 24 * 60 * 60 * 1000
_TOPIC_EXISTS = kafka_errors.TopicAlreadyExistsError.errno


@dataclass(frozen=True, slots=True)
class TopicDef:
    """One topic as ingestor creates it."""

    name: str  # prefixed: what clients use
    base: str  # as written in the definitions
    kind: Kind | None  # wire kind of its messages; None for dead letters
    key: str
    partitions: int
    replication: int
    retention_ms: int
    cleanup: Cleanup
    description: str = ""

    def configs(self) -> dict[str, str]:
        """Topic-level configs for CreateTopics."""
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup}


def load_topic_defs(settings: Settings, path: Path | None = None) -> list[TopicDef]:
    """The definitions in ``path`` (default ``DEFINITIONS``), in file order.

    Raises ``ConfigError`` for a missing file or a malformed entry, naming the topic and field.
    """
    path = DEFINITIONS if path is None else path
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read topic definitions {path}: {exc}") from exc
    topics = data.get("topics")
    if not isinstance(topics, dict) or not topics:
        raise ConfigError(f"{path}: no [topics.<name>] tables")
    return [_topic_def(settings, base, entry) for base, entry in topics.items()]


def _topic_def(settings: Settings, base: str, entry: Any) -> TopicDef:
    def field(name: str, types: type | tuple[type, ...], default: Any = None) -> Any:
        value = entry.get(name, default)
        if not isinstance(value, types) or isinstance(value, bool):
            raise ConfigError(f"topic {base!r}: {name} = {value!r} is invalid")
        return value

    if not isinstance(entry, dict):
        raise ConfigError(f"topic {base!r}: must be a table")
    kind = entry.get("kind")
    if kind is not None and kind not in get_args(Kind):
        raise ConfigError(f"topic {base!r}: kind = {kind!r} is not one of {get_args(Kind)}")
    cleanup = field("cleanup", str, "delete")
    if cleanup not in get_args(Cleanup):
        raise ConfigError(f"topic {base!r}: cleanup = {cleanup!r} is invalid")
    partitions = field("partitions", int, settings.topic_partitions)
    retention_days = field("retention_days", (int, float))
    if partitions < 1 or retention_days <= 0:
        raise ConfigError(f"topic {base!r}: partitions and retention_days must be positive")
    return TopicDef(
        name=settings.topic(base),
        base=base,
        kind=kind,
        key=field("key", str),
        partitions=partitions,
        replication=settings.topic_replication,
        retention_ms=int(retention_days * _DAY_MS),
        cleanup=cleanup,
        description=field("description", str, ""),
    )


async def create_topics(
    settings: Settings, bootstrap: str, *, path: Path | None = None
) -> list[str]:
    """Create every defined topic that does not exist yet; return the names created.

    Existing topics are left as they are (their partitions and configs are not changed).
    Raises ``BrokerError`` if the broker cannot be reached or refuses a topic.
    """
    defs = load_topic_defs(settings, path)
    admin = AIOKafkaAdminClient(**client_kwargs(settings, bootstrap))
    try:
        await admin.start()
        response = await admin.create_topics(
            [NewTopic(d.name, d.partitions, d.replication, topic_configs=d.configs()) for d in defs]
        )
    except kafka_errors.KafkaError as exc:
        raise BrokerError(f"creating topics on {bootstrap} failed: {exc!r}") from exc
    finally:
        await admin.close()
    created, refused = [], []
    # aiokafka returns per-topic error codes instead of raising.
    for topic, error_code, *rest in response.topic_errors:
        if error_code == 0:
            created.append(topic)
        elif error_code != _TOPIC_EXISTS:
            message = rest[0] if rest and rest[0] else kafka_errors.for_code(error_code).__name__
            refused.append(f"{topic}: {message}")
    if refused:
        raise BrokerError("broker refused topics: " + "; ".join(refused))
    return created
