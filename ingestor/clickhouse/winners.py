"""Keep ``counted_usage`` equal to ccusage's rule over what ``transcript_lines`` holds.

The worker calls ``maintain_winners`` after a batch's lines are stored and before its file
positions (``clickhouse/write.py``): the batch's usage lines are copied to ``usage_copies`` (ordered
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

The copies are the batch's own rows, inserted after its ``transcript_lines`` insert returned
(so a copy is of a stored line; the two tables' columns have the same types, so a copy holds
what reading the line back would give). A crash between the two inserts leaves lines without
copies; the re-sent batch copies them before deciding anything. A line stored twice (a replay,
a retry) is copied twice, one line to every reader (``usage_copies`` replaces it, ``decide``
takes it once). A group with no copy is not decided (nothing read, nothing written): every
counted row is a copy's, written from it or repeating one so written, and ``usage_copies``
never loses a line.

Which groups were stored before the batch, ``copy_groups`` says (schema 0017): a key for every
group with a stored copy, written before the copies, looked up by point. A group without a key
had no copy, hence no counted row, before the batch: it is decided from the batch's own copies
with nothing read. The others are read by their sorting key; a lookup of random message ids in
``usage_copies`` itself reads nearly every granule, which made each batch cost grow with the
history. A key without copies (a crash between the two inserts) only makes its group be read.

Memory is per batch: only the touched groups' copies are read, never the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from hashlib import md5
from itertools import compress
from typing import Any, NamedTuple

import orjson

from ingestor.clickhouse.engine import ClickHouse, quote_string, sized_query
from ingestor.clickhouse.positions import POSITIONS_TABLE, batch_positions
from ingestor.clickhouse.usage_rollup import new_batch_id, roll_up_counted
from ingestor.errors import StorageError
from ingestor.rows.columns import RowColumns, Rows, column_of
from ingestor.usage.dedup import Copy
from ingestor.usage.winners import (
    COLUMNS,
    KEY_COLUMNS,
    CountedChange,
    CountedKey,
    StoredCopy,
    changes,
    decide,
)

__all__ = [
    "BatchCopies",
    "batch_copies",
    "batch_generations",
    "changes_of",
    "ensure_winners",
    "maintain_winners",
    "rebuild_winners",
    "usage_copies",
    "winners_ready",
]

# What the rule reads of a copy (``_Candidate``'s fields), then what a counted row carries.
_DECIDING = (
    *("dedup_scope", "message_id", "source_file", "source_generation", "source_offset"),
    *("request_id", "line_session_id", "is_sidechain", "speed"),
    "toUnixTimestamp64Milli(timestamp)",
    "input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens",
)
_DECIDE = ", ".join(_DECIDING)
_DECIDE_WIDTH = len(_DECIDING)
_VALUE_NAMES = COLUMNS[len(KEY_COLUMNS) + 1 :]
_VALUES = ", ".join(_VALUE_NAMES)
_RECORDED_VALUES = ", ".join(f"any({c})" for c in _VALUE_NAMES)
_TOKENS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")
_GROUPS_TABLE = "copy_groups"
_KEYS = ", ".join(KEY_COLUMNS)
_READY_TABLE = "counted_usage_ready"
_REBUILD_CHUNK = 200_000  # copies decided at once when rebuilding: bounds the memory
_LISTED_SCOPES = 6  # a batch's scopes whose message ids are looked up one list a scope
_SUMMED_HERE = 2_000  # counted rows a batch sums in Python for usage_rollup (``_settle``)


def batch_generations(
    rows: Mapping[str, Iterable[Mapping[str, Any]]],
    positions: Iterable[Mapping[str, Any]] | None = None,
) -> dict[str, int]:
    """The newest generation a stored batch names of each file (lines, dead letters or an
    announcement: its ``batch_positions``, computed when not given). Pure."""
    generations: dict[str, int] = {}
    for position in batch_positions(rows) if positions is None else positions:
        file, generation = position["source_file"], position["source_generation"]
        generations[file] = max(generation, generations.get(file, generation))
    return generations


def maintain_winners(
    ch: ClickHouse,
    rows: Mapping[str, Iterable[Mapping[str, Any]]],
    positions: Iterable[Mapping[str, Any]] | None = None,
    changed: list[CountedChange] | None = None,
    copies: BatchCopies | None = None,
) -> int:
    """Decide again every group the stored batch ``rows`` touched; the rows written.

    Call it after the batch's ``transcript_lines`` are stored and before its file positions
    (``positions``: its ``batch_positions``, when the caller has them). Idempotent; raises
    ``StorageError``. ``changed`` gets every row written, as soon as ClickHouse confirmed it
    (a retry after a failure half way adds only what the first attempt did not write).
    ``copies``: the ``batch_copies`` of the Arrow table the batch's ``transcript_lines`` were
    built into, if any (its copies are then taken from it, not converted again).
    """
    generations = batch_generations(rows, positions)
    written = 0
    if copies is not None:
        if copies.table.num_rows:
            written += _settle_batch(ch, None, generations, changed, copies)
    elif listed := usage_copies(rows.get("transcript_lines", ())):
        written += _settle_batch(ch, listed, generations, changed)
    renewed = sorted((f, g) for f, g in generations.items() if g > 0)
    for renewed_files in _pieces(renewed, 200):
        written += _settle(ch, _stale_sql(renewed_files), generations, changed)
    return written


class BatchCopies(NamedTuple):
    """A batch's usage copies as ``_settle_batch`` takes them, nothing stored read (so they can
    be built before the batch's store begins)."""

    table: Any  # ``usage_copies``' columns (``_COPIED``) of its usage lines, in Arrow
    named: Any  # each copy's group name, f"{scope}\x00{message id}" (an Arrow array)
    keys: dict[int, str]  # ``copy_groups`` key -> name, of each group with a message id


def batch_copies(ch: ClickHouse, lines: Any) -> BatchCopies | None:
    """The ``BatchCopies`` of a batch's ``transcript_lines`` Arrow table; None where they are
    taken from its rows instead (``_copies_of``; a cluster, whose ``copy_groups`` are a
    node's)."""
    table = _copies_of(ch, lines) if _indexed(ch) else None
    return None if table is None else _named(table)


def _named(table: Any) -> BatchCopies:
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    message = table.column("message_id")
    named = pc.binary_join_element_wise(table.column("dedup_scope"), message, "\x00")
    groups = pc.unique(pc.filter(named, pc.not_equal(message, ""))).to_pylist()
    return BatchCopies(table, named, {_group_key(group): group for group in groups})


def _copies_of(ch: ClickHouse, lines: Any) -> Any:
    """``usage_copies`` of an Arrow table of ``transcript_lines`` rows: its usage lines'
    ``_COPIED`` columns, filtered and selected in C++ (what ``usage_copies`` then ``arrow_table``
    make of the rows, a second conversion of every value); None when a column's Arrow type
    differs between the two tables (the rows are converted then)."""
    import pyarrow.compute as pc

    from ingestor.rows.arrow import arrow_type

    types = ch.column_types("usage_copies")
    for column in _COPIED:
        kind = arrow_type(types[column]) if column in types else None
        if kind is None or lines.schema.field(column).type != kind:
            return None
    # Selected first: the filter then copies only the copied columns.
    return lines.select(list(_COPIED)).filter(pc.not_equal(lines.column("has_usage"), 0))


def _settle_batch(
    ch: ClickHouse,
    copies: Rows | None,
    generations: Mapping[str, int],
    changed: list[CountedChange] | None,
    built: BatchCopies | None = None,
) -> int:
    """Store the batch's copies and decide their groups; the counted rows written.

    A group ``copy_groups`` did not name before this batch has no copy stored before it, so no
    counted row either (a counted row is a copy's): it is decided from the batch's own copies,
    read nothing. The others (and lines without message id, looked up by identity) are decided
    from every stored copy. The new groups' keys go in before the copies, so a crash in between
    leaves keys whose groups the re-sent batch looks up, never copies without a key."""
    import pyarrow as pa  # only where batches are written
    import pyarrow.compute as pc

    from ingestor.rows.arrow import arrow_table

    # The copies as Arrow once: inserted, and those of new groups decided, from the same table
    # (``built``, when the caller took them from the lines' own).
    if built is None:
        assert copies is not None
        types = ch.column_types("usage_copies")
        table = arrow_table(copies, _COPIED, types) if _indexed(ch) else None
        if table is None:  # (or a value Arrow refuses: every group looked up)
            ch.insert("usage_copies", copies)
            return _settle(ch, _touched_sql(_identities(copies)), generations, changed)
        built = _named(table)
    table, named, keys = built
    new: list[str] = []
    if keys:  # (no key to ask: no lookup, no scan of the keys)
        fresh_keys = keys.keys() - _stored_keys(ch, keys)
        if fresh_keys:
            listed = pa.array(sorted(fresh_keys), pa.uint64())
            ch.insert(_GROUPS_TABLE, pa.table({"group_hash": listed}))
            new = [keys[key] for key in fresh_keys]
    ch.insert("usage_copies", table)  # before deciding any group
    if not new:
        return _settle(ch, _touched_sql(_identities(table)), generations, changed)
    # A line without message id is named by its scope and '', never a new group's name.
    own = pc.is_in(named, value_set=pa.array(new, named.type))
    fetched = _own_copies(table.filter(own))
    looked_up = table.select(list(_COPIED[:5])).filter(pc.invert(own))  # (its identities)
    if not looked_up.num_rows:
        return _decide(ch, fetched, None, generations, changed)
    stored, found = _stored(ch, _touched_sql(_identities(looked_up)))
    return _decide(ch, _joined(stored, fetched), found, generations, changed)


def _identities(copies: Any) -> list[tuple[str, str, str, int, int]]:
    """(scope, message id, file, generation, offset) of each copy (rows, or an Arrow table)."""
    if hasattr(copies, "column_names"):
        columns = [copies.column(c).to_pylist() for c in _COPIED[:5]]
    else:
        columns = [column_of(copies, c) for c in _COPIED[:5]]
    return list(zip(*columns, strict=True))


def _indexed(ch: ClickHouse) -> bool:
    """Whether ``copy_groups`` answers for every stored group: one per server; a cluster's
    nodes would each hold their own (schema/0017)."""
    return not (ch.target.kind == "server" and ch.target.cluster)


def _group_key(name: str) -> int:
    """The key in ``copy_groups`` of the group named ``f"{scope}\\x00{message_id}"``:
    schema/0017 computes the same in SQL."""
    digest = md5(name.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "little")


def _stored_keys(ch: ClickHouse, keys: Iterable[int]) -> set[int]:
    """Those of ``keys`` that ``copy_groups`` holds: point lookups, whatever the history.

    The keys travel as one JSON string: ClickHouse parsed a batch's ~10k literals in ~30 ms of
    CPU on the calling thread, half the lookup (measured on 1M lines: 53 ms against 28)."""
    listed = _json_set(keys, "UInt64")
    found = ch.query(
        sized_query(f"SELECT group_hash FROM {_GROUPS_TABLE} WHERE group_hash IN {listed}")
    )
    return {int(key) for (key,) in found}


def _own_copies(table: Any) -> Any:
    """Copies as Arrow (``usage_copies``' columns) as ``_settle`` fetches them: the rule's
    columns (``_DECIDING``), then the values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    tokens = [table.column(c) for c in _TOKENS]
    total = pc.add(pc.add(tokens[0], tokens[1]), pc.add(tokens[2], tokens[3]))  # UInt64 wraps
    stamp = table.column("timestamp")
    ms = stamp.cast(pa.timestamp("ms", stamp.type.tz)).cast(pa.int64())
    columns = [*(table.column(c) for c in _DECIDING[:9]), ms, total]
    columns += [table.column(c) for c in _VALUE_NAMES]
    return pa.Table.from_arrays(columns, names=[f"c{i}" for i in range(len(columns))])


# usage_copies' columns: transcript_lines' of the same names and types (schema/0013, 0016).
_COPIED = StoredCopy._fields


def usage_copies(lines: Iterable[Mapping[str, Any]]) -> Rows:
    """The ``usage_copies`` rows of a batch's ``transcript_lines`` rows: its usage lines, each
    value as the line holds it (so inserted as the line was). Pure.

    Columns stay columns (a dict a row cost what the worker's loop saved by not making one)."""
    if isinstance(lines, RowColumns):
        usage = lines.raw("has_usage")
        data = [list(compress(lines.raw(column), usage)) for column in _COPIED]
        return RowColumns(_COPIED, data, lines.times)
    return [{column: row[column] for column in _COPIED} for row in lines if row["has_usage"]]


def _touched_sql(identities: Iterable[tuple[str, str, str, int, int]]) -> str:
    """The groups of copies of these identities (scope, message id, file, generation, offset),
    by ``usage_copies``' and ``counted_usage``'s sorting key:
    ``(scope, message id)``, a line without one by itself. The keys travel as JSON strings
    (ClickHouse parsed a list of 1,000 literal tuples in ~50 ms of CPU): message ids one list a
    scope for a few scopes, else (scope, message id) pairs (5,000 groups over 300k copies: one
    scope 11 ms against 21 for pairs, 6 scopes 17 against 20, 50 scopes 104 against 36)."""
    ids: dict[str, set[str]] = {}
    loose: set[tuple[str, str, int, int]] = set()
    for scope, message_id, file, generation, offset in identities:
        if message_id:
            ids.setdefault(scope, set()).add(message_id)
        else:
            loose.add((scope, file, generation, offset))
    if len(ids) <= _LISTED_SCOPES:
        where = [
            f"(dedup_scope = {quote_string(scope)} AND message_id IN {_json_set(group, 'String')})"
            for scope, group in sorted(ids.items())
        ]
    else:
        pairs = [(scope, message_id) for scope, group in ids.items() for message_id in group]
        where = [f"(dedup_scope, message_id) IN {_json_set(pairs, 'Tuple(String, String)')}"]
    if loose:
        identity = "(dedup_scope, source_file, source_generation, source_offset)"
        keys = _json_set(loose, "Tuple(String, String, UInt32, UInt64)")
        where.append(f"(message_id = '' AND {identity} IN {keys})")
    return " OR ".join(where)


def _json_set(keys: Iterable[Any], kind: str) -> str:
    """A subquery of ``keys``, values of ClickHouse type ``kind``, for ``IN``."""
    listed = quote_string(orjson.dumps(list(keys)).decode())
    return f"(SELECT arrayJoin(JSONExtract({listed}, 'Array({kind})')))"


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


def _settle(
    ch: ClickHouse,
    where: str,
    generations: Mapping[str, int],
    changed: list[CountedChange] | None = None,
) -> int:
    """Decide the groups ``where`` selects (whole groups only) from their stored copies and
    counted rows, and write the difference (also to ``changed``, once stored)."""
    fetched, found = _stored(ch, where)
    return _decide(ch, fetched, found, generations, changed)


def _stored(ch: ClickHouse, where: str) -> tuple[Any, Any]:
    """The stored copies (``_settle``'s columns) and the counted rows with ``sum(sign) != 0``
    of the groups ``where`` selects; no counted row is read where no copy is (a counted row is
    a copy's, written from one or repeating one written so, and usage_copies never loses a
    line)."""
    fetched = ch.query_arrow(
        sized_query(f"SELECT {_DECIDE}, {_VALUES} FROM usage_copies WHERE {where}")
    )
    if not fetched.num_rows:
        return fetched, None
    found = ch.query_arrow(
        sized_query(
            f"SELECT {_KEYS}, sum(sign), {_RECORDED_VALUES} FROM counted_usage WHERE {where} "
            f"GROUP BY {_KEYS} HAVING sum(sign) != 0"
        )
    )
    return fetched, found


def _decide(
    ch: ClickHouse,
    fetched: Any,
    found: Any,
    generations: Mapping[str, int],
    changed: list[CountedChange] | None,
) -> int:
    """Decide the groups of the copies ``fetched`` (every copy of each; ``_settle``'s columns)
    against their counted rows ``found`` (None: they have none), and write the difference.

    The rule runs over columns (``_decided``); a counted row's values go from the fetched Arrow
    columns to the insert as they are (``_counted_rows``), and keys become Python values only
    where there are counted rows to compare them with."""
    if not fetched.num_rows:
        return 0
    import pyarrow as pa

    files = pa.table({"f": fetched.column(2), "g": fetched.column(3)})
    newest = files.group_by("f").aggregate([("g", "max")])
    known = {  # the rule reads the generations of the copies' files only
        str(file): max(int(generation), generations.get(str(file), 0))
        for file, generation in zip(
            newest.column("f").to_pylist(), newest.column("g_max").to_pylist(), strict=True
        )
    }
    winners, slots = _decided(fetched, _current_generations(ch, known))
    recorded: dict[CountedKey, tuple[int, int]] = {}  # key -> (sum(sign), its row in found)
    if found is not None and found.num_rows:
        width = len(KEY_COLUMNS)
        keys = [found.column(i).to_pylist() for i in range(width + 1)]
        for at, values in enumerate(zip(*keys, strict=True)):
            recorded[CountedKey(*values[:width])] = (int(values[width]), at)
    rewrites: list[tuple[int, int]] = []
    if recorded:
        counted = {key: at for at, key in enumerate(_counted_keys(fetched, winners, slots))}
        rewrites, fresh = changes(recorded, counted)
        chosen = [at for _, at in fresh]
        winners, slots = winners[chosen], slots[chosen]
    out = _counted_rows(found, rewrites, fetched, winners, slots)
    if out is None:
        return 0
    batch_id = new_batch_id()
    written = changes_of(out) if changed is not None else []
    ch.insert("counted_usage", out.append_column("batch_id", pa.array([batch_id] * out.num_rows)))
    if changed is not None:
        changed.extend(written)
    # A few rows are summed as they are at hand (reading them back cost ~30 ms of CPU, summing
    # 1,000 rows in Python 4 ms); many are read back (Python's 4 µs a row would then cost more,
    # with the GIL held). A crash before it: the worker's next start sums the batch.
    roll_up_counted(ch, batch_id, out if out.num_rows <= _SUMMED_HERE else None)
    return int(out.num_rows)


def _decided(fetched: Any, current: Mapping[str, int]) -> tuple[Any, Any]:
    """Row indices into ``fetched`` (numpy int64 arrays): each counted line's, and its slot's.

    Groups of one request id and lines without message id are decided over columns
    (``winners_columns``); the other groups' copies become ``_Candidate`` values for
    ``decide``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from ingestor.usage.winners_columns import decide_columns

    scope, message, file, generation, offset, request, _, side, speed, _, total = (
        _flat(fetched.column(i)) for i in range(_DECIDE_WIDTH)
    )
    listed = list(current)
    newest = pa.array([current[f] for f in listed], pa.int64())
    at = pc.index_in(file, value_set=pa.array(listed, file.type))
    is_current = pc.equal(generation.cast(pa.int64()), pc.take(newest, at)).fill_null(True)
    group = _codes(pc.binary_join_element_wise(scope, message, "\x00"), pc.equal(message, ""))
    decided = decide_columns(
        group,
        _numpy(pc.rank(file, sort_keys="ascending", tiebreaker="dense")),
        _numpy(generation),
        _numpy(offset),
        _numpy(is_current),
        _codes(request, pc.equal(request, "")),
        _numpy(side),
        _numpy(total),
        _numpy(pc.not_equal(speed, "")),
    )
    if not len(decided.rest):
        return decided.winners, decided.slots
    rest = fetched.select(range(_DECIDE_WIDTH)).take(pa.array(decided.rest))
    columns = [rest.column(i).to_pylist() for i in range(_DECIDE_WIDTH)]
    copies = list(map(_Candidate._make, zip(*columns, decided.rest.tolist(), strict=True)))
    where = {(c.source_file, c.source_offset): c.at for c in copies}
    counted = decide(copies, current)
    winners = [copy.at for copy in counted.values()]
    slots = [where[key.slot_file, key.slot_offset] for key in counted]
    return (
        np.concatenate((decided.winners, np.array(winners, np.int64))),
        np.concatenate((decided.slots, np.array(slots, np.int64))),
    )


def _flat(column: Any) -> Any:
    """One array of a column (a query's may come in chunks, which compute would code apart)."""
    return column.combine_chunks() if hasattr(column, "combine_chunks") else column


def _numpy(array: Any) -> Any:
    return array.to_numpy(zero_copy_only=False)


def _codes(strings: Any, none: Any) -> Any:
    """Each string's code (equal strings, equal codes), -1 where ``none`` is true."""
    import numpy as np
    import pyarrow.compute as pc

    codes = _numpy(pc.dictionary_encode(strings).indices).astype(np.int64)
    return np.where(_numpy(none), -1, codes)


def _counted_keys(fetched: Any, winners: Any, slots: Any) -> list[CountedKey]:
    """The ``CountedKey`` of each counted line (``_decided``'s indices into ``fetched``)."""
    import pyarrow as pa

    # Only the columns read are taken (a take copies every column it is given).
    lines = fetched.select(range(5)).take(pa.array(winners, pa.int64()))
    places = fetched.select([2, 4]).take(pa.array(slots, pa.int64()))
    columns = [lines.column(i).to_pylist() for i in range(5)]
    columns += [places.column(0).to_pylist(), places.column(1).to_pylist()]
    return list(map(CountedKey._make, zip(*columns, strict=True)))


def _counted_rows(
    found: Any,
    rewrites: list[tuple[int, int]],
    fetched: Any,
    winners: Any,
    slots: Any,
) -> Any:
    """The ``counted_usage`` rows (a ``pyarrow.Table`` of ``COLUMNS``) for ``changes``' answer:
    recorded rows taken from ``found`` (keys, sum, values), then the lines that start counting
    (``winners``, rows of ``fetched``: the rule's columns, then the values) in the places of
    their ``slots`` (rows of ``fetched`` too); None when there is nothing to write."""
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
    if len(winners):
        # Only the columns written are taken: the place, then the values.
        read = [*range(5), *range(_DECIDE_WIDTH, fetched.num_columns)]
        taken = fetched.select(read).take(pa.array(winners, pa.int64()))
        place = [taken.column(i) for i in range(5)]  # scope, message id, file, generation, offset
        slot = fetched.select([2, 4]).take(pa.array(slots, pa.int64()))
        where = [slot.column(0).cast(pa.string()), slot.column(1).cast(pa.uint64())]
        values = [taken.column(i) for i in range(5, taken.num_columns)]
        parts.append([*place, *where, pa.array([1] * len(winners), pa.int8()), *values])
    if not parts:
        return None
    if len(parts) == 1:
        return pa.Table.from_arrays([_typed(a) for a in parts[0]], names=list(COLUMNS))
    merged = [_appended(old, new) for old, new in zip(*parts, strict=True)]
    return pa.Table.from_arrays([_typed(a) for a in merged], names=list(COLUMNS))


def _joined(stored: Any, own: Any) -> Any:
    """The rows of ``own`` after those of ``stored`` (tables of the same columns)."""
    import pyarrow as pa

    if not stored.num_rows:
        return own
    columns = [_appended(a, b) for a, b in zip(stored.columns, own.columns, strict=True)]
    return pa.Table.from_arrays(columns, names=stored.column_names)


def _appended(old: Any, new: Any) -> Any:
    """Column ``new`` after column ``old``. Both hold the same ClickHouse column, so on chdb the
    same Arrow type; an engine that builds them from Python values (the default
    ``query_arrow``) infers each its own: there the values are joined as Python values and
    inferred once."""
    import pyarrow as pa

    if new.type != old.type:
        try:  # (a list's items "not null" on one side only: chdb's tool uses against ours)
            new = new.cast(old.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return pa.array([*old.to_pylist(), *new.to_pylist()])
    return pa.chunked_array([*_chunks(old), *_chunks(new)], type=old.type)


def _typed(column: Any) -> Any:
    """``column``, a list of nothing but empty lists typed as ClickHouse's arrays of strings: an
    engine that infers Arrow types from Python values makes it a list of nulls, which ClickHouse
    refuses to read into ``Array(String)`` (``tool_uses``)."""
    import pyarrow as pa

    if pa.types.is_list(column.type) and pa.types.is_null(column.type.value_type):
        return column.cast(pa.list_(pa.string()))
    return column


_CHANGE_COLUMNS = (
    *("sign", "dedup_scope", "source_file", "timestamp", "model", "input_tokens"),
    *("output_tokens", "cache_creation_tokens", "cache_read_tokens", "cost_usd", "tool_uses"),
)


def changes_of(counted: Any) -> list[CountedChange]:
    """The ``counted_usage`` rows of ``counted`` (a ``pyarrow.Table`` of ``COLUMNS``) as
    ``CountedChange`` values."""
    import pyarrow as pa

    columns = []
    for name in _CHANGE_COLUMNS:
        column = counted.column(name)
        if name == "timestamp":  # epoch milliseconds, whatever unit the engine's Arrow has
            column = column.cast(pa.timestamp("ms", column.type.tz)).cast(pa.int64())
        values = column.to_pylist()
        if name == "tool_uses":
            values = [tuple(tools or ()) for tools in values]
        columns.append(values)
    return list(map(CountedChange._make, zip(*columns, strict=True)))


def _chunks(column: Any) -> list[Any]:
    chunks = getattr(column, "chunks", None)  # a ChunkedArray's, else the one array
    return [column] if chunks is None else list(chunks)


def _current_generations(ch: ClickHouse, known: Mapping[str, int]) -> dict[str, int]:
    """The current generation of each file: the newest ClickHouse knows, given that it knows
    ``known[file]`` (a generation the batch names or a stored copy has)."""
    current = dict(known)
    if known:
        for file, generation in ch.query(sized_query(_newer_sql(known))):
            current[str(file)] = max(int(generation), current[str(file)])
    return current


def _newer_sql(known: Mapping[str, int]) -> str:
    """``(file, generation)``: each file of ``known`` with a generation newer than
    ``known[file]`` stored, and the newest. Only newer ones are looked for: the tables are
    ordered by file and generation, so this reads no granule of a file's history when there is
    none (all of it, when it asked for the maximum). Files are listed by generation (a batch's
    files are mostly of one): ``IN`` and one bound cost a third of a range a file (measured, 8
    files)."""
    by_generation: dict[int, list[str]] = {}
    for file, generation in known.items():
        by_generation.setdefault(generation, []).append(file)
    newer = " OR ".join(
        f"(source_file IN ({', '.join(map(quote_string, files))}) AND source_generation > {g})"
        for g, files in sorted(by_generation.items())
    )
    return (
        f"SELECT source_file, max(source_generation) FROM ("
        f"SELECT source_file, source_generation FROM transcript_lines WHERE {newer} "
        f"UNION ALL SELECT source_file, source_generation FROM {POSITIONS_TABLE} "
        f"WHERE {newer}) GROUP BY source_file"
    )


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
