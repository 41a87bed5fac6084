"""Timed scopes: prompt calls, tool calls, agent steps, and the run that groups steps.

A ``Span`` is a context manager (``with`` and ``async with``) and a decorator (sync or async
functions; each call gets a fresh copy). On exit it stamps the start time and latency, sets the
status from the exception that left the scope, if any (``TimeoutError`` → ``timeout``,
``CancelledError`` → ``cancelled``, else ``error``), records that exception as an ``error`` event
too, and queues the event. The host's exception always propagates; the SDK's own never does.

Runs and parents travel in context variables, so they follow threads' and asyncio tasks' own
contexts: a step inside ``tracker.run()`` gets the run id and the next step number, and any event
inside a step names it as ``parent_id``.
"""

from __future__ import annotations

import functools
import itertools
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ingestor.sdk._events import RESPONSE, describe, take_id, text_of

if TYPE_CHECKING:
    from ingestor.sdk._tracker import Tracker

__all__ = ["PARENT", "RUN", "Run", "Span"]

F = TypeVar("F", bound=Callable[..., Any])


class Run:
    """One agent run: its id, session, and the counter that numbers its steps."""

    __slots__ = ("_steps", "_token", "run_id", "session_id")

    def __init__(self, run_id: str | None = None, session_id: str | None = None) -> None:
        self.run_id = run_id or take_id()
        self.session_id = session_id
        self._steps = itertools.count()
        self._token: Token[Run | None] | None = None

    def next_step(self) -> int:
        return next(self._steps)

    def __enter__(self) -> Run:
        self._token = RUN.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            RUN.reset(self._token)
            self._token = None

    async def __aenter__(self) -> Run:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__()

    def __call__(self, fn: F) -> F:
        """As a decorator: every call is a new run (a fresh id)."""
        session_id = self.session_id
        import inspect  # only when decorating: it is slow to import

        if inspect.iscoroutinefunction(fn):

            async def arun(*args: Any, **kwargs: Any) -> Any:
                with Run(None, session_id):
                    return await fn(*args, **kwargs)

            return cast(F, functools.wraps(fn)(arun))

        def run(*args: Any, **kwargs: Any) -> Any:
            with Run(None, session_id):
                return fn(*args, **kwargs)

        return cast(F, functools.wraps(fn)(run))


RUN: ContextVar[Run | None] = ContextVar("ingestor_sdk_run", default=None)
PARENT: ContextVar[str | None] = ContextVar("ingestor_sdk_parent", default=None)


class Span:
    """A timed event; build one with ``Tracker.prompt``, ``.tool`` or ``.step``."""

    __slots__ = ("_event", "_parent_token", "_t0", "_tracker", "_is_step")

    def __init__(self, tracker: Tracker, event: dict[str, Any], *, is_step: bool = False):
        self._tracker = tracker
        self._event = event
        self._is_step = is_step
        self._t0 = 0.0
        self._parent_token: Token[str | None] | None = None

    @property
    def event_id(self) -> str:
        """The event's id (made here if the sender would otherwise have made it)."""
        event = self._event
        if "event_id" not in event:
            event["event_id"] = take_id()
        return str(event["event_id"])

    def set(self, **fields: Any) -> Span:
        """Add or replace fields of the event (tokens, cost, model, tags, anything)."""
        self._event.update(fields)
        return self

    def response(
        self,
        text: Any = None,
        *,
        tokens_input: int | None = None,
        tokens_output: int | None = None,
        tokens_cache_read: int | None = None,
        tokens_cache_write: int | None = None,
        cost_usd: Any = None,
        model: str | None = None,
        finish_reason: str | None = None,
    ) -> Span:
        """What the model answered: its text (hashed and sized, sent only with
        ``capture_text=True``) and usage. Fields left ``None`` are not set."""
        # Plain tests, no loop over a tuple of pairs: this runs on the caller's thread.
        event = self._event
        if text is not None:
            event[RESPONSE] = text_of(text)
        if tokens_input is not None:
            event["tokens_input"] = tokens_input
        if tokens_output is not None:
            event["tokens_output"] = tokens_output
        if tokens_cache_read is not None:
            event["tokens_cache_read"] = tokens_cache_read
        if tokens_cache_write is not None:
            event["tokens_cache_write"] = tokens_cache_write
        if cost_usd is not None:
            event["cost_usd"] = cost_usd
        if model is not None:
            event["model"] = model
        if finish_reason is not None:
            event["finish_reason"] = finish_reason
        return self

    def fail(self, status: str = "error", message: str | None = None) -> Span:
        """Mark the call failed without an exception (a refusal, a bad tool result)."""
        self._event["status"] = status
        if message is not None:
            self._event["error_message"] = message
        return self

    # ------------------------------------------------------------------ scope

    def __enter__(self) -> Span:
        # Run and parent are the context's when the scope is entered (a decorated function's
        # caller's), unless given explicitly. Written out, not in helpers: the host's thread.
        event = self._event
        run = RUN.get()
        if run is not None:
            event.setdefault("run_id", run.run_id)
            if run.session_id is not None:
                event.setdefault("session_id", run.session_id)
            if self._is_step and "step_number" not in event:
                event["step_number"] = run.next_step()
        parent = PARENT.get()
        if parent is not None:
            event.setdefault("parent_id", parent)
        event["timestamp"] = time.time()
        if self._is_step:
            event.setdefault("step_number", 0)
            step_id = event.get("event_id")
            if step_id is None:
                step_id = event["event_id"] = take_id()
            self._parent_token = PARENT.set(step_id)
        self._t0 = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        elapsed = time.perf_counter() - self._t0
        try:
            if self._parent_token is not None:
                PARENT.reset(self._parent_token)
                self._parent_token = None
            event = self._event
            event["latency_ms"] = int(elapsed * 1000)
            if exc is not None:
                self._failed(event, exc)
            self._tracker._put(event)
        except Exception as error:  # never into the host
            self._tracker._internal_error(error)

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def _failed(self, event: dict[str, Any], exc: BaseException) -> None:
        aio = sys.modules.get("asyncio")  # not imported: then it cannot be its cancellation
        if aio is not None and isinstance(exc, aio.CancelledError):
            event["status"] = "cancelled"
        elif isinstance(exc, TimeoutError):
            event["status"] = "timeout"
        else:
            event["status"] = "error"
        message = describe(exc)
        if event.get("event_type") == "tool_call":
            event.setdefault("error_message", message)
        if isinstance(exc, Exception):  # not KeyboardInterrupt, SystemExit, cancellation
            self._tracker._error_from(exc, message, event)

    # ------------------------------------------------------------------ decorator

    def _copy(self) -> Span:
        event = dict(self._event)
        event.pop("event_id", None)
        return Span(self._tracker, event, is_step=self._is_step)

    def __call__(self, fn: F) -> F:
        template = self
        import inspect  # only when decorating: it is slow to import

        if inspect.iscoroutinefunction(fn):

            async def awrapped(*args: Any, **kwargs: Any) -> Any:
                with template._copy():
                    return await fn(*args, **kwargs)

            return cast(F, functools.wraps(fn)(awrapped))

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with template._copy():
                return fn(*args, **kwargs)

        return cast(F, functools.wraps(fn)(wrapped))
