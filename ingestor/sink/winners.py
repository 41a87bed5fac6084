"""Keep ``counted_usage`` equal to ccusage's rule over what ``transcript_lines`` holds.

The worker calls ``maintain_winners`` after a batch's lines are stored and before its file
positions (``sink/write.py``): the batch's usage lines are copied to ``usage_copies`` (ordered
by group), then every group the batch touched is decided again from all its stored copies and
the difference with ``counted_usage`` is written (``ingestor.usage.winners``). Exact under
retries, replays and crashes because each step is a recomputation against stored state:

* a crash before the positions are stored sends the batch's lines again (Kafka re-delivery, or
  the watcher resuming at ``file_positions``), which touches the same groups, and deciding a
  group whose counted rows are already right writes nothing;
* a crash in the middle leaves some groups behind; they are among the groups the re-sent batch
  touches, so the next pass sets them right;
* a new generation of a file (replaced, truncated, deleted: a tombstone announced by the batch
  before ``file_positions`` knows it) makes its older generation's counted lines stale: they
  are looked up and their groups decided again, with the batch's generations as current.

Memory is per batch: only the touched groups' copies are read, never the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, NamedTuple

from ingestor.errors import StorageError
from ingestor.sink.engine import ClickHouse, quote_string, sized_query
from ingestor.sink.positions import POSITIONS_TABLE, batch_positions, line_spans
from ingestor.sink.usage_rollup import new_batch_id, roll_up_counted
from ingestor.usage.dedup import Copy
from ingestor.usage.winners import (
    COLUMNS,
    KEY_COLUMNS,
    CountedKey,
    StoredCopy,
    changes,
    decide,
)

__all__ = [
    "batch_span",
    "ensure_winners",
    "maintain_winners",
    "rebuild_winners",
    "winners_ready",
]

_COPY_SOURCE = ", ".join(StoredCopy._fields)
# What the rule reads of a copy (``_Candidate``'s fields), then what a counted row carries.
_DECIDING = (
    *("dedup_scope", "message_id", "source_file", "source_generation", "source_offset"),
    *("request_id", "line_session_id", "is_sidechain", "speed"),
    "toUnixTimestamp64Milli(timestamp)",
    "input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens",
)
_DECIDE = ", ".join(_DECIDING)
_DECIDE_WIDTH = len(_DECIDING)
_VALUES = ", ".join(COLUMNS[len(KEY_COLUMNS) + 1 :])
_RECORDED_VALUES = ", ".join(f"any({c})" for c in COLUMNS[len(KEY_COLUMNS) + 1 :])
_KEYS = ", ".join(KEY_COLUMNS)
_READY_TABLE = "counted_usage_ready"
_REBUILD_CHUNK = 200_000  # copies decided at once when rebuilding: bounds the memory


def batch_span(
    rows: Mapping[str, Iterable[Mapping[str, Any]]],
    positions: Iterable[Mapping[str, Any]] | None = None,
) -> tuple[dict[tuple[str, int], int], dict[str, int]]:
    """What a stored batch touched: the first offset of its lines per (file, generation), and
    the newest generation it names of each file (lines, dead letters or an announcement: its
    ``batch_positions``, computed when not given). Pure."""
    lows: dict[tuple[str, int], int] = {}
    for file, generation, offset, _length in line_spans(rows.get("transcript_lines", ())):
        key = (file, generation)
        low = lows.get(key)
        if low is None or offset < low:
            lows[key] = offset
    generations: dict[str, int] = {}
    for position in batch_positions(rows) if positions is None else positions:
        file, generation = position["source_file"], position["source_generation"]
        generations[file] = max(generation, generations.get(file, generation))
    return lows, generations


def maintain_winners(
    ch: ClickHouse,
    rows: Mapping[str, Iterable[Mapping[str, Any]]],
    positions: Iterable[Mapping[str, Any]] | None = None,
) -> int:
    """Decide again every group the stored batch ``rows`` touched; the rows written.

    Call it after the batch's ``transcript_lines`` are stored and before its file positions
    (``positions``: its ``batch_positions``, when the caller has them). Idempotent; raises
    ``StorageError``.
    """
    lows, generations = batch_span(rows, positions)
    written = 0
    if lows:
        # The batch's lines, and any stored after them (a replay): a superset is harmless.
        # Files are listed literally (one hash lookup a row; an OR of ranges would cost a
        # comparison per range), past the default query size limit when needed (``sized_query``).
        first: dict[str, int] = {}
        for (f, _g), low in lows.items():
            first[f] = min(low, first.get(f, low))
        pairs = ", ".join(f"({quote_string(f)}, {g})" for f, g in lows)
        files = ", ".join(quote_string(f) for f in first)
        batch = (
            f"(source_file, source_generation) IN ({pairs}) AND source_offset >= "
            f"transform(source_file, [{files}], [{', '.join(map(str, first.values()))}], 0)"
        )
        ch.execute(
            sized_query(
                f"INSERT INTO usage_copies ({_COPY_SOURCE}) SELECT {_COPY_SOURCE} "
                f"FROM transcript_lines WHERE has_usage = 1 AND {batch}"
            )
        )  # every copy is stored before any group is decided
        touched = (
            f"(dedup_scope, message_id) IN (SELECT dedup_scope, message_id FROM usage_copies "
            f"WHERE message_id != '' AND {batch}) OR (message_id = '' AND {batch})"
        )
        written += _settle(ch, touched, generations)
    renewed = sorted((f, g) for f, g in generations.items() if g > 0)
    for renewed_files in _pieces(renewed, 200):
        written += _settle(ch, _stale_sql(renewed_files), generations)
    return written


def _pieces(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _stale_sql(files: list[tuple[str, int]]) -> str:
    """The groups of lines in these files older than the generation given (stale once the
    newer one is current: their groups are decided again without them)."""
    names = ", ".join(quote_string(f) for f, _ in files)
    older = (
        f"source_file IN ({names}) AND source_generation < "
        f"transform(source_file, [{names}], [{', '.join(str(g) for _, g in files)}], 0)"
    )
    return (
        f"(dedup_scope, message_id) IN (SELECT dedup_scope, message_id FROM counted_usage "
        f"WHERE message_id != '' AND {older}) OR (message_id = '' AND {older})"
    )


class _Candidate(NamedTuple):
    """A copy as ``_settle`` decides it: what the rule reads, and its row in the fetched copies
    (whose other columns travel back to ``counted_usage`` without becoming Python objects)."""

    dedup_scope: str
    message_id: str
    source_file: str
    source_generation: int
    source_offset: int
    request_id: str
    line_session_id: str
    is_sidechain: int
    speed: str
    timestamp: int  # epoch milliseconds
    total: int  # input + output + cache creation + cache read
    at: int

    def copy(self) -> Copy:
        return Copy(
            self.message_id or None, self.request_id or None, bool(self.is_sidechain),
            self.total, bool(self.speed), self.timestamp, Decimal(0),
            self.line_session_id or None,
        )  # fmt: skip


def _settle(ch: ClickHouse, where: str, generations: Mapping[str, int]) -> int:
    """Decide the groups ``where`` selects (whole groups only) and write the difference.

    Only the columns the rule reads become Python values; a counted row's values go from the
    fetched Arrow columns to the insert as they are (``_counted_rows``)."""
    fetched = ch.query_arrow(
        sized_query(f"SELECT {_DECIDE}, {_VALUES} FROM usage_copies WHERE {where}")
    )
    copies: list[_Candidate] = []
    if fetched.num_rows:
        columns = [fetched.column(i).to_pylist() for i in range(_DECIDE_WIDTH)]
        copies = list(map(_Candidate._make, zip(*columns, range(fetched.num_rows), strict=True)))
    current = _current_generations(ch, {c.source_file for c in copies})
    for file, generation in generations.items():
        current[file] = max(generation, current.get(file, generation))
    counted = decide(copies, current)
    found = ch.query_arrow(
        sized_query(
            f"SELECT {_KEYS}, sum(sign), {_RECORDED_VALUES} FROM counted_usage WHERE {where} "
            f"GROUP BY {_KEYS} HAVING sum(sign) != 0"
        )
    )
    recorded: dict[CountedKey, tuple[int, int]] = {}  # key -> (sum(sign), its row in found)
    if found.num_rows:
        width = len(KEY_COLUMNS)
        keys = [found.column(i).to_pylist() for i in range(width + 1)]
        for at, values in enumerate(zip(*keys, strict=True)):
            recorded[CountedKey(*values[:width])] = (int(values[width]), at)
    rewrites, fresh = changes(recorded, counted)
    out = _counted_rows(found, rewrites, fetched, fresh)
    if out is None:
        return 0
    import pyarrow as pa  # type: ignore[import-untyped]  # loaded by _counted_rows already

    batch_id = new_batch_id()
    ch.insert("counted_usage", out.append_column("batch_id", pa.array([batch_id] * out.num_rows)))
    roll_up_counted(ch, batch_id)  # a crash before it: the worker's next start does it
    return int(out.num_rows)


def _counted_rows(
    found: Any,
    rewrites: list[tuple[int, int]],
    fetched: Any,
    fresh: list[tuple[CountedKey, _Candidate]],
) -> Any:
    """The ``counted_usage`` rows (a ``pyarrow.Table`` of ``COLUMNS``) for ``changes``' answer:
    recorded rows taken from ``found`` (keys, sum, values), counted ones from ``fetched`` (the
    rule's columns, then the values) with their slots; None when there is nothing to write."""
    # Imported here: the CLI imports this module, and pyarrow costs ~0.17 s and ~35 MB in
    # every process that imports it (``up``, the watcher), not only the worker's.
    import pyarrow as pa

    parts = []
    width = len(KEY_COLUMNS)
    if rewrites:
        taken = found.take(pa.array([at for at, _ in rewrites], pa.int64()))
        arrays = [taken.column(i) for i in range(taken.num_columns)]
        arrays[width] = pa.array([sign for _, sign in rewrites], pa.int8())
        parts.append(arrays)
    if fresh:
        taken = fetched.take(pa.array([copy.at for _, copy in fresh], pa.int64()))
        place = [taken.column(i) for i in range(5)]  # scope, message id, file, generation, offset
        slots = [
            pa.array([key.slot_file for key, _ in fresh], pa.string()),
            pa.array([key.slot_offset for key, _ in fresh], pa.uint64()),
        ]
        values = [taken.column(i) for i in range(_DECIDE_WIDTH, taken.num_columns)]
        parts.append([*place, *slots, pa.array([1] * len(fresh), pa.int8()), *values])
    if not parts:
        return None
    if len(parts) == 1:
        return pa.Table.from_arrays(parts[0], names=list(COLUMNS))
    # Both results hold the same ClickHouse columns, so on chdb the same Arrow types; an engine
    # that builds them from Python values (the default ``query_arrow``) infers each its own:
    # there the values are joined as Python values and inferred once.
    merged = []
    for old, new in zip(*parts, strict=True):
        if new.type == old.type:
            merged.append(pa.chunked_array([*_chunks(old), *_chunks(new)], type=old.type))
        else:
            merged.append(pa.array([*old.to_pylist(), *new.to_pylist()]))
    return pa.Table.from_arrays(merged, names=list(COLUMNS))


def _chunks(column: Any) -> list[Any]:
    chunks = getattr(column, "chunks", None)  # a ChunkedArray's, else the one array
    return [column] if chunks is None else list(chunks)


def _current_generations(ch: ClickHouse, files: set[str]) -> dict[str, int]:
    """The newest generation ClickHouse knows of each of ``files``."""
    if not files:
        return {}
    listed = ", ".join(quote_string(f) for f in files)
    found = ch.query(
        sized_query(
            f"SELECT source_file, max(source_generation) FROM ("
            f"SELECT source_file, source_generation FROM transcript_lines "
            f"WHERE source_file IN ({listed}) UNION ALL "
            f"SELECT source_file, source_generation FROM {POSITIONS_TABLE} "
            f"WHERE source_file IN ({listed})) GROUP BY source_file"
        )
    )
    return {str(f): int(g) for f, g in found}


def winners_ready(ch: ClickHouse) -> bool:
    """Whether ``counted_usage`` holds every group's winners (else reports decide themselves)."""
    try:
        return bool(ch.query(f"SELECT count() FROM {_READY_TABLE}")[0][0])
    except StorageError:  # not migrated yet
        return False


def rebuild_winners(ch: ClickHouse) -> int:
    """Decide every stored group (data stored before the table existed), then mark the table
    ready. Groups are taken in hash chunks so memory stays bounded. Idempotent."""
    total = int(ch.query("SELECT count() FROM usage_copies")[0][0])
    chunks = max(1, -(-total // _REBUILD_CHUNK))
    written = 0
    # A group is (scope, message id); a line without message id is one by itself.
    group = "cityHash64(dedup_scope, message_id, if(message_id = '', source_file, ''))"
    for chunk in range(chunks):
        written += _settle(ch, f"{group} % {chunks} = {chunk}", {})
    ch.execute(f"INSERT INTO {_READY_TABLE} (ready_at) VALUES (now64(3))")
    return written


def ensure_winners(ch: ClickHouse) -> None:
    """Rebuild ``counted_usage`` once if it was never complete (the worker, at start)."""
    if ch.query(f"EXISTS TABLE {_READY_TABLE}")[0][0] and not winners_ready(ch):
        rebuild_winners(ch)
