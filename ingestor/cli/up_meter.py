"""What ``up`` knows of its progress: the watcher's stats file and the worker's ``/stats/``,
read into a ``Snapshot`` (``cli/progress.py``) at each look, and what the supervise loop asks of
them: is everything present stored (``--once``), has the worker stored anything since the broker
started (``local/recycle.py``).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from ingestor.cli.progress import Rate, Snapshot, Tally, eta
from ingestor.local.stack import worker_stats
from ingestor.settings import Settings

__all__ = ["Meter"]


class Meter:
    """Reads the watcher's stats file and the worker's ``/stats/`` into a ``Snapshot``, with
    counters carried across child restarts (``Tally``) and rates over the last seconds."""

    def __init__(self, settings: Settings, stats_file: Path) -> None:
        self.settings, self.stats_file = settings, stats_file
        self.tally = Tally()
        self.rate = Rate()
        self.worker: dict[str, Any] = {}
        self.only_replayable = False
        self.caught_up = False
        self.watcher_idle = False  # at the last look
        self.watcher_stopped = False  # stopped on purpose: what it sent is all there will be
        # It had read every byte of the files it followed when it was stopped.
        self.watcher_read_all = False
        # (messages, envelopes, records and dead letters stored) when the broker started
        self.since: tuple[int, int, int] = (0, 0, 0)

    def new_broker(self) -> None:
        """Envelopes sent to a broker that was replaced may never be handled (the new watcher
        sends their lines again): count both from here on."""
        # The stopped watcher's last counts first: read later, they would count envelopes sent
        # to the old broker as awaited from the new one, and `--once` would wait forever.
        self._read_watcher()
        tally = self.tally
        stored = tally.total("records") + tally.total("dead")
        self.since = (tally.total("messages"), tally.total("envelopes"), stored)
        self.caught_up = False
        self.watcher_read_all = False

    def watcher_read_everything(self) -> bool:
        """The watcher's last report: idle, or every byte of the files it follows read."""
        watch = self._read_watcher()
        if "bytes_total" not in watch:
            return False
        done, total = int(watch.get("bytes_done", 0)), int(watch["bytes_total"])
        return bool(watch.get("idle")) or done >= total

    def watcher_turned_idle(self) -> bool:
        """Whether the watcher says it is idle now and did not at the last look: its stats file
        alone is read, cheap enough for every tick."""
        return not self.watcher_idle and (
            self.watcher_stopped or bool(self._read_watcher().get("idle"))
        )

    def progressed(self) -> bool:
        """Stored something since the broker started, or caught up (``local/recycle.py``)."""
        stored = self.tally.total("records") + self.tally.total("dead")
        return self.caught_up or stored > self.since[2]

    def only_replayable_now(self, timeout_s: float) -> bool:
        """Ask the worker now: is it behind on no events or ledger partition?"""
        s = self.settings
        stats = worker_stats(s.web_host, s.web_port, timeout_s=timeout_s)
        return bool(stats.get("behind_unreplayable") == 0)

    def look(self, now: float, *, ask_worker: bool = True) -> tuple[Snapshot, int | None]:
        """The snapshot, and when everything present is stored the worker's message count
        (else None)."""
        watch = self._read_watcher()
        if ask_worker:
            self.worker = worker_stats(self.settings.web_host, self.settings.web_port)
        stats = self.worker
        counts = stats.get("counts", {})
        tally = self.tally
        if "run_id" in stats:
            tally.update("records", stats["run_id"], int(counts.get("records_stored", 0)))
            tally.update("dead", stats["run_id"], int(counts.get("dead_letters_stored", 0)))
            tally.update("messages", stats["run_id"], int(counts.get("messages", 0)))
        read, read_bytes = tally.total("lines_read"), tally.total("bytes_read")
        stored, dead = tally.total("records"), tally.total("dead")
        done_b, total_b = int(watch.get("bytes_done", 0)), int(watch.get("bytes_total", 0))
        rates = self.rate.add(now, read, done_b)
        lines_per_s, bytes_per_s = rates if rates is not None else (None, None)
        # What is present is stored when the watcher is idle and the worker is behind nothing:
        # it handled at least every message the watcher sent (its view of the high-watermark
        # alone can be older than the watcher's last send) and stored what it handled.
        # Events and ledger entries exist only in the broker until stored (local/recycle.py);
        # those the worker holds it stores as it stops (worker/stop.py).
        self.only_replayable = stats.get("behind_unreplayable") == 0
        messages, envelopes, _ = self.since
        handled = tally.total("messages") - messages >= tally.total("envelopes") - envelopes
        watcher_idle = self.watcher_stopped or bool(watch.get("idle"))
        self.watcher_idle = watcher_idle
        idle = watcher_idle and stats.get("behind") == 0 and handled
        done = idle and not stats.get("pending_rows") and not stats.get("pending_messages")
        self.caught_up = done
        snapshot = Snapshot(
            files=int(watch.get("files", 0)),
            lines_read=read,
            records_stored=stored,
            dead_letters=dead,
            bytes_done=done_b,
            bytes_total=total_b,
            lines_per_s=lines_per_s,
            eta_s=eta(total_b - done_b, bytes_per_s) if read_bytes else None,
            caught_up=done,
        )
        return snapshot, (int(counts.get("messages", 0)) if done else None)

    def _read_watcher(self) -> dict[str, Any]:
        """The watcher's stats file, its counts carried into the tally."""
        watch: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            watch = json.loads(self.stats_file.read_text())
        if "pid" in watch:  # else no news: the totals stand
            tally = self.tally
            tally.update("lines_read", watch["pid"], int(watch.get("lines_read", 0)))
            tally.update("bytes_read", watch["pid"], int(watch.get("bytes_read", 0)))
            # Kafka messages, as the worker counts them (a bundle carries several envelopes).
            tally.update("envelopes", watch["pid"], int(watch.get("messages_sent", 0)))
        return watch

    @staticmethod
    def progress(snapshot: Snapshot) -> dict[str, int]:
        return {
            "files": snapshot.files,
            "lines_read": snapshot.lines_read,
            "records_stored": snapshot.records_stored,
            "dead_letters": snapshot.dead_letters,
        }
