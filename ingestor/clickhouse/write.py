"""Micro-batches of rows, flushed to ClickHouse by size and age.

ClickHouse prefers 10k–100k rows an insert and about one insert a second per table, so rows of
every envelope accumulate here until ``batch_max_rows``, ``batch_max_bytes`` (of the messages
they came from: the worker's memory) or ``batch_max_age_s``. ``write`` is the
only I/O; it is blocking (the worker runs it in a thread) and either stores the whole batch or
raises ``StorageError`` after its retries.

Exactly-once, table by table:
* ``transcript_lines``, ``dead_letters``, ``session_summaries`` are ReplacingMergeTrees keyed by
  the row's identity: a replayed row replaces itself and no rollup reads them.
* ``events``, ``tool_calls``, ``agent_steps``, ``token_usage_ledger`` are keyed by an id, and
  ``events`` feeds the rollups, which would count a replayed row twice. Before inserting, rows
  whose id the table already holds are dropped (and duplicates inside the batch), so a replay
  after a crash inserts nothing.
* The events rollups (hourly/daily metrics, per-user usage) are written from ``events`` right
  after it, for this batch and for any earlier batch a crash left half rolled up: a re-delivered
  event that is already stored names its batch (``clickhouse/rollups.py``).
* Every insert carries an ``insert_deduplication_token``; a retry of the same batch after an
  ambiguous failure is deduplicated by ClickHouse.
* ``counted_usage`` (the dedup winners reports read) is brought up to date from what is stored,
  after every other table and before the positions, so a batch whose positions are stored has
  its winners decided (``clickhouse/winners.py``; recomputed from stored state, so a replay writes
  nothing new).
* ``file_positions`` (the resume point after a whole-tree kill) is written last: a position is
  stored only once every line before it is (``clickhouse/positions.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, NamedTuple

from ingestor.clickhouse.engine import ClickHouse, quote_string
from ingestor.clickhouse.positions import POSITIONS_TABLE, batch_positions
from ingestor.clickhouse.retry import call_with_retry
from ingestor.clickhouse.rollups import pending, roll_up
from ingestor.clickhouse.winners import BatchCopies, batch_copies, maintain_winners
from ingestor.rows.columns import RowColumns, Rows
from ingestor.usage.winners import CountedChange

__all__ = ["ID_COLUMNS", "LINES_TABLE", "Batch", "BatchLines", "batch_lines", "write_batch"]

Row = dict[str, Any]

# Tables whose rows are stored once by id, and the column that identifies a row in each.
ID_COLUMNS: Mapping[str, str] = {
    "events": "event_id",
    "tool_calls": "event_id",
    "agent_steps": "event_id",
    "token_usage_ledger": "request_id",
}
# Parents before children: a crash between inserts leaves children to be re-inserted, never
# orphans that a replay would then skip.
# The file positions come last of all: they vouch for everything before them.
_ORDER = (
    "transcript_lines",
    "dead_letters",
    "events",
    "tool_calls",
    "agent_steps",
    "token_usage_ledger",
    "session_summaries",
    POSITIONS_TABLE,
)


class Batch:
    """Rows waiting for ClickHouse, with the size/age rule that says when to flush. Pure.

    ``due``: full, or as old as ``max_age_s``. ``due(idle=True)``, when no insert is in flight,
    also once the oldest row waited ``min_age_s``: a trickle is stored within an insert's time
    instead of waiting for the age bound, while a backlog still makes large batches, the rows
    that come in while the insert before runs (group commit). ``due(behind=True)``, while the
    input holds a backlog, waits for ``backlog_rows`` rows or ``backlog_age_s`` instead of the
    ages: the rows behind wait in the input anyway, and fewer, larger inserts store them with
    less work. ``full``: at the byte limit or the rows limit (``backlog_rows`` when behind), the
    one reason to wait for an insert in flight (an old batch just goes next).
    """

    def __init__(
        self,
        max_rows: int,
        max_age_s: float,
        clock: Callable[[], float],
        max_bytes: int | None = None,
        min_age_s: float | None = None,
        backlog_rows: int | None = None,
        backlog_age_s: float | None = None,
    ) -> None:
        self._max_rows = max_rows
        self._backlog_rows = min(max_rows, backlog_rows or max_rows)
        self._backlog_age_s = max_age_s if backlog_age_s is None else backlog_age_s
        self._max_age_s = max_age_s
        self._min_age_s = max_age_s if min_age_s is None else min(min_age_s, max_age_s)
        self._max_bytes = max_bytes
        self._clock = clock
        self.rows: dict[str, Rows] = {}
        self.size = 0
        self.nbytes = 0
        self._started: float | None = None

    def add(self, rows: Mapping[str, Iterable[Row]], nbytes: int = 0) -> None:
        """Add rows; ``nbytes`` is what they came from (a message's size), for the byte limit."""
        self.nbytes += nbytes
        for table, new in rows.items():
            bucket = self.rows.get(table)
            if bucket is None:  # columns stay columns: concatenated, not made dicts
                bucket = new.like() if isinstance(new, RowColumns) else []
                self.rows[table] = bucket
            before = len(bucket)
            bucket.extend(new)
            self.size += len(bucket) - before
        if self._started is None:
            self._started = self._clock()

    def full(self, *, behind: bool = False) -> bool:
        """At the byte or row limit: what may make the agent wait for an insert in flight."""
        if self._max_bytes is not None and self.nbytes >= self._max_bytes:
            return True
        return self.size >= (self._backlog_rows if behind else self._max_rows)

    def due(self, *, idle: bool = False, behind: bool = False) -> bool:
        if self._started is None:
            return False
        if self.full(behind=behind):
            return True
        age = self._clock() - self._started
        if behind:
            return age >= self._backlog_age_s
        return age >= (self._min_age_s if idle else self._max_age_s)

    def ready(self, *, inflight: bool, rested: bool = True, behind: bool = False) -> bool:
        """Whether the agent flushes now. With an insert in flight only a full batch (which then
        waits for it): waiting on age stalled the stream half the time once inserts took longer
        than the age bound, and an old batch goes as that insert ends. Else ``due``, at the short
        age only once the insert thread ``rested`` (each insert pays a fixed cost)."""
        if inflight:
            return self.full(behind=behind)
        return self.due(idle=rested, behind=behind)

    def take(self) -> dict[str, Rows]:
        rows, self.rows, self.size, self._started = self.rows, {}, 0, None
        self.nbytes = 0
        return rows


def write_batch(
    ch: ClickHouse,
    rows: Mapping[str, Sequence[Row]],
    *,
    token: str,
    retries: int,
    backoff_s: float,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[], None] | None = None,
    positions: bool = True,
    changes: list[CountedChange] | None = None,
    lines: BatchLines | None = None,
) -> int:
    """Insert every table's rows (each once, retried with the same token), then the batch's file
    positions (not with ``positions=False``: a date-filtered backfill stores lines without
    vouching for the ones before them). Returns the rows stored (positions not counted).
    ``changes`` gets the lines that started or stopped counting (``maintain_winners``).
    ``lines``: the batch's ``batch_lines``, if the caller built them (else they are built
    here)."""
    stored = 0
    if lines is None:
        lines = batch_lines(ch, rows.get(LINES_TABLE))
    lines_table = None if lines is None else lines.table
    copies = None if lines is None else lines.copies
    named = batch_positions(rows)  # the generations the batch names, vouched for or not
    vouched = named if positions else []
    other = _ORDER.index("session_summaries")
    tables = sorted(rows, key=lambda t: _ORDER.index(t) if t in _ORDER else other)
    for table in [*(t for t in tables if t != POSITIONS_TABLE), POSITIONS_TABLE]:
        if table == POSITIONS_TABLE:
            # Each attempt decides again from stored state: a retry after an ambiguous failure
            # writes only what is still missing.
            call_with_retry(
                lambda: maintain_winners(ch, rows, named, changes, copies),
                retries=retries, backoff_s=backoff_s, sleep=sleep, on_retry=on_retry,
            )  # fmt: skip
        batch = vouched if table == POSITIONS_TABLE else rows[table]
        if not batch:
            continue

        # Batches whose events this batch found stored (the first attempt's, after a retry).
        stored_by: set[str] = set()

        def insert(
            table: str = table, batch: Sequence[Row] = batch, stored_by: set[str] = stored_by
        ) -> int:
            fresh = _unseen(ch, table, batch, stored_by)
            if fresh and table == _EVENTS:
                fresh = [{**row, "batch_id": token} for row in fresh]
                stored_by.add(token)
            if fresh:
                arrow = lines_table if table == LINES_TABLE and ch.target.kind == "chdb" else None
                ch.insert(table, fresh if arrow is None else arrow, token=f"{token}:{table}")
            return len(fresh)

        done = call_with_retry(
            insert, retries=retries, backoff_s=backoff_s, sleep=sleep, on_retry=on_retry
        )
        stored += done if table != POSITIONS_TABLE else 0
        if table == _EVENTS:
            call_with_retry(
                partial(_roll_up, ch, stored_by),
                retries=retries, backoff_s=backoff_s, sleep=sleep, on_retry=on_retry,
            )  # fmt: skip
    return stored


_EVENTS = "events"
LINES_TABLE = "transcript_lines"


class BatchLines(NamedTuple):
    """A batch's ``transcript_lines`` built for its store, reading nothing stored (so the worker
    builds them while the insert before runs: ``worker/flusher.py``)."""

    table: Any  # the columns as one Arrow table: chdb inserts it as it is
    copies: BatchCopies | None  # its usage lines' copies, taken from it (``maintain_winners``)


def batch_lines(ch: ClickHouse, lines: Sequence[Row] | None) -> BatchLines | None:
    """A batch's ``transcript_lines`` as ``BatchLines``, built once: chdb inserts the table (the
    insert would build the same), and the winners take the usage lines' copies from it. None
    for rows that are not columns, or that Arrow refuses (each insert then decides as before)."""
    if not isinstance(lines, RowColumns) or not lines:
        return None
    from ingestor.rows.arrow import arrow_table  # pyarrow only where batches are written

    table = arrow_table(lines, list(lines.columns), ch.column_types(LINES_TABLE))
    return None if table is None else BatchLines(table, batch_copies(ch, table))


def _roll_up(ch: ClickHouse, batches: set[str]) -> None:
    for batch_id in pending(ch, batches):
        roll_up(ch, batch_id)


def _unseen(ch: ClickHouse, table: str, batch: Sequence[Row], stored_by: set[str]) -> Sequence[Row]:
    """``batch`` without the rows ``table`` already holds (and repeats); the batches that stored
    those rows go to ``stored_by`` (events only)."""
    column = ID_COLUMNS.get(table)
    if column is None:
        return batch
    unique: dict[str, Row] = {}
    for row in batch:
        unique.setdefault(row[column], row)
    known: set[str] = set()
    ids = list(unique)
    by = "batch_id" if table == _EVENTS else "''"
    for start in range(0, len(ids), 10_000):
        chunk = ", ".join(quote_string(i) for i in ids[start : start + 10_000])
        found = ch.query(f"SELECT DISTINCT {column}, {by} FROM {table} WHERE {column} IN ({chunk})")
        known.update(str(r[0]) for r in found)
        stored_by.update(str(r[1]) for r in found if r[1])
    return [row for key, row in unique.items() if key not in known]
