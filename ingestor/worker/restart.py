"""In-place restarts: how the worker has records Faust skipped delivered again.

A hole in an input partition's offsets (``guard.missing``, found by the agent) or a partition whose
records stopped arriving (``guard.remedy``, found by the watchdog) is mended by replacing the
process with a fresh image (``execv``, same pid) that seeks to the committed offsets
(ARCHITECTURE.md, "Faust skipping records"). The restarts are counted across images and bounded,
and count anew once a store acked records (``reset_restarts``, from the flusher).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import NoReturn

import faust

from ingestor.worker.exits import EXIT_OFFSET_GAP

__all__ = ["reset_restarts", "restart_committed", "restart_in_place"]

log = logging.getLogger(__name__)


async def restart_committed(app: faust.App, store: Callable[[], Awaitable[None]]) -> NoReturn:
    """Store and commit what was handled before a hole, then restart in place.

    ``store`` stores and acks everything the agents hold, and waits for it (``flusher.flush``
    with ``wait``). Everything held precedes the hole (offsets are checked contiguous per
    partition), so storing and acking it commits no record past the hole. It matters: the hole
    comes from a partition without a committed offset, and a restarted image that still finds
    none there runs into the same hole again — restart after restart, one envelope at a time at
    best. With the handled records committed, the new image seeks to a real offset and reads on
    at full speed.
    """
    try:
        await store()
        await app.consumer.commit()
    except Exception:  # noqa: BLE001 - restart anyway: the committed offsets are still right
        log.warning("could not commit before restarting", exc_info=True)
    restart_in_place()


def restart_in_place() -> NoReturn:
    """Replace this process with a fresh worker (same pid, same arguments), without acking.

    Nothing is committed past what was acked; the new image rejoins and seeks to the committed
    offsets. Bounded, so that a persistent fault ends in an exit a supervisor can see.
    """
    restarts = int(os.environ.get(_RESTARTS_ENV, "0"))
    if restarts >= 5:
        os._exit(EXIT_OFFSET_GAP)
    os.environ[_RESTARTS_ENV] = str(restarts + 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def reset_restarts() -> None:
    """Records were stored and acked: in-place restarts count anew."""
    os.environ.pop(_RESTARTS_ENV, None)


_RESTARTS_ENV = "INGESTOR_WORKER_RESTARTS"
