"""JSONL bytes in, wire records out. Pure: no I/O, no clock.

Record contract (the ``records`` of a transcript envelope, see ``ingestor/wire.py``):

* a JSON object line: ``{"offset", "length", "line": …}`` (``producer/usage.py``: a usage line
  canonical as ccusage reads it, any other line ``strip_line(obj)``) — no text survives;
* a line that travels as a bad record: ``{"offset", "length", "error", "sha256"}`` plus, when the
  line is a JSON object, ``"shape": redact.structure(obj)`` (keys, value types, usage fields) and
  ``"field"`` for a usage line ccusage skips. A line that is not a JSON object keeps no part of
  its text: its length, the SHA-256 of its bytes and the parse error are all that travel;
* an empty or whitespace-only line: a bad record (``BLANK``), so that it is accounted for — ccusage
  skips it silently;
* a line longer than the reader's limit (``long_line_chunk``): a bad record built from its length
  and hash alone, never parsed.

``offset`` is the byte offset of the line's first byte and ``length`` counts its bytes *including*
the terminating ``\\n``, so ``offset + length`` is where the next line starts: the position a reader
resumes from. Only complete (``\\n``-terminated) lines are handled; a partial last line waits.

This is the watcher's hot path: one ``orjson.loads``, one ``strip_line`` and one ``orjson.dumps``
a line, no pydantic. Records are encoded once, here, and spliced into envelopes as
``orjson.Fragment`` so that envelope sizes are known exactly without encoding twice.

With ``columns=True`` (the watcher) a line of the common shape (``fast_rows.line_fields``) is
kept as a tuple of its ``LINE_COLUMNS`` values instead, and ``envelopes`` sends those lines as
columns (a version 2 envelope, ``ingestor/wire.py``): the worker then stores them with no Python
object a line. Every other line stays a record.

Where ``make setup`` built the Rust reader (``native/``, ``ingestor._native``), ``parse_chunk``
with ``columns=True`` lets it read the chunk first: it gives the common lines' column rows, the
same values ``line_row`` gives, at a fraction of the CPU, and declines the rest, which this
module reads as before. Without it every line is read here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

import orjson

from ingestor.models import strip_line
from ingestor.producer.usage import out_of_range, usage_columns, usage_record
from ingestor.redact import sha256_hex, structure
from ingestor.rows.columns import epoch_ms
from ingestor.rows.fast import line_fields
from ingestor.usage.accept import read_usage_line
from ingestor.usage.verdict import Rejected
from ingestor.wire import LINE_COLUMNS, LINE_STRINGS, TranscriptSource, encode_envelope

__all__ = [
    "BLANK",
    "ParsedChunk",
    "bad_record",
    "column_row",
    "envelopes",
    "first_timestamp",
    "line_record",
    "line_row",
    "long_line_chunk",
    "pack",
    "parse_chunk",
    "parse_ts",
    "split_lines",
]

BLANK = "blank line (empty or whitespace only)"
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def split_lines(data: bytes, offset: int) -> tuple[list[bytes], int]:
    """The complete lines of ``data`` (without ``\\n``) and the offset just past the last one.

    ``data`` starts at file offset ``offset``; bytes after the last ``\\n`` (a partial line) are
    not returned and the returned end stays before them.
    """
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    return data[:end].split(b"\n"), offset + end + 1


def parse_ts(value: Any) -> datetime | None:
    """A line's ``timestamp`` as an aware datetime, or None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # Naive means UTC, as in ingestor.models.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def bad_record(
    line: bytes, offset: int, length: int, error: str, obj: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The record a line that cannot travel as ``line`` becomes (the worker dead-letters it):
    no text, only the hash of its bytes and, for a JSON object ``obj``, its structure."""
    record = {"offset": offset, "length": length, "error": error, "sha256": sha256_hex(line)}
    if obj is not None:
        record["shape"] = structure(obj)
    return record


def line_record(line: bytes, offset: int, length: int) -> tuple[dict[str, Any], str | None]:
    """One non-blank line's record and its ``timestamp`` (None unless a readable ISO string)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        # orjson names the position, never the document: no text in the reason.
        return bad_record(line, offset, length, f"not valid JSON: {exc}"), None
    if not isinstance(obj, dict):
        kind = "null" if obj is None else _JSON_TYPES.get(type(obj), type(obj).__name__)
        return bad_record(line, offset, length, f"not a JSON object: {kind}"), None
    ts = obj.get("timestamp")
    ts = ts if parse_ts(ts) is not None else None
    return usage_record(line, obj, offset, length)[0], ts


def long_line_chunk(offset: int, size: int, sha256: str, limit: int) -> ParsedChunk:
    """The chunk of one line of ``size`` bytes (without its ``\\n``) longer than ``limit``: a
    bad record made of its length and hash, so a reader never buffers more than ``limit``."""
    length = size + 1
    error = f"line longer than {limit} bytes (line_too_long)"
    record = {"offset": offset, "length": length, "error": error, "sha256": sha256}
    chunk = ParsedChunk(start=offset, end=offset + length, bad_lines=1)
    chunk.records.append(orjson.dumps(record))
    chunk.ends.append(chunk.end)
    return chunk


def first_timestamp(lines: Iterable[bytes]) -> str | None:
    """The ``timestamp`` of the first line that has a readable one (ccusage's file order key)."""
    for line in lines:
        if not line or line.isspace():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict) and parse_ts(ts := obj.get("timestamp")) is not None:
            return str(ts)
    return None


@dataclass(slots=True)
class ParsedChunk:
    """The complete lines of one chunk, as encoded records in file order."""

    start: int  # file offset of the chunk
    end: int  # just past the last complete line (blank ones included): the next position
    # Each line's record, orjson-encoded, or (``columns=True``) its LINE_COLUMNS values.
    records: list[bytes | tuple[Any, ...]] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)  # just past each record's line
    first_ts: str | None = None  # of the first line in this chunk that has one
    bad_lines: int = 0


# ``ingestor._native.line_rows(data, offset, max_record_bytes)``: for each complete line of
# ``data``, its ``line_row`` or, declined, its bytes (read here), and the index and text of the
# first taken line's timestamp.
NativeRows: TypeAlias = Callable[
    [bytes, int, int], tuple[list[tuple[Any, ...] | bytes], int, str | None]
]


def _native_rows() -> NativeRows | None:
    try:
        from ingestor._native import line_rows
    except ImportError:  # not built (no Rust toolchain at setup): every line is read here
        return None
    return line_rows


NATIVE_ROWS = _native_rows()


def parse_chunk(
    data: bytes, offset: int, *, max_record_bytes: int, columns: bool = False, native: bool = True
) -> ParsedChunk:
    """Records for the complete lines of ``data`` read at file ``offset`` (with ``columns``, a
    line of the common shape as its ``column_row``; with ``native`` too, read by the Rust reader
    where it is built: the same records).

    A record whose stripped line still encodes to more than ``max_record_bytes`` travels as a bad
    line, so that one absurd line cannot wedge a file behind a message the broker refuses (a
    usage line never does: ``producer/usage.py`` bounds what it keeps).
    """
    lines: list[tuple[Any, ...] | bytes] | list[bytes]
    first_taken, first_taken_ts = -1, None
    if columns and native and NATIVE_ROWS is not None:
        # The Rust's rows, a declined line as its bytes: the chunk is never split line by line
        # here (a copy of every byte read, 1.2 of the watcher's 14 CPU-s over 1M lines).
        lines, first_taken, first_taken_ts = NATIVE_ROWS(data, offset, max_record_bytes)
        last = data.rfind(b"\n")
        end = offset if last < 0 else offset + last + 1
    else:
        lines, end = split_lines(data, offset)
    chunk = ParsedChunk(start=offset, end=end)
    records, ends = chunk.records, chunk.ends
    # The hot loop: line_record inlined, and timestamps looked at only until one is found.
    loads, dumps, decode_error = orjson.loads, orjson.dumps, orjson.JSONDecodeError
    pos = offset
    for index, line in enumerate(lines):
        if isinstance(line, tuple):  # the Rust's row
            records.append(line)
            pos += line[_LENGTH]
            ends.append(pos)
            if index == first_taken and chunk.first_ts is None:
                chunk.first_ts = first_taken_ts
            continue
        length = len(line) + 1
        if not line or line.isspace():
            encoded = dumps(bad_record(line, pos, length, BLANK))
            chunk.bad_lines += 1
            records.append(encoded)
            pos += length
            ends.append(pos)
            continue
        try:
            obj = loads(line)
        except decode_error:
            obj = None
        if type(obj) is dict:
            row = line_row(line, obj, pos, length, max_record_bytes) if columns else None
            if row is not None:
                records.append(row)
                pos += length
                ends.append(pos)
                if chunk.first_ts is None and parse_ts(ts := obj.get("timestamp")) is not None:
                    chunk.first_ts = ts
                continue
            record, skipped = usage_record(line, obj, pos, length)
            encoded = dumps(record)
            if skipped is not None:
                chunk.bad_lines += 1
            elif len(encoded) > max_record_bytes:
                too_big = f"stripped line larger than {max_record_bytes} bytes"
                encoded = dumps(bad_record(line, pos, length, too_big, obj))
                chunk.bad_lines += 1
            if chunk.first_ts is None and parse_ts(ts := obj.get("timestamp")) is not None:
                chunk.first_ts = ts
        else:  # rare: let line_record name the reason
            encoded = dumps(line_record(line, pos, length)[0])
            chunk.bad_lines += 1
        records.append(encoded)
        pos += length
        ends.append(pos)
    return chunk


_STRINGS = tuple(LINE_COLUMNS.index(name) for name in LINE_STRINGS)
_LENGTH = LINE_COLUMNS.index("length")


def line_row(
    line: bytes, obj: dict[str, Any], offset: int, length: int, max_record_bytes: int
) -> tuple[Any, ...] | None:
    """The ``LINE_COLUMNS`` values of a JSON-object line, or None when it travels as the record
    ``usage_record`` makes: ``column_row`` of that record, a usage line's without the record
    (``usage_columns``)."""
    verdict = read_usage_line(line, obj)
    if verdict is None:
        record = {"offset": offset, "length": length, "line": strip_line(obj)}
        return column_row(record, max_record_bytes)
    if isinstance(verdict, Rejected) or out_of_range(verdict) is not None:
        return None
    return usage_columns(verdict, obj, offset, length)


def column_row(record: dict[str, Any], max_record_bytes: int) -> tuple[Any, ...] | None:
    """A record's line as its ``LINE_COLUMNS`` values, or None when it travels as a record: it
    is not a line (a bad record), has not the common shape (``line_fields``), or has strings long
    enough that it might not fit an envelope alone (a record's size is checked exactly)."""
    line = record.get("line")
    fields = None if line is None else line_fields(line)
    if fields is None:
        return None
    tokens, has_usage = fields.tokens, fields.has_usage
    reset = record.get("reset_ms", 0)
    cost = fields.cost_usd
    row: tuple[Any, ...] = (
        record["offset"],
        record["length"],
        fields.line_type,
        fields.session_id or "",
        fields.uuid or "",
        fields.parent_uuid or "",
        fields.request_id or "",
        fields.message_id or "",
        0 if fields.timestamp is None else epoch_ms(fields.timestamp),
        fields.is_sidechain,
        fields.is_api_error,
        fields.model,
        has_usage,
        tokens[0],
        tokens[1],
        tokens[3],
        tokens[4],
        tokens[5],
        fields.tier,
        fields.speed,
        None if cost is None or not has_usage else str(cost),  # only a usage line's is read
        reset if type(reset) is int else 0,
        fields.tool_uses,
        fields.cwd or "",
        fields.version or "",
    )
    # JSON escapes a character in at most 6 bytes (UTF-8 takes at most 4).
    text = sum(len(row[i]) for i in _STRINGS) + sum(map(len, fields.tool_uses)) * 2
    return row if 6 * text + 4096 <= max_record_bytes else None


def envelopes(
    records: Sequence[bytes | tuple[Any, ...]],
    source: TranscriptSource,
    *,
    max_records: int,
    max_bytes: int,
) -> list[tuple[int, bytes]]:
    """A chunk's ``records`` (``parse_chunk``) as transcript envelopes of at most
    ``max_records`` records and ``max_bytes`` bytes: (the stop index, the envelope) each, in
    order. A record alone over ``max_bytes`` goes alone (``parse_chunk`` makes none)."""
    overhead = len(encode_envelope("transcript", [], source, dict.fromkeys(LINE_COLUMNS, [])))
    sizes = [len(r) if type(r) is bytes else _ROW_BYTES for r in records]
    out: list[tuple[int, bytes]] = []
    start = 0
    for stop in pack(sizes, overhead=overhead, max_records=max_records, max_bytes=max_bytes):
        _encode(records, start, stop, source, max_bytes, out)
        start = stop
    return out


# What a line of columns is taken to add to an envelope when packing; an envelope that comes
# out larger than allowed is halved (``_encode``), so this only needs to be right mostly.
_ROW_BYTES = 400


def _encode(
    records: Sequence[bytes | tuple[Any, ...]],
    start: int,
    stop: int,
    source: TranscriptSource,
    max_bytes: int,
    out: list[tuple[int, bytes]],
) -> None:
    part = records[start:stop]
    rows = [r for r in part if type(r) is tuple]
    fragments = [orjson.Fragment(r) for r in part if type(r) is bytes]
    if rows:
        lines = dict(zip(LINE_COLUMNS, map(list, zip(*rows, strict=True)), strict=True))
        value = encode_envelope("transcript", fragments, source, lines)
    else:
        value = encode_envelope("transcript", fragments, source)
    if len(value) > max_bytes and stop - start > 1:
        middle = (start + stop) // 2
        _encode(records, start, middle, source, max_bytes, out)
        _encode(records, middle, stop, source, max_bytes, out)
        return
    out.append((stop, value))


def pack(sizes: Sequence[int], *, overhead: int, max_records: int, max_bytes: int) -> list[int]:
    """Split records of the given encoded ``sizes`` into envelopes; returns each one's stop index.

    An envelope holds at most ``max_records`` records and ``max_bytes`` bytes (``overhead`` is the
    size of the envelope with no records; each record adds its size and a comma). A record too big
    for any envelope goes alone: splitting a line is not an option.
    """
    stops: list[int] = []
    count, size = 0, overhead
    for index, record_size in enumerate(sizes):
        if count and (count >= max_records or size + record_size + 1 > max_bytes):
            stops.append(index)
            count, size = 0, overhead
        count += 1
        size += record_size + 1
    if count:
        stops.append(len(sizes))
    return stops
