"""The file watcher: finds transcript files, tails them, sends their lines in envelopes.

Order (what makes exact dedup possible, see ARCHITECTURE.md): every pass visits files in ccusage's
order — by path — and reads each file to its end before the next. On startup that is ccusage's
backfill order; afterwards the same stable order.
Envelopes are keyed by the dedup scope, so they all go to one partition, which stores them in send
order (see ``sender.py``).

Envelopes are pipelined: up to ``max_in_flight`` envelopes (``max_in_flight_bytes``) are queued at
the sender, their delivery futures in a FIFO. A file's checkpoint position advances only when the
envelope before it *and every earlier one* is acknowledged; a ``Tail``'s own position runs ahead,
to what has been queued. On a failed delivery the watcher stops, waits for what is still in flight,
keeps every position at the last envelope acknowledged in order, forgets the tails that ran ahead
(the next pass rebuilds them from the checkpoint, as a restart would, and resends the rest) and
raises ``BrokerError``. The checkpoint is saved at the end of a ``run_once`` pass, after a failed
one, when ``run`` stops, and meanwhile every ``checkpoint_interval_s`` of the injected clock or 20
times as long as the last save took, whichever is longer: a save writes every file's position
(68k files: 13 MB). Encoding each of them took 75 ms, so a save once a second took 7% of a
5M-line backfill, and one a pass a file event while following files; ``checkpoint.py`` now
encodes only the positions that changed (18 ms of CPU, the rest of a save is its fsync). A
checkpoint that lags only makes lines be sent again.

A file that disappears gets a tombstone: an envelope without records for a new generation (its
``generation + 1``), which makes the older generations stop counting; once the broker acknowledged
it the checkpoint marks the file ``gone`` and it is not sent again. Before that, a crash or a
failed delivery leaves the file not gone and the tombstone is sent again (the same one: stored
idempotently). Only files under a watched directory that exists are buried, so an unmounted tree
is not taken for an emptied one. An envelope without records is also what announces a file
replaced or truncated with no complete line yet (``tail.py``).

A file that cannot be read (no permission, replaced by a symlink or a FIFO, an I/O error) is
skipped with one warning, not one a pass, and tried again on every pass; the rest of the tree goes
on. Nothing of it was queued, so its position stays where it was.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ingestor.errors import BrokerError
from ingestor.producer.changes import Changes
from ingestor.producer.checkpoint import Checkpoint, FilePosition
from ingestor.producer.discover import find_jsonl, order_key, project_of
from ingestor.producer.lines import ParsedChunk, envelopes
from ingestor.producer.sender import Sender
from ingestor.producer.tail import Tail
from ingestor.settings import Settings, default_watch_dirs
from ingestor.wire import TranscriptSource, encode_bundle, encode_envelope

__all__ = ["MAX_IN_FLIGHT", "MAX_IN_FLIGHT_BYTES", "WatchStats", "Watcher"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]

MAX_IN_FLIGHT = 64  # envelopes queued at the sender and not yet acknowledged
MAX_IN_FLIGHT_BYTES = 8 << 20  # their bytes (one envelope alone may exceed it)
_BUNDLE_BYTES = len(encode_bundle([]))  # a bundle's own bytes around its envelopes


@dataclass(slots=True)
class WatchStats:
    """Progress counters; lines and bytes count only what the broker acknowledged."""

    files: int = 0  # files currently followed
    lines_read: int = 0  # records sent (bad lines included, blank lines not)
    bytes_read: int = 0  # file bytes the positions moved past
    bad_lines: int = 0
    envelopes_sent: int = 0  # acknowledged ones
    messages_sent: int = 0  # the Kafka messages that carried them (a bundle carries several)


@dataclass(slots=True, eq=False)
class _Queued:
    """One envelope handed to the sender (``delivery`` None until its bundle is sent).

    Once it and everything before it is acknowledged, ``path`` moves to ``position``. The
    envelopes of one bundle share its delivery; the first carries the message (``message``) and
    its size, which the in-flight bounds count.
    """

    delivery: asyncio.Future[None] | None
    path: str
    position: FilePosition
    size: int
    lines: int
    bytes: int
    bad_lines: int
    message: bool = True


class Watcher:
    """Follows every ``*.jsonl`` under ``dirs`` (default: ``default_watch_dirs()``).

    ``run_once`` and ``run`` raise ``BrokerError`` from the sender; ``run`` retries it on its next
    poll. A file that cannot be read is skipped and retried, never an error of the pass. Not safe
    to run twice concurrently.
    ``max_in_flight`` / ``max_in_flight_bytes`` bound the envelopes sent and not yet acknowledged.
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
        max_in_flight: int = MAX_IN_FLIGHT,
        max_in_flight_bytes: int = MAX_IN_FLIGHT_BYTES,
        keep: Callable[[ParsedChunk], ParsedChunk] | None = None,
    ) -> None:
        if max_in_flight < 1 or max_in_flight_bytes < 1:
            raise ValueError("max_in_flight and max_in_flight_bytes must be >= 1")
        self._settings = settings
        self._dirs = list(dirs) if dirs is not None else list(default_watch_dirs())
        self._sender = sender
        self._checkpoint = checkpoint
        self._clock = clock
        self._checkpoint_interval_s = checkpoint_interval_s
        self._keep = keep  # a backfill's date window (producer/window.py), applied before sending
        self._topic = settings.topic("transcripts")
        self._tails: dict[str, Tail] = {}
        self._last_save = clock()
        self._save_every = checkpoint_interval_s
        self._max_in_flight = max_in_flight
        self._max_in_flight_bytes = max_in_flight_bytes
        self._queue: deque[_Queued] = deque()  # in send order
        # Envelopes held for the next bundle (``_hold``), in order.
        self._held: list[tuple[bytes, _Queued]] = []
        self._held_bytes = 0
        self._in_flight = 0  # envelopes in the queue
        self._in_flight_bytes = 0
        self._ran_ahead: set[str] = set()  # files whose tail passed an unacknowledged envelope
        self._broken = False  # a delivery failed: nothing after it may be acknowledged
        self._unreadable: dict[str, str] = {}  # path -> the error last warned about
        self.stats = WatchStats()

    @property
    def dirs(self) -> list[Path | str]:
        """The directories followed."""
        return list(self._dirs)

    async def run(self, stop: asyncio.Event) -> None:
        """Pass after pass until ``stop`` is set: on file events, else ``watch_poll_interval_s``
        apart (``changes.py``).

        A ``BrokerError`` is logged and the pass is retried from the acknowledged positions.
        """
        settings = self._settings
        changes = Changes(
            self._dirs,
            rescan_s=settings.watch_rescan_s,
            poll_s=settings.watch_poll_interval_s,
            use_events=settings.watch_events,
        )
        try:
            while not stop.is_set():
                try:
                    await self.run_once(save=False)
                except BrokerError as exc:
                    log.warning("watcher: %s; retrying from the acknowledged positions", exc)
                await changes.wait(stop)
        finally:
            self._save()
            await changes.close()

    async def run_once(self, *, save: bool = True) -> int:
        """One pass: discover files, send everything complete after each position, save (or,
        ``save=False``, save when due).

        Returns the number of lines acknowledged. On an error the positions acknowledged so far
        are saved and the error propagates.
        """
        self._discover()
        tails = sorted(self._tails.values(), key=lambda t: order_key(t.path))
        before = self.stats.lines_read
        try:
            for tail in tails:
                if tail.changed():
                    await self._drain(tail)
            await self._bury_missing()
            await self._send_held()
            while self._queue:
                await self._take()
        except BaseException as exc:
            try:
                await self._abandon(cancelled=isinstance(exc, asyncio.CancelledError))
            finally:
                self._save()
            raise
        if save:
            self._save()
        else:
            self._save_when_due()
        return self.stats.lines_read - before

    def _save(self) -> None:
        started = self._clock()
        self._checkpoint.save()
        self._last_save = self._clock()
        self._save_every = max(self._checkpoint_interval_s, 20 * (self._last_save - started))

    def _save_when_due(self) -> None:
        if self._clock() - self._last_save >= self._save_every:
            self._save()

    def backlog(self) -> tuple[int, int]:
        """(bytes acknowledged, bytes present) over the files followed: how far the reading is.

        Both come from the files and the checkpoint, so they do not restart with the process. A
        file's size is the one its last pass saw (a stat of every file each second was a tenth
        of the watcher's time on a large tree); a file not looked at yet is stat'ed once, its
        size kept until its pass looks (else a backfill's first pass stat'ed every file not read
        yet at each report: 68k files at 5M lines).
        """
        done = total = 0
        for path, tail in self._tails.items():
            size = tail.size
            if size is None:
                try:
                    size = tail.size = os.stat(path).st_size
                except OSError:
                    continue
            position = self._checkpoint.get(path)
            total += size
            done += min(position.offset, size) if position is not None else 0
        return done, total

    def _discover(self) -> None:
        found = find_jsonl(self._dirs)
        present = set(found)
        for path in [p for p in self._tails if p not in present]:
            del self._tails[path]  # gone; if it comes back, its inode tells what it is
            self._unreadable.pop(path, None)
        for path in found:
            if path not in self._tails:
                project = project_of(path)
                self._tails[path] = Tail(
                    path,
                    project,
                    self._checkpoint.get(path),
                    max_record_bytes=self._max_record_bytes(path, project),
                    max_line_bytes=self._settings.line_max_bytes,
                    columns=True,
                )
        self.stats.files = len(self._tails)

    async def _bury_missing(self) -> None:
        """Send a tombstone for each file the checkpoint knows, under a watched directory that
        exists, that is no longer there."""
        roots = [os.path.abspath(d) + os.sep for d in self._dirs if os.path.isdir(d)]
        for path in self._checkpoint:
            position = self._checkpoint.get(path)
            if position is None or position.gone or path in self._tails:
                continue
            if not any(path.startswith(root) for root in roots) or os.path.lexists(path):
                continue
            tomb = FilePosition(generation=position.generation + 1, gone=True)
            source = TranscriptSource(
                path, project_of(path), tomb.generation, None, self._settings.dedup_scope
            )
            log.info("%s was deleted: tombstone generation %d", path, tomb.generation)
            value = encode_envelope("transcript", [], source)
            await self._hold(value, _Queued(None, path, tomb, len(value), 0, 0, 0))

    def _max_record_bytes(self, path: str, project: str) -> int:
        # The largest record that still fits an envelope alone, for the longest header this
        # file can have (huge generation, long timestamp).
        header = TranscriptSource(path, project, 2**63, "x" * 64, self._settings.dedup_scope)
        overhead = len(encode_envelope("transcript", [], header))
        return max(self._settings.envelope_max_bytes - overhead - 1, 1)

    async def _drain(self, tail: Tail) -> None:
        while True:
            self._ran_ahead.add(tail.path)  # until the chunk is queued whole
            try:
                chunk = tail.read()
            except OSError as exc:  # nothing of this read was queued: the position stands
                self._ran_ahead.discard(tail.path)
                self._skip_unreadable(tail.path, exc)
                return
            if tail.path in self._unreadable:
                del self._unreadable[tail.path]
                log.info("%s is readable again", tail.path)
            if chunk is None:
                self._ran_ahead.discard(tail.path)
                return
            if self._keep is not None:
                chunk = self._keep(chunk)
            await self._send_chunk(tail, chunk)
            self._ran_ahead.discard(tail.path)
            await asyncio.sleep(0)  # let the sender ship what is queued while we parse on
            self._save_when_due()

    def _skip_unreadable(self, path: str, exc: OSError) -> None:
        error = f"{type(exc).__name__}: {exc.strerror or exc}"
        if self._unreadable.get(path) != error:
            log.warning("%s cannot be read (%s): skipped, tried again on every pass", path, error)
        self._unreadable[path] = error

    async def _send_chunk(self, tail: Tail, chunk: ParsedChunk) -> None:
        settings = self._settings
        source = dataclasses.replace(tail.source, scope=settings.dedup_scope)
        sent = envelopes(
            chunk.records,
            source,
            max_records=settings.envelope_max_records,
            max_bytes=settings.envelope_max_bytes,
        )
        start, position = 0, chunk.start
        for number, (stop, value) in enumerate(sent, 1):
            # Blank lines between envelopes go with the earlier one; the last takes the rest.
            last = number == len(sent)
            end = chunk.end if last else chunk.ends[stop - 1]
            bad = chunk.bad_lines if last else 0  # counted once the whole chunk is acknowledged
            queued = _Queued(
                None, tail.path, tail.commit(end), len(value), stop - start, end - position, bad
            )
            await self._hold(value, queued)
            start, position = stop, end
        if not sent:  # no record: a new generation with no complete line yet, announced
            end = chunk.end
            value = encode_envelope("transcript", [], source)
            queued = _Queued(
                None, tail.path, tail.commit(end), len(value), 0, end - chunk.start, chunk.bad_lines
            )
            await self._hold(value, queued)
        while self._queue and (self._queue[0].delivery is None or self._queue[0].delivery.done()):
            await self._take()  # acknowledged already: no wait

    async def _hold(self, value: bytes, queued: _Queued) -> None:
        """Keep an envelope (``queued``'s, of bytes ``value``) for the next bundle; the bundle
        goes first when the envelope would make it too long (``envelope_bundle_max`` envelopes,
        ``envelope_max_bytes``). A pass sends what is held before it waits (``_send_held``)."""
        settings = self._settings
        size = len(value) + 1  # and its comma
        if self._held and (
            len(self._held) >= settings.envelope_bundle_max
            or self._held_bytes + size + _BUNDLE_BYTES > settings.envelope_max_bytes
        ):
            await self._send_held()
        self._held.append((value, queued))
        self._held_bytes += size

    async def _send_held(self) -> None:
        """Send the envelopes held, as one message (one envelope alone as itself), and queue
        them, in order, on that one delivery; the first carries the message's size."""
        held = self._held
        if not held:
            return
        values = [value for value, _ in held]
        message = values[0] if len(values) == 1 else encode_bundle(values)
        await self._make_room(len(message))
        key = self._settings.dedup_scope.encode()
        # A failure here leaves them held: ``_abandon`` then forgets their tails.
        delivery = asyncio.ensure_future(await self._sender.send(self._topic, key, message))
        self._held, self._held_bytes = [], 0
        for index, (_, queued) in enumerate(held):
            queued.delivery, queued.message = delivery, index == 0
            queued.size = len(message) if index == 0 else 0
            self._push(queued)

    def _push(self, queued: _Queued) -> None:
        self._queue.append(queued)
        if queued.delivery is not None and queued.message:
            self._in_flight += 1
            self._in_flight_bytes += queued.size

    async def _make_room(self, size: int) -> None:
        while self._in_flight and (
            self._in_flight >= self._max_in_flight
            or self._in_flight_bytes + size > self._max_in_flight_bytes
        ):
            await self._take()

    async def _take(self) -> None:
        """Wait for the oldest envelope's acknowledgement, then move its file's position.

        Raises ``BrokerError`` when it failed; its file is then marked as run ahead.
        """
        queued = self._queue.popleft()
        if queued.delivery is not None:
            if queued.message:
                self._in_flight -= 1
                self._in_flight_bytes -= queued.size
            try:
                await queued.delivery
            except BaseException:
                self._broken = True
                self._ran_ahead.add(queued.path)
                raise
        self._acknowledged(queued)

    def _acknowledged(self, queued: _Queued) -> None:
        self._checkpoint.set(queued.path, queued.position)
        stats = self.stats
        stats.envelopes_sent += queued.delivery is not None
        stats.messages_sent += queued.delivery is not None and queued.message
        stats.lines_read += queued.lines
        stats.bytes_read += queued.bytes
        stats.bad_lines += queued.bad_lines

    async def _abandon(self, *, cancelled: bool) -> None:
        """After an error: take the acknowledgements that precede the first failure, drop the
        rest, and forget the tails that ran ahead of their checkpoint (the next pass rebuilds them
        from it, as a restart would, and resends what was not acknowledged)."""
        queue, self._queue = self._queue, deque()
        self._in_flight = self._in_flight_bytes = 0
        # Envelopes held and never sent: their tails ran ahead of what was queued.
        self._ran_ahead.update(queued.path for _, queued in self._held)
        self._held, self._held_bytes = [], 0
        deliveries = [q.delivery for q in queue if q.delivery is not None]
        try:
            if not cancelled:  # let what is in flight settle: acknowledged or failed
                await asyncio.gather(*deliveries, return_exceptions=True)
        finally:
            broken, self._broken = self._broken, False
            for queued in queue:
                delivery = queued.delivery
                if delivery is not None and not delivery.done():
                    delivery.add_done_callback(_retrieve)
                    broken = True
                elif delivery is not None and (delivery.cancelled() or delivery.exception()):
                    broken = True
                if broken:
                    self._ran_ahead.add(queued.path)
                else:
                    self._acknowledged(queued)
            for path in self._ran_ahead:
                self._tails.pop(path, None)
            self._ran_ahead.clear()


def _retrieve(delivery: asyncio.Future[None]) -> None:
    if not delivery.cancelled():
        delivery.exception()  # an abandoned delivery: no "exception was never retrieved"
