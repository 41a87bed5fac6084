"""``Tracker``: the SDK's one object. It builds events, queues them, and owns the sender.

Contract, for every public method: it never raises into the host (a failure inside the SDK is
logged, rate-limited, and counted as ``dropped``) and never blocks, except ``flush`` and
``close``, which block at most their ``timeout``. Any thread may call it, and so may an asyncio
loop (``aflush``/``aclose`` wait in a worker thread instead of the loop).

Process life: the sender thread starts with the first event. At interpreter exit every open
tracker is closed (``exit_timeout_s``). In a child after ``fork()`` the tracker starts over: an
empty queue, zero counters and a sender of its own on the first event; the parent's queued and
in-flight events stay the parent's, so nothing is sent twice.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ingestor.sdk._events import PROMPT, describe, event_id, reseed, take_id, text_of
from ingestor.sdk._queue import EventQueue, RateLimitedWarning, logger
from ingestor.sdk._sender import Sender, SenderConfig
from ingestor.sdk._spans import PARENT, RUN, Run, Span
from ingestor.sdk._transport import KafkaTransport, TransportFactory, default_topic

__all__ = ["Stats", "Tracker"]


@dataclass(frozen=True, slots=True)
class Stats:
    """Counters since the tracker started (or since ``fork()`` in a child).

    ``queued`` events were accepted; each is eventually ``sent`` (acknowledged by the broker) or
    ``failed`` (refused for good, or still undelivered when ``close`` ran out of time), and until
    then ``pending``. ``dropped`` events were never accepted (queue full, tracker closed, an SDK
    error). ``retried`` counts envelopes sent again after the broker did not take them.
    """

    queued: int
    sent: int
    dropped: int
    failed: int
    retried: int
    pending: int


class Tracker:
    """Tracks an LLM app's prompt calls, tool calls, agent steps, errors and alerts.

    ``bootstrap``: Kafka ``host:port[,…]``; default ``$INGESTOR_KAFKA_BOOTSTRAP``, else the
    broker of a running ``ingestor up`` (looked up again on every reconnect). ``project_id`` and
    the other identity fields go on every event; ``capture_text=True`` sends prompt and response
    text (cut at 32k characters), otherwise only their sizes and SHA-256. ``max_queue`` bounds
    the events held while the broker is away; beyond it new events are dropped and counted.
    ``transport`` replaces Kafka (tests): a callable returning a ``Transport``, called in the
    sender thread.
    """

    def __init__(
        self,
        bootstrap: str | None = None,
        *,
        project_id: str,
        user_id: str | None = None,
        session_id: str | None = None,
        env: str = "production",
        tags: Sequence[str] = (),
        topic: str | None = None,
        capture_text: bool = False,
        max_queue: int = 10_000,
        batch_records: int = 500,
        batch_bytes: int = 900_000,
        linger_s: float = 0.2,
        backoff_min_s: float = 0.2,
        backoff_max_s: float = 5.0,
        request_timeout_s: float = 10.0,
        exit_timeout_s: float = 2.0,
        client_options: Mapping[str, Any] | None = None,
        transport: TransportFactory | None = None,
    ) -> None:
        base: dict[str, Any] = {"project_id": project_id, "env": env}
        if user_id is not None:
            base["user_id"] = user_id
        if session_id is not None:
            base["session_id"] = session_id
        if tags:
            base["tags"] = list(tags)
        self._base = base
        self.project_id = project_id
        self.exit_timeout_s = exit_timeout_s
        self._config = SenderConfig(
            batch_records=batch_records,
            batch_bytes=batch_bytes,
            linger_s=linger_s,
            backoff_min_s=backoff_min_s,
            backoff_max_s=backoff_max_s,
            capture_text=capture_text,
        )
        if transport is None:
            resolved_topic = topic or default_topic()
            options = dict(client_options or {})

            def transport() -> KafkaTransport:
                return KafkaTransport(
                    bootstrap,
                    resolved_topic,
                    request_timeout_s=request_timeout_s,
                    client_options=options,
                )

        self._transport = transport
        self._max_queue = max_queue
        self._batch_records = batch_records
        self._closed = False
        self._fresh()
        _TRACKERS.add(self)

    def _fresh(self) -> None:
        self._queue = EventQueue(self._max_queue)
        self._sender = Sender(self._queue, self._transport, self._config)
        self._started = False  # the sender's thread is running (read on the hot path)
        self._start_lock = threading.Lock()
        self._warn = RateLimitedWarning()

    # ------------------------------------------------------------------ timed scopes

    def prompt(
        self,
        model: str | None = None,
        *,
        prompt: Any = None,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Span:
        """Times one model call. ``prompt`` (a string or chat messages) is hashed and sized,
        sent only with ``capture_text``; report the answer with ``span.response(...)``."""
        event = self._new("prompt_call", idempotency_key, fields, need_id=False)
        if model is not None:
            event["model"] = model
        if prompt is not None:
            event[PROMPT] = text_of(prompt)
        return Span(self, event)

    def tool(
        self,
        name: str,
        *,
        tool_call_id: str | None = None,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Span:
        """Times one tool call; an exception leaving it sets ``status`` and ``error_message``."""
        event = self._new("tool_call", idempotency_key, fields, need_id=False)
        event["tool_name"] = name
        if tool_call_id is not None:
            event["tool_call_id"] = tool_call_id
        return Span(self, event)

    def step(
        self,
        name: str,
        *,
        step_type: str = "other",
        agent_name: str | None = None,
        step_number: int | None = None,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Span:
        """Times one agent step. Inside ``run()`` it takes the run id and the next step number;
        events inside it carry its id as ``parent_id``."""
        event = self._new("agent_step", idempotency_key, fields, need_id=False)
        event["step_name"] = name
        event["step_type"] = step_type
        if agent_name is not None:
            event["agent_name"] = agent_name
        if step_number is not None:
            event["step_number"] = step_number
        return Span(self, event, is_step=True)

    def run(self, run_id: str | None = None, *, session_id: str | None = None) -> Run:
        """A scope (or decorator) grouping steps under one run id (a new uuid4 if not given)."""
        return Run(run_id, session_id)

    # ------------------------------------------------------------------ point events

    def error(
        self, error: BaseException | str, message: str | None = None, **fields: Any
    ) -> str | None:
        """Record an error: an exception (its type and message) or an error type name."""
        try:
            if isinstance(error, BaseException):
                error_type, text = type(error).__name__, describe(error)
            else:
                error_type, text = str(error), ""
            return self._point(
                "error",
                fields,
                error_type=error_type,
                error_message=text if message is None else message,
            )
        except Exception as exc:
            self._internal_error(exc)
            return None

    def assertion_failed(
        self, name: str, *, expected: Any = "", actual: Any = "", **fields: Any
    ) -> str | None:
        """Record a failed assertion on the app's output."""
        return self._point(
            "assertion_failed", fields, assertion_name=name, expected=str(expected),
            actual=str(actual),
        )  # fmt: skip

    def check(
        self, condition: object, name: str, *, expected: Any = "", actual: Any = "", **fields: Any
    ) -> bool:
        """``bool(condition)``; records ``assertion_failed`` when it is false."""
        ok = bool(condition)
        if not ok:
            self.assertion_failed(name, expected=expected, actual=actual, **fields)
        return ok

    def hallucination(
        self, method: str, *, confidence: float, severity: str = "medium", **fields: Any
    ) -> str | None:
        """Record a detected hallucination (``confidence`` in [0, 1])."""
        return self._point(
            "hallucination_detected", fields, detection_method=method, confidence=confidence,
            severity=severity,
        )  # fmt: skip

    def track(self, event: Mapping[str, Any], *, idempotency_key: str | None = None) -> str | None:
        """Queue any event (``event_type`` required): the tracker's identity fields, an
        ``event_id`` and the current time are filled in where missing. Returns the event id."""
        try:
            event_type = str(event.get("event_type", ""))
            out = self._new(event_type, idempotency_key, event)
            out.setdefault("timestamp", time.time())
            self._put(out)
            return str(out["event_id"])
        except Exception as exc:
            self._internal_error(exc)
            return None

    # ------------------------------------------------------------------ lifecycle

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait up to ``timeout`` s until everything queued is acknowledged; True if it was.
        Returns within its timeout whatever the broker does."""
        try:
            return self._sender.wait_idle(timeout)
        except Exception as exc:
            self._internal_error(exc)
            return False

    def close(self, timeout: float = 5.0) -> bool:
        """Flush for up to ``timeout`` s, then stop the sender; later events are dropped.
        Idempotent. True if everything queued was delivered."""
        try:
            self._closed = True
            ok = self._sender.stop(timeout)
            _TRACKERS.discard(self)
            return ok
        except Exception as exc:
            self._internal_error(exc)
            return False

    async def aflush(self, timeout: float = 5.0) -> bool:
        """``flush`` for asyncio code: waits in a worker thread, not on the loop."""
        import asyncio

        return await asyncio.to_thread(self.flush, timeout)

    async def aclose(self, timeout: float = 5.0) -> bool:
        import asyncio

        return await asyncio.to_thread(self.close, timeout)

    def stats(self) -> Stats:
        sender, queue = self._sender, self._queue
        pending = sender.pending()
        return Stats(
            queued=queue.taken + len(queue),
            sent=sender.sent,
            dropped=queue.dropped,
            failed=sender.failed,
            retried=sender.retried,
            pending=pending,
        )

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Tracker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ internals

    def _new(
        self,
        event_type: str,
        idempotency_key: str | None,
        fields: Mapping[str, Any],
        *,
        need_id: bool = True,
    ) -> dict[str, Any]:
        # Without ``need_id`` a random id is left to the sender thread (``_events.finalize``).
        event = {**self._base, **fields}
        event["event_type"] = event_type
        if "event_id" not in event and (need_id or idempotency_key is not None):
            event["event_id"] = event_id(self.project_id, event_type, idempotency_key)
        return event

    def _point(self, event_type: str, fields: Mapping[str, Any], **typed: Any) -> str | None:
        try:
            event = self._new(event_type, fields.get("idempotency_key"), fields)
            event.pop("idempotency_key", None)
            event.update(typed)
            event["timestamp"] = time.time()
            _inherit(event)
            self._put(event)
            return str(event["event_id"])
        except Exception as exc:
            self._internal_error(exc)
            return None

    def _error_from(self, exc: Exception, message: str, span_event: dict[str, Any]) -> None:
        event = self._new("error", None, {}, need_id=False)
        event["error_type"] = type(exc).__name__
        event["error_message"] = message
        event["timestamp"] = span_event.get("timestamp") or time.time()
        for key in ("run_id", "session_id", "model", "parent_id"):
            if key in span_event:
                event[key] = span_event[key]
        event["status"] = span_event.get("status", "error")
        source = span_event.get("event_id")
        if source is None:
            source = span_event["event_id"] = take_id()
        event["source_event_id"] = source
        self._put(event)

    def _put(self, event: dict[str, Any]) -> None:
        """The hot path: a length check and an append; starts the sender on first use.
        ``EventQueue.put`` inlined, and no property read: each call costs on a cold core."""
        if self._closed:
            self._queue.drop(1, "tracker closed")
            return
        queue = self._queue
        items = queue.items
        if len(items) >= queue.maxsize:
            queue.drop(1, "queue full")
            return
        items.append(event)
        if not self._started:
            self._start_sender()
        elif len(items) >= self._batch_records:
            self._sender.batch_ready()

    def _start_sender(self) -> None:
        with self._start_lock:
            if not self._sender.started:
                self._sender.start()
            self._started = True

    def _internal_error(self, exc: BaseException) -> None:
        with contextlib.suppress(Exception):  # nothing more can be done quietly
            self._queue.drop(1, f"internal error {exc!r}")

    def _after_fork_in_child(self) -> None:
        # The parent's thread does not exist here and its locks may be held: start over.
        self._fresh()


def _inherit(event: dict[str, Any]) -> None:
    run = RUN.get()
    if run is not None:
        event.setdefault("run_id", run.run_id)
        if run.session_id is not None:
            event.setdefault("session_id", run.session_id)
    parent = PARENT.get()
    if parent is not None:
        event.setdefault("parent_id", parent)


_TRACKERS: weakref.WeakSet[Tracker] = weakref.WeakSet()


def _close_all_at_exit() -> None:
    for tracker in list(_TRACKERS):
        try:
            tracker.close(tracker.exit_timeout_s)
        except Exception:
            logger.exception("ingestor.sdk: closing a tracker at exit failed")


def _reset_in_child() -> None:
    reseed()
    for tracker in list(_TRACKERS):
        tracker._after_fork_in_child()


atexit.register(_close_all_at_exit)
os.register_at_fork(after_in_child=_reset_in_child)
