"""The background sender: one daemon thread running its own asyncio loop.

Life of an event: the app's thread appends it to the ``EventQueue``; this thread takes up to
``batch_records`` events when the queue holds that many or ``linger_s`` has passed (or a flush or
close asks), finalizes them (``_events.finalize``), packs envelopes (``_envelopes``) and hands
them to the transport. Acknowledged envelopes count as ``sent``. An envelope the broker did not
take (``BrokerError``) is kept and sent again after a backoff that doubles from ``backoff_min_s``
to ``backoff_max_s``, for as long as it takes: meanwhile no new events are taken, so the queue
fills and its bound, not this thread's memory, decides what is dropped. An event that can never
go (too large) counts as ``failed``, and so does whatever is still undelivered when ``stop``'s
time runs out.

Every counter is written by this thread only; the app's threads read them. The ``Condition`` is
notified after every outcome, which is what ``wait_idle`` (``flush``) waits on.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ingestor.errors import BrokerError
from ingestor.sdk._envelopes import Message, build_messages
from ingestor.sdk._events import finalize, refill_ids
from ingestor.sdk._queue import EventQueue, RateLimitedWarning, logger
from ingestor.sdk._transport import SENDER_THREAD, Transport, TransportFactory

if TYPE_CHECKING:
    import asyncio

__all__ = ["Sender", "SenderConfig"]


@dataclass(frozen=True, slots=True)
class SenderConfig:
    batch_records: int = 500
    batch_bytes: int = 900_000  # an envelope, as the watcher's (settings.envelope_max_bytes)
    linger_s: float = 0.2
    backoff_min_s: float = 0.2
    backoff_max_s: float = 5.0
    capture_text: bool = False


class Sender:
    """Owns the thread; ``start`` once, ``stop`` once. Nothing here raises into the caller."""

    def __init__(self, queue: EventQueue, transport: TransportFactory, config: SenderConfig):
        self._queue = queue
        self._make_transport = transport
        self._config = config
        self.sent = 0
        self.failed = 0
        self.retried = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake_event: asyncio.Event | None = None
        self._wake_scheduled = False
        self._lingering = False  # only then does a full batch need to wake the thread
        self._urgent = False  # a flush or stop: cut a backoff short too
        self._stopping = False
        self._warn = RateLimitedWarning()

    # ------------------------------------------------------------------ the app's side

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        thread = threading.Thread(target=self._run, name=SENDER_THREAD, daemon=True)
        self._thread = thread
        thread.start()

    def pending(self) -> int:
        """Events queued or held, not yet sent or failed."""
        # Read in this order, a concurrent take or send can only make it momentarily high.
        settled = self.sent + self.failed
        return self._queue.taken - settled + len(self._queue)

    def batch_ready(self) -> None:
        """The queue holds a batch: wake the thread if it is lingering (the hot path calls this:
        without a lingering thread it costs a flag test)."""
        if self._lingering:
            self.wake()

    def wake(self, *, urgent: bool = False) -> None:
        """Ask the thread to take events now instead of after the linger; ``urgent`` also ends a
        backoff (once: a flush must not turn the backoff into a busy retry loop)."""
        if urgent:
            self._urgent = True
        loop = self._loop
        if loop is None or self._wake_scheduled:
            return
        self._wake_scheduled = True
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._on_wake)

    def wait_idle(self, timeout: float) -> bool:
        """Block up to ``timeout`` s until nothing is pending; True if so and nothing failed
        meanwhile."""
        failed_before = self.failed
        if self.pending() == 0:
            return True
        self.wake(urgent=True)
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while self.pending() > 0:
                left = deadline - time.monotonic()
                if left <= 0 or (self._thread is not None and not self._thread.is_alive()):
                    return False
                # Bounded waits: a notify can race the check, and the linger may need a nudge.
                self._cond.wait(min(left, 0.05))
                self.wake()
        return self.failed == failed_before

    def stop(self, timeout: float) -> bool:
        """Deliver what is pending within ``timeout`` s, then end the thread; what is left counts
        as failed. True if everything was delivered."""
        deadline = time.monotonic() + max(0.0, timeout)
        thread = self._thread
        if thread is None:
            return self.pending() == 0
        failed_before = self.failed
        self._stopping = True
        self.wake(urgent=True)
        # Keep a slice of the time for cancelling a thread stuck waiting for the broker.
        grace = min(0.25, max(0.0, timeout) / 4)
        thread.join(max(0.0, deadline - time.monotonic() - grace))
        if thread.is_alive():
            loop, task = self._loop, self._task
            if loop is not None and task is not None:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(task.cancel)
            thread.join(max(0.0, deadline - time.monotonic()))
        return self.pending() == 0 and self.failed == failed_before and not thread.is_alive()

    # ------------------------------------------------------------------ the thread

    def _on_wake(self) -> None:
        self._wake_scheduled = False
        if self._wake_event is not None:
            self._wake_event.set()

    def _run(self) -> None:
        import asyncio

        loop = asyncio.new_event_loop()
        try:
            self._wake_event = asyncio.Event()
            self._task = loop.create_task(self._main())
            self._loop = loop
            loop.run_until_complete(self._task)
        except BaseException as exc:  # a daemon thread must end quietly
            if not isinstance(exc, asyncio.CancelledError):
                logger.error("ingestor.sdk sender stopped: %r", exc)
        finally:
            self._loop = None
            with self._cond:
                self._give_up(self.pending())
                self._cond.notify_all()
            with contextlib.suppress(Exception):
                loop.close()

    async def _main(self) -> None:
        import asyncio

        transport: Transport | None = None
        held: list[Message] = []
        backoff = self._config.backoff_min_s
        try:
            while True:
                refill_ids()  # ids the app's threads take (``_events.take_id``)
                if not held:
                    if not self._stopping and len(self._queue) < self._config.batch_records:
                        self._lingering = True
                        try:
                            await self._sleep(self._config.linger_s)
                        finally:
                            self._lingering = False
                    held = self._take()
                    if not held:
                        if self._stopping and len(self._queue) == 0:
                            return
                        continue
                if transport is None:
                    transport = self._transport()
                if transport is not None:
                    held = await self._send(transport, held)
                if held:
                    await self._backoff(backoff * random.uniform(0.8, 1.2))
                    backoff = min(backoff * 2, self._config.backoff_max_s)
                else:
                    backoff = self._config.backoff_min_s
        finally:
            if transport is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(transport.close(), 0.5)

    def _transport(self) -> Transport | None:
        try:
            return self._make_transport()
        except Exception as exc:  # a bad factory: retried like an absent broker
            self._warn("ingestor.sdk: cannot make a transport, will retry: %r", exc)
            return None

    async def _sleep(self, seconds: float) -> None:
        import asyncio

        event = self._wake_event
        assert event is not None
        if self._stopping:
            seconds = min(seconds, 0.05)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)
        event.clear()

    async def _backoff(self, seconds: float) -> None:
        # Only a flush or stop ends it early; a filling queue does not.
        import asyncio

        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0 and not self._urgent:
            await self._sleep(left)
        self._urgent = False

    def _take(self) -> list[Message]:
        events = self._queue.take(self._config.batch_records)
        if not events:
            return []
        ready: list[dict[str, Any]] = []
        bad = 0
        for event in events:
            try:
                ready.append(finalize(event, capture_text=self._config.capture_text))
            except Exception:  # an odd value from the app: that event only
                bad += 1
        messages, too_large = build_messages(
            ready, max_records=self._config.batch_records, max_bytes=self._config.batch_bytes
        )
        with self._cond:
            self.failed += bad + too_large
        if bad or too_large:
            self._warn(
                "ingestor.sdk: %d event(s) could not be encoded or were too large", bad + too_large
            )
        return messages

    async def _send(self, transport: Transport, messages: list[Message]) -> list[Message]:
        """Send ``messages``; returns those worth sending again."""
        try:
            outcomes = await transport.send(messages)
        except BrokerError as exc:
            outcomes = [exc] * len(messages)
        except Exception as exc:  # a transport bug must not kill the thread
            logger.error("ingestor.sdk transport failed: %r", exc)
            outcomes = [BrokerError(str(exc))] * len(messages)
        again: list[Message] = []
        delivered = failed = 0
        for message, outcome in zip(messages, outcomes, strict=True):
            if outcome is None:
                delivered += message.records
            elif isinstance(outcome, BrokerError):
                again.append(message)
            else:
                failed += message.records
                self._warn("ingestor.sdk: a message was refused for good: %r", outcome)
        if again:
            self._warn("ingestor.sdk: broker unavailable, will retry: %s", outcomes[0])
        with self._cond:
            self.sent += delivered
            self.failed += failed
            self.retried += len(again)
            self._cond.notify_all()
        return again

    def _give_up(self, n: int) -> None:
        # Called as the thread ends: whatever is still pending will not be delivered by it.
        if n:
            self._queue.take(len(self._queue))
            self.failed += n
