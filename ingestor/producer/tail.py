"""One file, followed from its position: the watcher's per-file state machine.

States of a file's identity, checked on every read against ``fstat`` of the open file (so a
replacement between ``stat`` and ``read`` cannot mix two files' bytes into one generation):

* same inode, size >= position → same generation: read what follows the position;
* another inode (file replaced) → ``generation + 1``, position 0;
* size < position (file truncated) → ``generation + 1``, position 0;
* position not yet bound to an inode (it came from ClickHouse, or the file was deleted and this
  is its tombstone) → the file is adopted as is.

A new generation is announced even when it has no complete line yet (a file replaced by an empty
one, or truncated to nothing): ``read`` then returns an empty chunk, which the watcher sends as an
envelope without records, so the older generation stops counting (ccusage counts what is on disk).
A generation change is decided again, identically, after a crash (the checkpoint still names the
old inode/size), so it needs no write of its own. Reads return only complete lines; a partial last
line is read again once the file changes. The position moves only through ``commit``, which the
watcher calls once the lines before it are queued for sending, ahead of the broker: what the broker
acknowledged is the checkpoint's position, which the watcher moves itself (after an error it drops
the ``Tail`` and builds a new one from the checkpoint).

A line longer than a read grows the read, up to ``max_line_bytes`` (``INGESTOR_LINE_MAX_BYTES``);
a longer line is skipped to its end without being buffered and travels as a bad record of its
length and hash (``lines.long_line_chunk``).

Only regular files are read, never through a symlink (``O_NOFOLLOW``; discovery skips symlinks
already, this closes the race of a file replaced by one): a read of anything else raises
``OSError``, which the watcher treats like an unreadable file.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import logging
import os
import stat
from typing import Any

from ingestor.producer.checkpoint import FilePosition
from ingestor.producer.lines import (
    ParsedChunk,
    first_timestamp,
    long_line_chunk,
    parse_chunk,
    split_lines,
)
from ingestor.wire import TranscriptSource

__all__ = ["CHUNK_BYTES", "MAX_LINE_BYTES", "Tail", "open_regular"]

log = logging.getLogger(__name__)

CHUNK_BYTES = 4 << 20  # large reads: parsing, not syscalls, should dominate
MAX_LINE_BYTES = 256 << 20  # a "line" longer than this is garbage, not worth buffering
_PROBE_BYTES = 64 << 10  # the first timestamp is nearly always in the first lines

_StatKey = tuple[int, int, int]


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


def _stat_key(st: os.stat_result) -> _StatKey:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def open_regular(path: str) -> int:
    """A read-only descriptor of the regular file ``path``, never through a symlink.

    Raises ``OSError`` (``ELOOP`` for a symlink, ``EINVAL`` for a FIFO, device or directory);
    ``O_NONBLOCK`` keeps a FIFO swapped in under the name from blocking the open.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
    except BaseException:
        os.close(fd)
        raise
    return fd


class Tail:
    """The watcher's view of one file: its identity, position and first timestamp.

    Not thread-safe; blocking file I/O (reads are bounded by ``chunk_bytes`` except for one long
    line, bounded by ``max_line_bytes``).
    """

    def __init__(
        self,
        path: str,
        project: str,
        position: FilePosition | None = None,
        *,
        max_record_bytes: int,
        chunk_bytes: int = CHUNK_BYTES,
        max_line_bytes: int = MAX_LINE_BYTES,
        columns: bool = False,
    ) -> None:
        self.path = path
        self._columns = columns  # lines of the common shape as column rows (``parse_chunk``)
        self.project = project
        self.position = position or FilePosition()
        self._max_record_bytes = max_record_bytes
        self._chunk_bytes = chunk_bytes
        self._max_line_bytes = max(max_line_bytes, chunk_bytes)
        self._idle: _StatKey | None = None  # file state at which nothing complete was left
        self._probed = self.position.first_ts is not None
        self.size: int | None = None  # as the last ``changed()`` saw it (progress displays)

    @property
    def source(self) -> TranscriptSource:
        pos = self.position
        return TranscriptSource(self.path, self.project, pos.generation, pos.first_ts)

    def changed(self) -> bool:
        """Cheap check (one ``stat``): may there be something new to read?"""
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        self.size = st.st_size
        return _stat_key(st) != self._idle

    def first_ts(self) -> str | None:
        """The file's first timestamp, reading its beginning if it is not known yet (once)."""
        if not self._probed:
            try:
                fd = open_regular(self.path)
            except OSError:
                return self.position.first_ts
            try:
                self._check_identity(os.fstat(fd))
                self._probe(fd)
            finally:
                os.close(fd)
        return self.position.first_ts

    def read(self) -> ParsedChunk | None:
        """The complete lines after the position (up to about ``chunk_bytes``), or None if none;
        an empty chunk (at 0) when a new generation begins with no complete line.

        Raises ``OSError`` other than a vanished file (unreadable, a symlink, not a regular file).
        Does not move the position.
        """
        try:
            fd = open_regular(self.path)
        except FileNotFoundError:
            return None
        long_line: ParsedChunk | None = None
        announced = self.position.generation if self.position.inode is not None else None
        try:
            st = os.fstat(fd)
            self._check_identity(st)
            offset = self.position.offset
            renewed = announced is not None and self.position.generation != announced
            if st.st_size <= offset:
                self._idle = _stat_key(st)
                return ParsedChunk(start=0, end=0) if renewed else None
            if not self._probed and offset > 0:
                self._probe(fd)  # resuming mid-file: the first timestamp is behind us
            data = self._read_at(fd, offset, st.st_size)
            if len(data) >= self._max_line_bytes and b"\n" not in data:
                long_line = self._skip_long_line(fd, offset, data)
                if long_line is None:  # the long line is not complete yet
                    self._idle = _stat_key(st)
                    return None
        finally:
            os.close(fd)
        if long_line is not None:
            return long_line
        chunk = parse_chunk(
            data, offset, max_record_bytes=self._max_record_bytes, columns=self._columns
        )
        if chunk.end == offset:  # only a partial line: wait for the file to change
            self._idle = _stat_key(st)
            return ParsedChunk(start=0, end=0) if renewed else None
        if self.position.first_ts is None and chunk.first_ts is not None:
            self.position = dataclasses.replace(self.position, first_ts=chunk.first_ts)
            self._probed = True
        return chunk

    def commit(self, offset: int) -> FilePosition:
        """Move the position to ``offset`` (everything before it is queued for sending)."""
        self.position = dataclasses.replace(self.position, offset=offset)
        return self.position

    def _check_identity(self, st: os.stat_result) -> None:
        pos = self.position
        if pos.inode is None:
            pos = dataclasses.replace(pos, inode=st.st_ino, gone=False)
        elif st.st_ino != pos.inode:
            log.info("%s was replaced: generation %d", self.path, pos.generation + 1)
            pos = FilePosition(generation=pos.generation + 1, inode=st.st_ino)
        if st.st_size < pos.offset:
            log.info("%s was truncated: generation %d", self.path, pos.generation + 1)
            pos = FilePosition(generation=pos.generation + 1, inode=st.st_ino)
        if pos.generation != self.position.generation:
            self._probed = False
            self._idle = None
        self.position = pos

    def _read_at(self, fd: int, offset: int, size: int) -> bytes:
        # Grow the read until it holds a whole line, or the file ends, or the line is absurd.
        # The first asks for what the file holds (``size``, its fstat), not a whole chunk: a
        # read allocates what it asks for, and most files are far smaller than a chunk (13,704
        # files of 1M lines: 1.4-1.8 CPU-s read in chunks, 0.48 s in their sizes).
        want = max(1, min(self._chunk_bytes, size - offset))
        while True:
            data = os.pread(fd, want, offset)
            if b"\n" in data or len(data) < want or want >= self._max_line_bytes:
                return data
            want = min(want * 2, self._max_line_bytes)

    def _line_end(self, fd: int, start: int, digest: Any) -> int | None:
        """The offset of the first ``\\n`` at or after ``start`` (hashing the bytes before it
        into ``digest``), or None at the end of the file; reads ``chunk_bytes`` at a time."""
        while True:
            data = os.pread(fd, self._chunk_bytes, start)
            if not data:
                return None
            newline = data.find(b"\n")
            if newline >= 0:
                digest.update(data[:newline])
                return start + newline
            digest.update(data)
            start += len(data)

    def _skip_long_line(self, fd: int, offset: int, head: bytes) -> ParsedChunk | None:
        digest = hashlib.sha256(head)
        end = self._line_end(fd, offset + len(head), digest)
        if end is None:
            return None
        log.warning(
            "%s: the line at offset %d is longer than %d bytes (INGESTOR_LINE_MAX_BYTES): "
            "dead-lettered unread",
            self.path,
            offset,
            self._max_line_bytes,
        )
        return long_line_chunk(offset, end - offset, digest.hexdigest(), self._max_line_bytes)

    def _probe(self, fd: int) -> None:
        self._probed = True
        offset, want = 0, _PROBE_BYTES
        while True:
            data = os.pread(fd, want, offset)
            lines, end = split_lines(data, offset)
            if end == offset:  # no complete line in this read
                if len(data) < want:
                    return
                if want < self._max_line_bytes:
                    want = min(want * 2, self._max_line_bytes)
                    continue
                # an absurd line: skipped to its end, as read() skips it
                end_of_long = self._line_end(fd, offset + len(data), hashlib.sha256())
                if end_of_long is None:
                    return
                offset, want = end_of_long + 1, _PROBE_BYTES
                continue
            if (ts := first_timestamp(lines)) is not None:
                self.position = dataclasses.replace(self.position, first_ts=ts)
                return
            offset, want = end, _PROBE_BYTES
