"""Stopping the worker within a bound on SIGTERM or Ctrl-C.

Faust's own stop waits in ``wait_empty`` until every event taken from the stream is acked; ours
are acked only once their batch is stored, and the timer that stores an aged batch stops first,
so that wait lasted until the supervisor killed the process (~30 s). Nothing held needs it:
what is acked is in ClickHouse, and what is not is delivered again (ARCHITECTURE.md, "Exactness
under crashes"). So on a signal the worker stores what it holds if that is quick, stops Faust
without ``wait_empty`` (it still commits what was acked and leaves the group), and exits hard
once ``grace_s`` has passed whatever is still running.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from faust.worker import Worker

__all__ = ["BoundedWorker", "start_tables_at_once"]

log = logging.getLogger(__name__)


class BoundedWorker(Worker):
    """A Faust ``Worker`` that stops within ``grace_s`` of SIGTERM or SIGINT (exit status 0).

    ``store`` is awaited first, at most ``flush_s``: it stores and acks what the agents hold.
    """

    def __init__(
        self,
        app: Any,
        *,
        store: Callable[[], Awaitable[None]],
        grace_s: float = 3.5,
        flush_s: float = 1.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self._store = store
        self._grace_s = grace_s
        self._flush_s = flush_s
        self._stopping = False

    def _on_sigint(self) -> None:
        self._bounded_stop(signal.SIGINT)

    def _on_sigterm(self) -> None:
        self._bounded_stop(signal.SIGTERM)

    def _bounded_stop(self, signum: signal.Signals) -> None:
        if self._stopping:
            return
        self._stopping = True
        log.info("%s: stopping (at most %.1fs)", signum.name, self._grace_s)
        deadline = threading.Timer(self._grace_s, os._exit, (0,))
        deadline.daemon = True
        deadline.start()
        asyncio.ensure_future(self._stop_after_store(signum), loop=self.loop)

    async def _sentinel_task(self) -> None:
        # mode sleeps 1 s here before closing the loop; everything was gathered already, so one
        # turn of the loop is enough, and `up --once` is a second shorter.
        await asyncio.sleep(0)

    async def _stop_after_store(self, signum: signal.Signals) -> None:
        try:
            await asyncio.wait_for(self._store(), self._flush_s)
        except Exception:  # noqa: BLE001 - whatever it was, the rows are delivered again
            log.warning("could not store the held batch before stopping", exc_info=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "reconfiguring late": read only at stop, as meant
            self.app.conf.stream_wait_empty = False
        self._schedule_shutdown(signum)


def start_tables_at_once() -> None:
    """Make Faust's table manager start without its 1 s sleep.

    ``TableManager.on_start`` sleeps a second so that tables declared after the app started are
    registered too; ours are all declared in ``build_app``, before the worker starts, and the
    second is on the path of every start (the consumer subscribes only after it).
    """
    from faust.tables.manager import TableManager

    async def on_start(self: Any) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()

    TableManager.on_start = on_start  # type: ignore[method-assign]
