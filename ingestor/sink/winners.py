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
from typing import Any

from ingestor.errors import StorageError
from ingestor.sink.engine import ClickHouse, quote_string
from ingestor.sink.positions import POSITIONS_TABLE, batch_positions
from ingestor.usage.winners import (
    COLUMNS,
    KEY_COLUMNS,
    CountedKey,
    StoredCopy,
    decide,
    diff,
)

__all__ = [
    "batch_span",
    "ensure_winners",
    "maintain_winners",
    "rebuild_winners",
    "winners_ready",
]

_COPY_COLUMNS = ", ".join(
    "toUnixTimestamp64Milli(timestamp)" if c == "timestamp" else c for c in StoredCopy._fields
)
_COPY_SOURCE = ", ".join(StoredCopy._fields)
_RECORDED_VALUES = ", ".join(
    "any(toUnixTimestamp64Milli(timestamp))" if c == "timestamp" else f"any({c})"
    for c in COLUMNS[len(KEY_COLUMNS) + 1 :]
)
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
    for row in rows.get("transcript_lines", ()):
        key = (row["source_file"], row["source_generation"])
        offset = row["source_offset"]
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
        # comparison per range), past the default query size limit when needed (``_sized``).
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
            _sized(
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


def _settle(ch: ClickHouse, where: str, generations: Mapping[str, int]) -> int:
    """Decide the groups ``where`` selects (whole groups only) and write the difference."""
    columns = ch.query_columns(_sized(f"SELECT {_COPY_COLUMNS} FROM usage_copies WHERE {where}"))
    copies = [StoredCopy(*values) for values in zip(*columns, strict=True)] if columns else []
    current = _current_generations(ch, {c.source_file for c in copies})
    for file, generation in generations.items():
        current[file] = max(generation, current.get(file, generation))
    counted = decide(copies, current)
    recorded: dict[CountedKey, tuple[int, dict[str, Any]]] = {}
    found = ch.query_columns(
        _sized(
            f"SELECT {_KEYS}, sum(sign), {_RECORDED_VALUES} FROM counted_usage WHERE {where} "
            f"GROUP BY {_KEYS} HAVING sum(sign) != 0"
        )
    )
    width = len(KEY_COLUMNS)
    for values in zip(*found, strict=True) if found else ():
        key = CountedKey(*values[:width])
        row = dict(zip(COLUMNS[:width], values[:width], strict=True))
        row.update(zip(COLUMNS[width + 1 :], values[width + 1 :], strict=True))
        recorded[key] = (int(values[width]), row)
    out = diff(recorded, counted)
    if out:
        ch.insert("counted_usage", out)
    return len(out)


def _current_generations(ch: ClickHouse, files: set[str]) -> dict[str, int]:
    """The newest generation ClickHouse knows of each of ``files``."""
    if not files:
        return {}
    listed = ", ".join(quote_string(f) for f in files)
    found = ch.query(
        _sized(
            f"SELECT source_file, max(source_generation) FROM ("
            f"SELECT source_file, source_generation FROM transcript_lines "
            f"WHERE source_file IN ({listed}) UNION ALL "
            f"SELECT source_file, source_generation FROM {POSITIONS_TABLE} "
            f"WHERE source_file IN ({listed})) GROUP BY source_file"
        )
    )
    return {str(f): int(g) for f, g in found}


def _sized(sql: str) -> str:
    """``sql`` with a query size limit that admits it (ClickHouse's default is 256 KiB; a
    ``SETTINGS`` clause in the query itself raises it for that query)."""
    if len(sql.encode()) < 200_000:
        return sql
    return f"{sql} SETTINGS max_query_size = {len(sql.encode()) + 65_536}"


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
