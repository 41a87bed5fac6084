"""When ``ingestor up`` restarts the embedded broker. Pure.

Tansu 0.6.0's memory storage honours neither retention nor DeleteRecords, so its memory grows
with everything sent since it started (ARCHITECTURE.md, "Known limits"). What bounds it is a
restart: the broker's memory is only a buffer in front of ClickHouse, and after a restart the
pipeline resumes from ClickHouse as it does after a whole-tree kill (transcripts from
``file_positions``, the session table re-seeded). A restart is *planned* only when nothing is in
flight — the worker behind nothing with nothing pending and the watcher idle — so no SDK event
the broker acknowledged is lost with it; a broker that *died* is restarted whatever the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["BrokerAction", "BrokerRecycle"]


class BrokerAction(Enum):
    KEEP = "keep"
    RECYCLE = "recycle"  # planned: caught up and over the memory bound
    RECOVER = "recover"  # the broker died: restart it and resume from ClickHouse


@dataclass
class BrokerRecycle:
    """``max_rss_bytes`` 0 disables planned restarts (a dead broker is still recovered)."""

    max_rss_bytes: int
    restarts: int = 0

    def decide(self, *, alive: bool, rss_bytes: int | None, caught_up: bool) -> BrokerAction:
        if not alive:
            return BrokerAction.RECOVER
        if (
            self.max_rss_bytes > 0
            and caught_up
            and rss_bytes is not None
            and rss_bytes > self.max_rss_bytes
        ):
            return BrokerAction.RECYCLE
        return BrokerAction.KEEP

    def restarted(self) -> None:
        self.restarts += 1
