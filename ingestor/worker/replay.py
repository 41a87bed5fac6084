"""Replayed Kafka messages into ClickHouse through the live worker's own path.

``replay_rows`` is the agent's handling without its side effects on live state: the same
``process_message`` (decode, rows, dead letters), the same ``with_dead_letter_rows``; then
``write_batch`` stores them with its id checks and deduplication tokens. What a replay must not
touch, it does not:

* the live aggregates, but through ClickHouse: a replayed line ClickHouse already holds changes
  nothing that counts; one it did not hold may, and the worker that stores a replayed chunk
  applies those changes to its sessions as it does a batch's (``worker/follow.py``; budget
  windows are not fed from replays);
* the dead-letter topic: its copy was sent when the message was first handled; the
  ``dead_letters`` row, keyed by the message's own topic, partition and offset, replaces itself.

So replaying a message ClickHouse already holds changes nothing: ``transcript_lines`` and
``dead_letters`` rows replace themselves (same key, same values), events and ledger rows whose id
is stored are dropped before the insert (so no rollup counts them twice), and a file
position at or below the stored one does not move ``max(end_offset)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ingestor.clickhouse.disk import write_with_room
from ingestor.clickhouse.engine import ClickHouse
from ingestor.clickhouse.write import write_batch
from ingestor.errors import Location
from ingestor.kafka.ranges import Message
from ingestor.settings import Settings
from ingestor.usage.winners import CountedChange
from ingestor.wire import Kind
from ingestor.worker.process import RECORD_TABLES, process_message, with_dead_letter_rows

__all__ = ["Replayed", "replay_rows", "write_replayed"]

Row = dict[str, Any]


@dataclass(slots=True)
class Replayed:
    """Rows built from replayed messages, and what they count."""

    rows: dict[str, list[Row]]
    messages: int = 0
    records: int = 0  # transcript lines, events, ledger entries
    dead_letters: int = 0


def replay_rows(
    messages: Iterable[Message], kinds: Mapping[str, Kind], *, bad_line_max_bytes: int
) -> Replayed:
    """The rows of ``messages``, each built as the worker builds it. Pure.

    ``kinds`` maps a topic name to the wire kind of its messages; a message of another topic
    raises ``KeyError`` (the caller chose the topics).
    """
    out = Replayed(rows={})
    for message in messages:
        kind = kinds[message.topic]
        where = Location(message.topic, message.partition, message.offset)
        processed = process_message(
            kind, message.value, where, bad_line_max_bytes=bad_line_max_bytes
        )
        with_dead_letter_rows(processed)
        for table, rows in processed.rows.items():
            out.rows.setdefault(table, []).extend(rows)
        out.messages += 1
        out.records += sum(len(processed.rows.get(t, ())) for t in RECORD_TABLES)
        out.dead_letters += len(processed.dead)
    return out


def write_replayed(
    ch: ClickHouse,
    replayed: Replayed,
    settings: Settings,
    *,
    token: str,
    changes: list[CountedChange] | None = None,
) -> int:
    """Store ``replayed.rows`` as the worker stores a batch (blocking; raises ``StorageError``).

    Returns the rows inserted (events and ledger rows already stored are not); ``changes`` gets
    the lines that started or stopped counting (``write_batch``)."""
    return write_with_room(
        ch,
        settings.disk_reserve_mb,
        lambda: write_batch(
            ch,
            replayed.rows,
            token=token,
            retries=settings.insert_retries,
            backoff_s=settings.insert_backoff_s,
            changes=changes,
        ),
    )
