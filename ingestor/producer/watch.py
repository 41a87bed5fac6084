"""The file watcher: finds transcript files, tails them, sends their lines in envelopes.

Order (what makes exact dedup possible, see ARCHITECTURE.md): every pass visits files in ccusage's
order — by first timestamp, files without one last, ties by path — and reads each file to its end
before the next. On startup that is ccusage's backfill order; afterwards the same stable order.
Envelopes are keyed by project and each is acknowledged before the next is sent, so one project's
envelopes reach its partition in that order.

Positions advance only after an acknowledgement; the checkpoint is saved at the end of every pass
and, during a long pass, every ``checkpoint_interval_s`` of the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from ingestor.errors import BrokerError
from ingestor.producer.checkpoint import Checkpoint
from ingestor.producer.discover import find_jsonl, order_key, project_of
from ingestor.producer.lines import ParsedChunk, pack
from ingestor.producer.sender import Sender
from ingestor.producer.tail import Tail
from ingestor.settings import Settings, default_watch_dirs
from ingestor.wire import TranscriptSource, encode_envelope

__all__ = ["WatchStats", "Watcher"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(slots=True)
class WatchStats:
    """Progress counters; lines and bytes count only what the broker acknowledged."""

    files: int = 0  # files currently followed
    lines_read: int = 0  # records sent (bad lines included, blank lines not)
    bytes_read: int = 0  # file bytes the positions moved past
    bad_lines: int = 0
    envelopes_sent: int = 0


class Watcher:
    """Follows every ``*.jsonl`` under ``dirs`` (default: ``default_watch_dirs()``).

    ``run_once`` and ``run`` raise ``BrokerError`` / ``OSError`` from the sender and file system;
    ``run`` retries broker errors on its next poll. Not safe to run twice concurrently.
    """

    def __init__(
        self,
        settings: Settings,
        dirs: Sequence[Path | str] | None,
        sender: Sender,
        checkpoint: Checkpoint,
        *,
        clock: Clock = time.monotonic,
        checkpoint_interval_s: float = 1.0,
    ) -> None:
        self._settings = settings
        self._dirs = list(dirs) if dirs is not None else list(default_watch_dirs())
        self._sender = sender
        self._checkpoint = checkpoint
        self._clock = clock
        self._checkpoint_interval_s = checkpoint_interval_s
        self._topic = settings.topic("transcripts")
        self._tails: dict[str, Tail] = {}
        self._last_save = clock()
        self.stats = WatchStats()

    async def run(self, stop: asyncio.Event) -> None:
        """Pass after pass until ``stop`` is set, ``watch_poll_interval_s`` apart.

        A ``BrokerError`` is logged and the pass is retried from the acknowledged positions.
        """
        while not stop.is_set():
            try:
                await self.run_once()
            except BrokerError as exc:
                log.warning("watcher: %s; retrying from the acknowledged positions", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._settings.watch_poll_interval_s)

    async def run_once(self) -> int:
        """One pass: discover files, send everything complete after each position, save.

        Returns the number of lines sent. On an error the positions acknowledged so far are
        saved and the error propagates.
        """
        self._discover()
        tails = sorted(self._tails.values(), key=lambda t: order_key(t.first_ts(), t.path))
        sent = 0
        try:
            for tail in tails:
                if tail.changed():
                    sent += await self._drain(tail)
        finally:
            self._checkpoint.save()
            self._last_save = self._clock()
        return sent

    def _discover(self) -> None:
        found = find_jsonl(self._dirs)
        present = set(found)
        for path in [p for p in self._tails if p not in present]:
            del self._tails[path]  # gone; if it comes back, its inode tells what it is
        for path in found:
            if path not in self._tails:
                project = project_of(path)
                self._tails[path] = Tail(
                    path,
                    project,
                    self._checkpoint.get(path),
                    bad_line_max_bytes=self._settings.bad_line_max_bytes,
                    max_record_bytes=self._max_record_bytes(path, project),
                )
        self.stats.files = len(self._tails)

    def _max_record_bytes(self, path: str, project: str) -> int:
        # The largest record that still fits an envelope alone, for the longest header this
        # file can have (huge generation, long timestamp).
        header = TranscriptSource(path, project, 2**63, "x" * 64)
        overhead = len(encode_envelope("transcript", [], header))
        return max(self._settings.envelope_max_bytes - overhead - 1, 1)

    async def _drain(self, tail: Tail) -> int:
        sent = 0
        key = tail.project.encode()
        while (chunk := tail.read()) is not None:
            sent += await self._send_chunk(tail, key, chunk)
            if self._clock() - self._last_save >= self._checkpoint_interval_s:
                self._checkpoint.save()
                self._last_save = self._clock()
        return sent

    async def _send_chunk(self, tail: Tail, key: bytes, chunk: ParsedChunk) -> int:
        settings, stats = self._settings, self.stats
        source = tail.source
        overhead = len(encode_envelope("transcript", [], source))
        stops = pack(
            [len(r) for r in chunk.records],
            overhead=overhead,
            max_records=settings.envelope_max_records,
            max_bytes=settings.envelope_max_bytes,
        )
        start, position = 0, chunk.start
        for number, stop in enumerate(stops, 1):
            records = [orjson.Fragment(r) for r in chunk.records[start:stop]]
            value = encode_envelope("transcript", records, source)
            await self._sender.send(self._topic, key, value)
            # Blank lines between envelopes go with the earlier one; the last takes the rest.
            end = chunk.end if number == len(stops) else chunk.ends[stop - 1]
            self._checkpoint.set(tail.path, tail.commit(end))
            stats.envelopes_sent += 1
            stats.lines_read += stop - start
            stats.bytes_read += end - position
            start, position = stop, end
        if not stops:  # only blank lines
            self._checkpoint.set(tail.path, tail.commit(chunk.end))
            stats.bytes_read += chunk.end - chunk.start
        stats.bad_lines += chunk.bad_lines  # counted once the whole chunk is acknowledged
        return len(chunk.records)
