"""When ``ingestor up`` restarts the embedded broker. Pure.

Tansu 0.6.0's memory storage honours neither retention nor DeleteRecords, so its memory grows
with everything sent since it started (ARCHITECTURE.md, "Known limits"). What bounds it is a
restart: the broker's memory is only a buffer in front of ClickHouse, and after a restart the
pipeline resumes from ClickHouse as it does after a whole-tree kill (transcripts from
``file_positions``, the session table re-seeded). A restart is *planned* only when every record
that exists nowhere but in the broker is stored: either everything is (caught up), or the worker
is behind on transcript lines alone, which the watcher sends again from ClickHouse's resume
point (so a long backfill is bounded too, not only the steady state). SDK events and ledger
entries have no other copy, so none may be waiting. A broker that *died* is restarted whatever
the state.

A planned restart also waits for progress: the worker must have stored something since the
broker started, or be caught up. A bound that a fresh broker exceeds again before the worker's
first batch (a tight bound, a slow machine, Tansu's slow first group join) would otherwise
restart it over and over with nothing ever stored.
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

    def over(self, rss_bytes: int | None) -> bool:
        """Above the bound (never when the bound is 0 or the size unknown)."""
        return self.max_rss_bytes > 0 and rss_bytes is not None and rss_bytes > self.max_rss_bytes

    def decide(
        self,
        *,
        alive: bool,
        rss_bytes: int | None,
        only_replayable: bool,
        progressed: bool = True,
    ) -> BrokerAction:
        """``only_replayable``: nothing the broker holds is lost with it; ``progressed``: the
        worker stored something since this broker started, or is caught up (see the module)."""
        if not alive:
            return BrokerAction.RECOVER
        if only_replayable and progressed and self.over(rss_bytes):
            return BrokerAction.RECYCLE
        return BrokerAction.KEEP

    def restarted(self) -> None:
        self.restarts += 1
