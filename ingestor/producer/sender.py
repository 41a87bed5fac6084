"""Where the watcher's envelopes go: the ``Sender`` protocol and its Kafka implementation."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Protocol

from ingestor.errors import BrokerError, ConfigError
from ingestor.settings import Settings

__all__ = ["KafkaSender", "Sender"]


class Sender(Protocol):
    """Delivers one message and returns only once the broker acknowledged it.

    ``send`` raises ``BrokerError`` when the message may not have been stored; the caller then
    keeps its position and sends again later (so delivery is at-least-once). Messages sent one
    after another with one key must be stored in that order.
    """

    async def send(self, topic: str, key: bytes, value: bytes) -> None: ...


class KafkaSender:
    """``Sender`` on aiokafka: ``acks=all``, one message awaited at a time.

    Idempotence is off because Tansu has no idempotent producer; ordering then rests on awaiting
    each acknowledgement before the next send (nothing is in flight to be retried out of order).
    ``linger_ms`` defaults to 0 for the same reason: with one message in flight, lingering only
    adds latency. Use as ``async with KafkaSender(...) as sender:`` or ``start``/``stop``.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        max_request_size: int = 1 << 20,
        linger_ms: int = 0,
        compression_type: str | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._options: dict[str, Any] = {
            **(client_options or {}),
            "bootstrap_servers": bootstrap,
            "acks": "all",
            "enable_idempotence": False,
            "linger_ms": linger_ms,
            "compression_type": compression_type,
            "max_request_size": max_request_size,
        }
        self._producer: Any = None

    @classmethod
    def from_settings(
        cls, settings: Settings, bootstrap: str | None = None, **kwargs: Any
    ) -> KafkaSender:
        """A sender for ``bootstrap`` (default ``settings.kafka_bootstrap``) with the security
        options of ``ingestor.kafka.config.client_kwargs``.

        Raises ``ConfigError`` without a bootstrap or with incomplete security settings.
        """
        bootstrap = bootstrap or settings.kafka_bootstrap
        if bootstrap is None:
            raise ConfigError("no Kafka bootstrap: start the local broker first or set one")
        # Imported on use: it pulls in Faust, which a watcher with an injected sender never needs.
        from ingestor.kafka.config import client_kwargs

        options = dict(client_kwargs(settings, bootstrap))
        # An envelope's lone oversize record (a bad line is escaped up to 6x) must still fit.
        kwargs.setdefault(
            "max_request_size",
            max(1 << 20, settings.envelope_max_bytes + 6 * settings.bad_line_max_bytes + 65536),
        )
        return cls(bootstrap, client_options=options, **kwargs)

    async def start(self) -> None:
        """Connect. Raises ``BrokerError`` when the broker cannot be reached."""
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaError

        producer = AIOKafkaProducer(**self._options)
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise BrokerError(f"cannot start Kafka producer: {exc}") from exc
        self._producer = producer

    async def stop(self) -> None:
        """Flush and disconnect; safe to call twice."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        from aiokafka.errors import KafkaError

        if self._producer is None:
            raise BrokerError("KafkaSender.send before start")
        try:
            await self._producer.send_and_wait(topic, value, key=key)
        except KafkaError as exc:
            raise BrokerError(f"send to {topic} failed: {exc}") from exc

    async def __aenter__(self) -> KafkaSender:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
