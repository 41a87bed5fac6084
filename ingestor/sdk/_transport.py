"""Where the sender thread's messages go: the ``Transport`` protocol and its Kafka implementation.

A transport lives in the sender thread's event loop and is created there (after a ``fork()`` the
child makes its own). ``send`` reports one outcome per message: ``None`` when the broker
acknowledged it, ``BrokerError`` when it may be worth sending again (broker away, timeouts,
unknown topic), any other exception when it never will be (too large). ``send`` itself raises
``BrokerError`` only when nothing could be attempted (no connection).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ingestor.errors import BrokerError
from ingestor.sdk._envelopes import Message

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "BOOTSTRAP_FILE",
    "KafkaTransport",
    "Transport",
    "TransportFactory",
    "default_topic",
    "resolve_bootstrap",
]

BOOTSTRAP_FILE = "kafka-bootstrap"  # written by `ingestor up` into its data dir while it runs
SENDER_THREAD = "ingestor-sdk-sender"
# aiokafka logs every failed connection at ERROR; while the broker is away that is one line per
# retry in the app's log. From the sender thread only, they are left to the SDK's own
# rate-limited warning; the app's own aiokafka clients keep logging as before.
_AIOKAFKA_LOGGERS = (
    "aiokafka",
    "aiokafka.client",
    "aiokafka.cluster",
    "aiokafka.conn",
    "aiokafka.producer.producer",
    "aiokafka.producer.sender",
)


class _NotFromSender(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != SENDER_THREAD


_QUIET = _NotFromSender()


def _quiet_aiokafka() -> None:
    for name in _AIOKAFKA_LOGGERS:
        log = logging.getLogger(name)
        if _QUIET not in log.filters:
            log.addFilter(_QUIET)


class Transport(Protocol):
    """Sends envelopes; see the module docstring for what each outcome means."""

    async def send(self, messages: Sequence[Message]) -> list[BaseException | None]: ...

    async def close(self) -> None:
        """Release connections; may be cancelled (the sender bounds it with a timeout)."""
        ...


TransportFactory = Callable[[], Transport]


def default_topic() -> str:
    return os.environ.get("INGESTOR_TOPIC_PREFIX", "ingestor.") + "events"


def resolve_bootstrap(explicit: str | None) -> str | None:
    """``explicit``, else ``$INGESTOR_KAFKA_BOOTSTRAP``, else the address a running
    ``ingestor up`` wrote into its data dir (``$INGESTOR_DATA_DIR`` or the platform's)."""
    if explicit:
        return explicit
    if env := os.environ.get("INGESTOR_KAFKA_BOOTSTRAP", "").strip():
        return env
    data_dir = os.environ.get("INGESTOR_DATA_DIR", "").strip()
    if not data_dir:
        from platformdirs import user_data_dir

        data_dir = user_data_dir("ingestor", appauthor=False)
    try:
        return (Path(data_dir).expanduser() / BOOTSTRAP_FILE).read_text().strip() or None
    except OSError:
        return None


class KafkaTransport:
    """``Transport`` on aiokafka. The bootstrap is resolved again for every connection, so an app
    started before ``ingestor up`` finds the broker once it runs; a transport whose messages all
    failed reconnects from scratch on the next send."""

    def __init__(
        self,
        bootstrap: str | None,
        topic: str,
        *,
        request_timeout_s: float = 10.0,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._options: dict[str, Any] = {
            "acks": "all",
            "enable_idempotence": False,  # Tansu has no idempotent producer; the worker dedups
            "linger_ms": 0,  # envelopes are batched already
            "max_request_size": 1 << 20,
            "max_batch_size": 1 << 20,
            "request_timeout_ms": int(request_timeout_s * 1000),
            **(client_options or {}),
        }
        self._producer: Any = None
        _quiet_aiokafka()

    async def send(self, messages: Sequence[Message]) -> list[BaseException | None]:
        import asyncio

        from aiokafka.errors import KafkaError, MessageSizeTooLargeError

        producer = await self._started()
        deliveries: list[Any] = []
        for message in messages:
            try:
                deliveries.append(await producer.send(self._topic, message.value, key=message.key))
            except MessageSizeTooLargeError as exc:
                deliveries.append(_settled(exc))
            except KafkaError as exc:
                deliveries.append(_settled(BrokerError(f"send to {self._topic} failed: {exc}")))
        results = await asyncio.gather(*deliveries, return_exceptions=True)
        outcomes: list[BaseException | None] = []
        for result in results:
            if isinstance(result, KafkaError) and not isinstance(result, MessageSizeTooLargeError):
                error = BrokerError(f"delivery to {self._topic} failed: {result}")
                error.__cause__ = result
                outcomes.append(error)
            else:
                outcomes.append(result if isinstance(result, BaseException) else None)
        if outcomes and all(isinstance(o, BrokerError) for o in outcomes):
            await self.close()  # start afresh: the broker may be back elsewhere (a new `up`)
        return outcomes

    async def _started(self) -> Any:
        if self._producer is not None:
            return self._producer
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaError

        bootstrap = resolve_bootstrap(self._bootstrap)
        if bootstrap is None:
            raise BrokerError("no Kafka bootstrap: pass bootstrap=, set INGESTOR_KAFKA_BOOTSTRAP "
                              "or run `ingestor up`")  # fmt: skip
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **self._options)
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise BrokerError(f"cannot connect to Kafka at {bootstrap}: {exc}") from exc
        self._producer = producer
        return producer

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()


def _settled(exc: BaseException) -> asyncio.Future[None]:
    import asyncio

    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future
