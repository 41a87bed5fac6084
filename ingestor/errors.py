"""The one exception tree of ingestor.

::

    IngestorError
     ├── ConfigError                 settings that cannot work (bad URL, missing binary)
     ├── InvalidInput                bad input: carries where it came from and why → dead letters
     │    ├── InvalidEnvelope        a Kafka message that is not a readable envelope
     │    └── InvalidRecord          one record that fails validation (names the field)
     ├── DeadLetterLimitExceeded     too much bad input: stop loudly instead of dead-lettering all
     ├── BrokerError                 Kafka/Tansu failures (driver errors re-raised ``from e``)
     │    └── LocalBrokerError       the embedded Tansu process would not start or answer
     └── StorageError                ClickHouse failures (driver errors re-raised ``from e``)
          ├── TransientStorageError  worth retrying (network, timeouts, too many parts)
          └── SchemaError            a migration failed

Bad input never raises past the worker: it becomes a dead letter. Everything else is an
operational failure and propagates.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = [
    "BrokerError",
    "ConfigError",
    "DeadLetterLimitExceeded",
    "IngestorError",
    "InvalidEnvelope",
    "InvalidInput",
    "InvalidRecord",
    "LocalBrokerError",
    "Location",
    "SchemaError",
    "StorageError",
    "TransientStorageError",
]


@dataclass(frozen=True, slots=True)
class Location:
    """Where a piece of input came from: Kafka coordinates and, for transcripts, the file."""

    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    index: int | None = None  # record index inside an envelope
    file: str | None = None
    file_offset: int | None = None

    def as_dict(self) -> dict[str, str | int]:
        return {
            name: value
            for name in ("topic", "partition", "offset", "index", "file", "file_offset")
            if (value := getattr(self, name)) is not None
        }

    def __str__(self) -> str:
        parts = []
        if self.topic is not None:
            parts.append(f"{self.topic}[{self.partition}]@{self.offset}")
            if self.index is not None:
                parts[-1] += f"#{self.index}"
        if self.file is not None:
            parts.append(f"{self.file}:{self.file_offset}")
        return " ".join(parts) or "<unknown>"


class IngestorError(Exception):
    """Base of every error ingestor raises on purpose."""


class ConfigError(IngestorError):
    """A setting cannot work."""


@dataclass(eq=False)
class InvalidInput(IngestorError):
    """Bad input. ``reason`` is for humans; ``field`` names the offending field if one does."""

    reason: str
    field: str | None = None
    location: Location = dataclasses.field(default_factory=Location)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" at {self.location}" if self.location != Location() else ""
        what = f"{self.field}: " if self.field else ""
        return f"{what}{self.reason}{where}"

    def at(self, location: Location) -> InvalidInput:
        """The same error, placed at ``location`` (keeps the subclass)."""
        return type(self)(self.reason, self.field, location)


class InvalidEnvelope(InvalidInput):
    """A Kafka message that is not a readable envelope or record."""


class InvalidRecord(InvalidInput):
    """One record inside an envelope that fails validation."""


class DeadLetterLimitExceeded(IngestorError):
    """The share of invalid records crossed the configured limit: a bad deploy, not bad lines."""


class BrokerError(IngestorError):
    """The Kafka broker failed or could not be reached."""


class LocalBrokerError(BrokerError):
    """The embedded Tansu broker would not start, answer, or stop."""


class StorageError(IngestorError):
    """ClickHouse (server or chdb) failed."""


class TransientStorageError(StorageError):
    """A ClickHouse failure worth retrying with backoff."""


class SchemaError(StorageError):
    """A schema migration failed."""
