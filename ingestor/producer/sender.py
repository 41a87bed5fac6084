"""Where the watcher's envelopes go: the ``Sender`` protocol and its Kafka implementation.

Ordering under pipelining (checked in aiokafka 0.14, ``producer/sender.py`` and
``producer/message_accumulator.py``): messages are appended to one queue of batches per
partition, in ``send`` order. The sender task takes only the head batch of a partition, mutes the
partition while that batch is in flight, and keeps at most one produce request in flight per
broker node. A batch that fails with a retriable error is put back at the *head* of its
partition's queue (``reenqueue``) before the partition is unmuted, so a retry never lets a later
batch overtake it: the broker stores one key's messages in ``send`` order (a retried batch may be
stored twice; a duplicate is harmless downstream).

The one way to get a gap is a batch that fails for good (a non-retriable error, or retriable
errors until its ``request_timeout_ms`` expires): batches queued behind it may still be stored.
The watcher then stops, keeps its positions at the last envelope acknowledged *in order* and
resends from there on its next pass, so every line still arrives at least once, but within that
one recovery the resent envelopes land after later ones. We accept it rather than give up
pipelining: ClickHouse rows are idempotent and its dedup does not depend on arrival order, so
stored totals stay exact; the live session table, which skips an envelope at or below a session's
last applied offset (``worker/sessions.py``), may miss such a resent envelope.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from types import TracebackType
from typing import Any, Protocol

from ingestor.errors import BrokerError, ConfigError
from ingestor.settings import Settings

__all__ = ["KafkaSender", "Sender"]


class Sender(Protocol):
    """Queues messages for delivery; ``send`` returns each message's delivery awaitable.

    ``await sender.send(...)`` returns once the message is queued (it may wait for room, which is
    the backpressure) and raises ``BrokerError`` if it cannot be queued. Awaiting what it returned
    completes once the broker acknowledged the message, or raises ``BrokerError`` when the message
    may not have been stored; the caller then keeps its position and sends again later, so
    delivery is at-least-once. Messages sent one after another with one key are stored in that
    order, except after such a failure (see the module docstring). Await every returned awaitable.
    """

    async def send(self, topic: str, key: bytes, value: bytes) -> Awaitable[None]: ...

    async def flush(self) -> None:
        """Return once every queued message is acknowledged or failed."""
        ...


class KafkaSender:
    """``Sender`` on aiokafka: ``acks=all``, batched (``linger_ms``), many messages in flight.

    Idempotence is off because Tansu has no idempotent producer; order then rests on aiokafka's
    single in-flight batch per partition (see the module docstring). ``max_batch_size`` defaults
    to ``max_request_size`` so that many envelopes share one produce request (a lone message larger
    than the batch size still goes, alone). Use as ``async with KafkaSender(...) as sender:`` or
    ``start``/``stop``.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        max_request_size: int = 1 << 20,
        max_batch_size: int | None = None,
        linger_ms: int = 5,
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
            "max_batch_size": max_batch_size or max_request_size,
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
        compression = settings.kafka_compression
        kwargs.setdefault("compression_type", None if compression == "none" else compression)
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

    async def send(self, topic: str, key: bytes, value: bytes) -> Awaitable[None]:
        from aiokafka.errors import KafkaError

        if self._producer is None:
            raise BrokerError("KafkaSender.send before start")
        try:
            delivery = await self._producer.send(topic, value, key=key)
        except KafkaError as exc:
            raise BrokerError(f"send to {topic} failed: {exc}") from exc
        return _acknowledged(delivery, topic)

    async def flush(self) -> None:
        if self._producer is not None:
            await self._producer.flush()

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


def _acknowledged(delivery: asyncio.Future[Any], topic: str) -> asyncio.Future[None]:
    """A future settled with ``delivery``, aiokafka's errors turned into ``BrokerError``."""
    from aiokafka.errors import KafkaError

    acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def settle(done: asyncio.Future[Any]) -> None:
        exc = None if done.cancelled() else done.exception()  # retrieved either way
        if acked.done():  # cancelled by the caller
            return
        if done.cancelled():
            acked.cancel()
        elif exc is None:
            acked.set_result(None)
        elif isinstance(exc, KafkaError):
            error = BrokerError(f"delivery to {topic} failed: {exc}")
            error.__cause__ = exc
            acked.set_exception(error)
        else:
            acked.set_exception(exc)

    delivery.add_done_callback(settle)
    return acked
