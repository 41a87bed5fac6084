"""One message in, rows out. Pure: no broker, no ClickHouse, no Faust.

``process_message`` is a message's whole handling: ``decode``, then ``process_decoded`` (rows and
dead letters), or ``undecodable`` for a message that is no envelope. The agents in ``app.py`` are
thin: they take those two steps apart only to meet a transcript envelope's scope in between (I/O:
its sessions are reconciled before its rows join a batch), and hand the rows to the sink. What
counts is decided once the rows are stored, by the winners ClickHouse keeps
(``clickhouse/winners.py``); the sessions follow those changes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ingestor.clickhouse.positions import POSITIONS_TABLE
from ingestor.errors import InvalidInput, InvalidRecord, Location
from ingestor.models import (
    validate_event,
    validate_ledger,
    validate_transcript_line,
)
from ingestor.rows.columns import RowColumns, Rows
from ingestor.rows.fast import fast_transcript_values
from ingestor.rows.records import (
    TRANSCRIPT_COLUMNS,
    dead_letter_row,
    event_rows,
    ledger_row,
    transcript_values,
)
from ingestor.wire import Envelope, Kind, TranscriptSource, decode_messages
from ingestor.worker.dlq import DeadLetter
from ingestor.worker.line_columns import line_columns

__all__ = [
    "RECORD_TABLES",
    "Processed",
    "decode",
    "process_decoded",
    "process_events",
    "process_ledger",
    "process_message",
    "process_transcripts",
    "undecodable",
    "with_dead_letter_rows",
]

Row = dict[str, Any]


@dataclass(slots=True)
class Processed:
    """What one envelope produced."""

    rows: dict[str, Rows] = field(default_factory=dict)  # table -> rows (columns: transcript_lines)
    dead: list[DeadLetter] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, other: Processed) -> None:
        """``other``'s rows, dead letters and outcomes after these (a bundle's envelopes)."""
        for table, rows in other.rows.items():
            mine = self.rows.get(table)
            if mine is None:
                self.rows[table] = rows
            else:
                mine.extend(rows)
        self.dead.extend(other.dead)
        self.outcomes.update(other.outcomes)

    @property
    def valid(self) -> int:
        return sum(len(rows) for table, rows in self.rows.items() if table in RECORD_TABLES)

    def _row(self, table: str, row: Row) -> None:
        self.rows.setdefault(table, []).append(row)


# The tables of input records (a transcript line, an event, a ledger entry): what a person counts.
RECORD_TABLES = ("transcript_lines", "events", "token_usage_ledger")
_RESET = TRANSCRIPT_COLUMNS.index("usage_limit_reset_ms")
_HAS_USAGE = TRANSCRIPT_COLUMNS.index("has_usage")
_TIMES = ("file_first_ts", "timestamp")  # epoch milliseconds in a batch (``RowColumns``)


def process_message(
    kind: Kind, value: bytes | None, where: Location, *, bad_line_max_bytes: int
) -> Processed:
    """A Kafka message of ``kind`` (its value), found at ``where``: its rows and dead letters
    (a bundle's envelopes', in order)."""
    out = Processed()
    for decoded in decode(kind, value, where, bad_line_max_bytes=bad_line_max_bytes):
        if not isinstance(decoded, Processed):
            decoded = process_decoded(kind, decoded, where, bad_line_max_bytes=bad_line_max_bytes)
        out.add(decoded)
    return out


def decode(
    kind: Kind, value: bytes | None, where: Location, *, bad_line_max_bytes: int
) -> list[Envelope | Processed]:
    """The message's envelopes (several for a bundle, in order); for a message, or an item of a
    bundle, that is none, what it produced (``undecodable``: the item at its index)."""
    try:
        items = decode_messages(kind, value)
    except InvalidInput as exc:
        return [undecodable(kind, exc, where, value or b"", bad_line_max_bytes=bad_line_max_bytes)]
    return [
        item
        if isinstance(item, Envelope)
        else undecodable(
            kind,
            item.error,
            replace(where, index=index),
            item.raw,
            bad_line_max_bytes=bad_line_max_bytes,
        )
        for index, item in enumerate(items)
    ]


def process_decoded(
    kind: Kind,
    envelope: Envelope,
    where: Location,
    *,
    bad_line_max_bytes: int,
) -> Processed:
    """A decoded message of ``kind``: the one dispatch the live agent and ``replay`` share."""
    if kind == "transcript":
        return process_transcripts(envelope, where, bad_line_max_bytes=bad_line_max_bytes)
    if kind == "event":
        return process_events(envelope, where, bad_line_max_bytes=bad_line_max_bytes)
    return process_ledger(envelope, where, bad_line_max_bytes=bad_line_max_bytes)


def undecodable(
    kind: Kind, error: InvalidInput, where: Location, value: bytes, *, bad_line_max_bytes: int
) -> Processed:
    """A message that is no envelope: one dead letter for the whole of it."""
    out = Processed()
    out.dead.append(DeadLetter.of_input(kind, error.at(where), value, max_bytes=bad_line_max_bytes))
    return out


def with_dead_letter_rows(processed: Processed) -> Processed:
    """Add the ``dead_letters`` rows of ``processed.dead`` to its rows (once, before storing)."""
    if processed.dead:
        processed.rows.setdefault("dead_letters", []).extend(
            dead_letter_row(dead) for dead in processed.dead
        )
    return processed


def process_transcripts(
    envelope: Envelope,
    where: Location,
    *,
    bad_line_max_bytes: int,
) -> Processed:
    """Validate each line and build its row: the lines sent as columns (``line_columns``), then
    the records.

    An envelope without records or lines announces a generation of its file (a file replaced or
    truncated to nothing, or a deleted file's tombstone): it becomes a ``file_positions`` row at
    offset 0, which makes that generation the file's current one
    (``schema/0011_current_generations.sql``).
    """
    source = envelope.source
    assert source is not None  # decode_message guarantees it for transcripts
    out = Processed()
    if envelope.empty:
        out._row(
            POSITIONS_TABLE,
            {"source_file": source.file, "source_generation": source.generation, "end_offset": 0},
        )
        out.outcomes["generation"] += 1
        return out
    outcomes = out.outcomes
    table = RowColumns(TRANSCRIPT_COLUMNS, times=_TIMES)
    no_usage = 0
    if envelope.lines is not None:
        first = len(envelope.records)  # a line's index in dead letters counts after the records
        no_usage = _add_lines(out, table, envelope.lines, source, where, first, bad_line_max_bytes)
    rows: list[tuple[Any, ...]] = []
    # The hot loop (every transcript line): locals, and no call a line does not need.
    for i, record in enumerate(envelope.records):
        offset, length = _position(record)
        try:
            if offset < 0:
                raise InvalidRecord("must be a non-negative integer", "offset")
            if "line" not in record and ("error" in record or "raw" in record):
                error = str(record.get("error") or "not a JSON object")
                raise InvalidRecord(error, str(record.get("field") or "line"))
            values = _transcript_values(record.get("line"), source, offset, length)
            reset_ms = record.get("reset_ms")
            if type(reset_ms) is int:
                values = (*values[:_RESET], reset_ms, *values[_RESET + 1 :])
        except InvalidInput as exc:
            # Built for a bad line only: one a line showed in the worker's profile.
            loc = Location(where.topic, where.partition, where.offset, i, source.file, offset)
            shape, digest = _kept(record)
            out.dead.append(
                DeadLetter.of(
                    "transcript",
                    exc.at(loc),
                    shape,
                    max_bytes=bad_line_max_bytes,
                    raw_sha256=digest,
                    raw_length=max(length - 1, 0),  # the line without its newline
                    source_generation=source.generation,
                    source_length=max(length, 0),
                )
            )
            outcomes["dead_letter"] += 1
            continue
        rows.append(values)
        if not values[_HAS_USAGE]:
            no_usage += 1
    table.add_tuples(rows)
    if table:
        outcomes["usage"] += len(table) - no_usage
        out.rows["transcript_lines"] = table
    if no_usage:
        outcomes["no_usage"] += no_usage
    return out


def _add_lines(
    out: Processed,
    table: RowColumns,
    lines: Mapping[str, list[Any]],
    source: TranscriptSource,
    where: Location,
    first: int,
    bad_line_max_bytes: int,
) -> int:
    """The lines of a version 2 envelope: those that pass to ``table``, the others dead-lettered
    (line ``i`` as the envelope's item ``first + i``). Returns the lines stored without usage."""
    columns, bad = line_columns(lines, source)
    table.add_columns(columns)
    offsets, lengths = lines["offset"], lines["length"]
    for index, error in bad:
        offset, length = offsets[index], lengths[index]
        offset = offset if type(offset) is int else -1
        length = length if type(length) is int and length >= 0 else 0
        loc = Location(
            where.topic, where.partition, where.offset, first + index, source.file, offset
        )
        out.dead.append(
            DeadLetter.of(
                "transcript",
                error.at(loc),
                None,
                max_bytes=bad_line_max_bytes,
                raw_length=max(length - 1, 0),
                source_generation=source.generation,
                source_length=length,
            )
        )
    out.outcomes["dead_letter"] += len(bad)
    return columns[_HAS_USAGE].count(0)


def _transcript_values(
    data: Any, source: TranscriptSource, offset: int, length: int
) -> tuple[Any, ...]:
    """The values of one line: the fast path when it takes the line, else the model (may
    raise)."""
    values = fast_transcript_values(data, source, offset, length)
    if values is None:
        values = transcript_values(validate_transcript_line(data), source, offset, length)
    return values


def process_events(envelope: Envelope, where: Location, *, bad_line_max_bytes: int) -> Processed:
    """Each valid event becomes its rows (events, plus tool_calls / agent_steps)."""
    return _process_records(
        "event", envelope, where, lambda r: event_rows(validate_event(r)), bad_line_max_bytes
    )


def process_ledger(envelope: Envelope, where: Location, *, bad_line_max_bytes: int) -> Processed:
    """Each valid ledger entry becomes a ``token_usage_ledger`` row."""
    return _process_records(
        "ledger",
        envelope,
        where,
        lambda r: {"token_usage_ledger": [ledger_row(validate_ledger(r))]},
        bad_line_max_bytes,
    )


def _process_records(
    kind: Kind,
    envelope: Envelope,
    where: Location,
    rows_of: Callable[[Any], Mapping[str, list[Row]]],
    bad_line_max_bytes: int,
) -> Processed:
    out = Processed()
    for i, record in enumerate(envelope.records):
        try:
            rows = rows_of(record)
        except InvalidInput as exc:
            loc = Location(where.topic, where.partition, where.offset, i)
            dead = DeadLetter.of_input(kind, exc.at(loc), record, max_bytes=bad_line_max_bytes)
            out.dead.append(dead)
            out.outcomes["dead_letter"] += 1
            continue
        for table, table_rows in rows.items():
            out.rows.setdefault(table, []).extend(table_rows)
        out.outcomes["stored"] += 1
    return out


def _kept(record: Any) -> tuple[Any, str]:
    """What a dead letter may build on of a bad transcript record: the object whose structure it
    keeps (the watcher's ``shape``, or the stripped ``line``) and the line's SHA-256 ('' when the
    watcher did not send one). A ``raw`` text (older watchers) is never kept."""
    if not isinstance(record, dict):
        return None, ""
    digest = record.get("sha256")
    digest = digest if isinstance(digest, str) and len(digest) == 64 else ""
    for key in ("shape", "line"):
        if key in record:
            return record[key], digest
    return None, digest


def _position(record: Any) -> tuple[int, int]:
    if type(record) is dict:  # the watcher's records: exact types, checked first (every line)
        offset, length = record.get("offset"), record.get("length", 0)
        if type(offset) is int and type(length) is int:
            return offset, length
    if not isinstance(record, dict):
        return -1, 0
    offset, length = record.get("offset"), record.get("length", 0)
    ok = isinstance(offset, int) and not isinstance(offset, bool)
    ok_len = isinstance(length, int) and not isinstance(length, bool)
    return (offset if ok else -1), (length if ok_len else 0)  # type: ignore[return-value]
