"""``ClickHouse`` on chdb: ClickHouse in this process, data under ``target.path``.

chdb allows one data path per process (and one process per path: a second one fails with
"Cannot lock file"), and its session is not safe to call from two threads at once, so every call
holds ``self._lock``. Inserts travel as an Arrow table that chdb reads in place with the GIL
released (``rows/arrow.py``), so an insert running in a worker thread overlaps with stream
processing; rows Arrow cannot type exactly, and a few rows of plain scalars, travel as
JSONCompactEachRow encoded by orjson.

A statement that fails on a broken data part (chdb commits some under a full disk) is run once
more after reopening the session, which has ClickHouse detach the part and bring back the parts
a broken merge was made of.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa  # type: ignore[import-untyped]

from ingestor.clickhouse import dedup_log
from ingestor.clickhouse.allocators import configure_allocators
from ingestor.clickhouse.engine import (
    UNMERGED_ON_INSERT,
    ClickHouse,
    is_broken_part,
    quote_identifier,
    quote_string,
    storage_error,
    table_name,
)
from ingestor.errors import StorageError
from ingestor.plain_settings import ClickHouseTarget
from ingestor.rows.arrow import arrow_table
from ingestor.rows.columns import RowColumns, column_of

configure_allocators()  # before chdb loads: its jemalloc reads its options then
from chdb import session as chdb_session  # noqa: E402

__all__ = ["ARROW_MIN_ROWS", "ChdbClickHouse"]

log = logging.getLogger(__name__)

# Session-wide settings: UTC rendering, unquoted 64-bit integers (orjson reads them exactly) and
# quoted decimals (so no float ever touches money).
_SESSION_SETTINGS = (
    "SET session_timezone = 'UTC'",
    "SET output_format_json_quote_64bit_integers = 0",
    "SET output_format_json_quote_decimals = 1",
)
# Parts ClickHouse detached as broken while loading the tables (this open's, by their time).
_DETACHED = (
    "SELECT database, table, name, path, partition_id, min_block_number, max_block_number"
    " FROM system.detached_parts"
    " WHERE reason LIKE 'broken%' AND modification_time >= toDateTime({since})"
)
# Whether an active part holds blocks of a detached one (a broken merge's sources, brought back).
_COVERED = (
    "SELECT count() FROM system.parts WHERE active AND database = {database} AND table = {table}"
    " AND partition_id = {partition} AND max_block_number >= {low} AND min_block_number <= {high}"
)
# Rows carry ISO datetimes ending in Z (orjson's encoding): best_effort reads them. Unknown
# keys are an error, not silently dropped.
_INSERT_SETTINGS = "date_time_input_format = 'best_effort', input_format_skip_unknown_fields = 0"

Convert = Callable[[Any], Any]
_Session: Any = chdb_session.Session  # untyped library
_UTC_Z = orjson.OPT_UTC_Z
_BATCH_NAME = "_ingestor_insert_batch"  # the local variable _insert_arrow hands to chdb
# Fewer rows of plain scalars (``_plain_json``) go as JSON: as fast or faster there (measured
# 1-1000 rows), and a process that only records a few such rows (`up`'s preparation and its run
# record) never builds an Arrow array, whose first one imports pandas (~0.4 s each).
ARROW_MIN_ROWS = 100


class ChdbClickHouse(ClickHouse):
    def __init__(self, target: ClickHouseTarget) -> None:
        super().__init__(target)
        if target.path is None:
            raise StorageError("chdb target without a data path")
        self._lock = threading.Lock()
        self._closed = False
        self._session: Any = None
        self._described: dict[str, dict[str, str]] = {}
        self._lost = 0
        with self._lock:
            self._open()

    def _open(self, *, release: bool = True) -> None:
        """Open the session on ``target.path`` (holding ``_lock``). Parts ClickHouse detached as
        broken while loading are logged; an insert's has its deduplication tokens released
        (``dedup_log``), which takes closing and opening the session once more."""
        path = self.target.path
        assert path is not None
        started = int(time.time())
        try:
            path.mkdir(parents=True, exist_ok=True)
            self._session = _Session(str(path))
        except Exception as e:
            self._closed = True
            hint = " (another process has this chdb directory open)" if "lock" in str(e) else ""
            raise StorageError(f"cannot open chdb at {path}{hint}: {e}") from e
        database = quote_identifier(self.target.database)
        try:
            for sql in (*_SESSION_SETTINGS, f"CREATE DATABASE IF NOT EXISTS {database}"):
                self._query(sql, "CSV", _what(sql))
            self._query(f"USE {database}", "CSV", "USE")
            detached = self._query(_DETACHED.format(since=started), "JSONCompact", "detached")
        except BaseException:
            self._closed = True
            self._session.close()
            raise
        if not release:
            return
        lost = []
        for database, table, name, path, partition, low, high in orjson.loads(
            detached.bytes() or b'{"data": []}'
        )["data"]:
            covered = self._query(
                _COVERED.format(
                    database=quote_string(database), table=quote_string(table),
                    partition=quote_string(partition), low=int(low), high=int(high),
                ),
                "CSV", "covered",
            )  # fmt: skip
            if int(covered.bytes() or b"0"):  # a merge's: its rows are back in its sources
                what = f"{database}.{table}: {name}"
                log.warning("chdb detached a broken merged part on opening: %s", what)
                continue
            # An insert's (inserts into Replacing and Aggregating tables make level-1 parts, so
            # the level does not say which), or a merge's whose sources are gone: rows lost.
            log.error(
                "chdb detached a broken part of an insert on opening: %s.%s: %s; its rows are gone"
                " unless that insert is delivered again (its deduplication tokens are released, so"
                " it will be stored); `ingestor verify` names what is missing",
                database, table, name,
            )  # fmt: skip
            lost.append((Path(path).parent.parent, str(partition), int(low), int(high)))
        self._lost += len(lost)
        if lost:  # ClickHouse reads the log when it loads the table: not while it is open
            self._session.close()
            for table_dir, partition, low, high in lost:
                dedup_log.release(table_dir, partition, low, high)
            self._open(release=False)

    def lost_inserts(self) -> int:
        return self._lost

    def _run(self, sql: str | bytes, fmt: str, what: str) -> Any:
        with self._lock:
            return self._query(sql, fmt, what)

    def _query(self, sql: str | bytes, fmt: str, what: str) -> Any:
        """``sql`` on the session (holding ``_lock``), once more after reopening it if a broken
        data part failed it: opening, ClickHouse detaches broken parts and brings back the parts a
        broken merge was made of (they stay on disk for ``old_parts_lifetime``, 8 minutes)."""
        if self._closed:
            raise StorageError(f"{what}: chdb engine is closed")
        try:
            return self._session.query(sql, fmt)
        except Exception as e:
            if not is_broken_part(e):
                raise storage_error(e, what) from e
            log.warning("%s: a broken data part; reopening chdb to detach it: %s", what, e)
        self._reopen()
        try:
            return self._session.query(sql, fmt)
        except Exception as e:
            raise storage_error(e, what) from e

    def _reopen(self) -> None:
        self._described.clear()
        self._session.close()
        self._open()  # logs the parts ClickHouse detached

    def execute(self, sql: str) -> None:
        if sql.lstrip()[:6].upper() != "INSERT":
            self._described.clear()  # DDL may change a table's columns
        self._run(sql, "CSV", _what(sql))

    def column_types(self, table: str) -> dict[str, str]:
        """The column types of ``table``, read once (a DESCRIBE per insert cost ~5% of the
        insert thread's time) until a statement other than an INSERT runs: only this process
        opens the data dir, so only its own DDL can change them. Stale types could not store a
        wrong value anyway: ``arrow_table`` types exactly or declines (then JSON goes)."""
        types = self._described.get(table)
        if types is None:
            types = self._described[table] = super().column_types(table)
        return types

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        result = self._run(sql, "JSONCompact", _what(sql))
        raw = result.bytes()
        if not raw:
            return []
        body = orjson.loads(raw)
        converters = [_converter(column["type"]) for column in body["meta"]]
        if all(c is None for c in converters):
            return [tuple(row) for row in body["data"]]
        return [
            tuple(v if c is None else c(v) for c, v in zip(converters, row, strict=True))
            for row in body["data"]
        ]

    def _query_table(self, sql: str) -> Any:
        # Arrow's IPC file read here, not by chdb's "ArrowTable" (which imports pandas first).
        result = self._run(sql, "Arrow", _what(sql))
        if len(result) == 0:
            return pa.Table.from_batches([], schema=pa.schema([]))
        return pa.RecordBatchFileReader(result.get_memview().view()).read_all()

    def query_columns(self, sql: str) -> list[list[Any]]:
        # Arrow: no JSON to write and parse, columns convert to Python in C.
        table = self._query_table(sql)
        if table.num_rows == 0:
            return []
        return [_arrow_column(column) for column in table.columns]

    def query_arrow(self, sql: str) -> Any:
        # LowCardinality arrives dictionary-encoded: plain, so results of two queries combine.
        table = self._query_table(sql)
        return pa.Table.from_arrays(
            [_plain(column) for column in table.columns], names=table.column_names
        )

    def insert(
        self, table: str, rows: Sequence[Mapping[str, Any]], *, token: str | None = None
    ) -> None:
        if isinstance(rows, pa.Table):
            self._insert_table(table, rows, token)
            return
        if not rows:
            return
        settings = _insert_settings(token, table)
        columns = list(rows.columns) if isinstance(rows, RowColumns) else list(rows[0])
        names = ", ".join(quote_identifier(c) for c in columns)
        head = f"INSERT INTO {table_name(table)} ({names}) SETTINGS {settings} "
        what = f"INSERT INTO {table} ({len(rows)} rows)"
        types = self.column_types(table)
        batch = None
        if len(rows) >= ARROW_MIN_ROWS or not _plain_json(rows, columns, types):
            try:
                batch = arrow_table(rows, columns, types)
            except KeyError as e:
                raise StorageError(
                    f"INSERT INTO {table}: rows do not match {columns}: {e!r}"
                ) from e
        if batch is not None:
            self._insert_arrow(head + f"SELECT * FROM Python({_BATCH_NAME})", batch, what)
            return
        values = itemgetter(*columns) if len(columns) > 1 else (lambda row: (row[columns[0]],))
        try:
            # Arrays, not objects: a third of the bytes, and ClickHouse parses them faster.
            arrays = map(values, rows)  # RowColumns' rows too: rare, and datetimes as dicts show
            body = b"\n".join(
                [orjson.dumps(array, default=_encode, option=_UTC_Z) for array in arrays]
            )
        except (KeyError, TypeError) as e:
            raise StorageError(f"INSERT INTO {table}: rows do not match {columns}: {e!r}") from e
        sql = head.encode() + b"FORMAT JSONCompactEachRow\n" + body
        self._run(sql, "CSV", what)

    def _insert_table(self, table: str, batch: Any, token: str | None) -> None:
        if batch.num_rows == 0:
            return
        names = ", ".join(quote_identifier(c) for c in batch.column_names)
        self._insert_arrow(
            f"INSERT INTO {table_name(table)} ({names}) SETTINGS {_insert_settings(token, table)} "
            f"SELECT * FROM Python({_BATCH_NAME})",
            batch,
            f"INSERT INTO {table} ({batch.num_rows} rows)",
        )

    def _insert_arrow(self, sql: str, batch: Any, what: str) -> None:
        # chdb resolves the name in Python(...) among the locals of the calling frames: the
        # table must be a local variable of this frame, under the name the SQL uses.
        _ingestor_insert_batch = batch  # noqa: F841
        with self._lock:
            self._query(sql, "CSV", what)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._session.close()
            except Exception as e:
                raise StorageError(f"closing chdb at {self.target.path}: {e}") from e


def _insert_settings(token: str | None, table: str) -> str:
    settings = _INSERT_SETTINGS
    if table in UNMERGED_ON_INSERT:
        settings += ", optimize_on_insert = 0"
    if token is None:
        return settings
    return (
        f"{settings}, insert_deduplication_token = {quote_string(token)}"
        ", deduplicate_blocks_in_dependent_materialized_views = 1"
    )


def _plain(column: Any) -> Any:
    """``column`` with dictionary-encoded values decoded."""
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


_PLAIN = (str, bool, Decimal, datetime, date, type(None))


def _plain_json(
    rows: Sequence[Mapping[str, Any]], columns: list[str], types: Mapping[str, str]
) -> bool:
    """Whether ``rows`` mean the same as JSON as they do as Arrow: scalars whose JSON text
    ClickHouse reads as Arrow would hold them. Not floats (NaN), lists or maps, nor integers in
    a date or time column (Arrow takes them as ticks of the column's unit, JSON as seconds)."""
    for column in columns:
        timely = "Date" in types.get(column, "")
        for value in column_of(rows, column):
            if not (isinstance(value, _PLAIN) or (type(value) is int and not timely)):
                return False
    return True


def _arrow_column(column: Any) -> list[Any]:
    values: list[Any] = column.to_pylist()
    if pa.types.is_timestamp(column.type):  # aware UTC, as ``query`` returns them
        return [v if v is None else v.replace(tzinfo=UTC) for v in values]
    return values


def _what(sql: str) -> str:
    # Name a statement in errors by its first line, never its data.
    return sql.strip().split("\n", 1)[0][:200]


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # str() may use exponent notation (1E-8), which CH rejects
    if isinstance(value, (tuple, frozenset, set)):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} for ClickHouse")


def _split_args(inner: str) -> list[str]:
    """Top-level comma-separated arguments of a type, e.g. ``String, Array(UInt8)``."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(inner[start:i].strip())
            start = i + 1
    parts.append(inner[start:].strip())
    return parts


def _datetime(text: str) -> datetime:
    # session_timezone is UTC, so every rendered DateTime is UTC wall time.
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@lru_cache(maxsize=256)
def _converter(type_name: str) -> Convert | None:
    """How to turn a JSONCompact value of ``type_name`` into its Python value; None = as is."""
    for wrapper in ("Nullable(", "LowCardinality(", "SimpleAggregateFunction("):
        if type_name.startswith(wrapper):
            inner = type_name[len(wrapper) : -1]
            if wrapper == "SimpleAggregateFunction(":
                inner = _split_args(inner)[-1]
            convert = _converter(inner)
            if convert is None or wrapper != "Nullable(":
                return convert
            return lambda v: None if v is None else convert(v)
    if type_name.startswith("Decimal"):
        return Decimal
    if type_name.startswith("DateTime"):
        return _datetime
    if type_name.startswith("Date"):
        return date.fromisoformat
    if type_name.startswith("Array("):
        item = _converter(type_name[6:-1])
        return None if item is None else (lambda v: [item(x) for x in v])
    if type_name.startswith("Map("):
        value = _converter(_split_args(type_name[4:-1])[1])
        return None if value is None else (lambda v: {k: value(x) for k, x in v.items()})
    return None
