"""The one interface the sink, migrations and reports use to talk to ClickHouse.

Two backends implement it: ``chdb_engine`` (in-process ClickHouse, the embedded default) and
``server_engine`` (a ClickHouse server over the native protocol). Callers never see a driver
exception: failures arrive as ``StorageError``, and ``TransientStorageError`` when a retry may
succeed (``retry.call_with_retry`` retries exactly those).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from ingestor.errors import StorageError, TransientStorageError
from ingestor.plain_settings import ClickHouseTarget

__all__ = [
    "TRANSIENT_CODES",
    "UNMERGED_ON_INSERT",
    "ClickHouse",
    "is_broken_part",
    "open_clickhouse",
    "quote_identifier",
    "quote_string",
    "sized_query",
    "storage_error",
    "table_name",
]

# ClickHouse error codes worth retrying: the same statement may succeed a moment later.
TRANSIENT_CODES = frozenset(
    {
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY (replica briefly read-only)
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        285,  # TOO_FEW_LIVE_REPLICAS
        319,  # UNKNOWN_STATUS_OF_INSERT
        425,  # SYSTEM_ERROR
        439,  # CANNOT_SCHEDULE_TASK
        999,  # KEEPER_EXCEPTION
    }
)
_CODE = re.compile(r"Code: (\d+)")
# Tables inserted with ``optimize_on_insert = 0``: ClickHouse does not collapse the rows of one
# insert that share a sorting key (measured: half the CPU of a ``transcript_lines`` insert). A
# line stored twice in one insert then looks as a line re-sent in a later insert always did,
# two rows until a merge, which every reader already allows for: reports, restore and verify
# read ``FINAL``; the rest ask for sets, maxima or any one row (``current_generations``,
# ``file_positions``, ``verify_topics``), and the winners decide a line seen twice as one.
UNMERGED_ON_INSERT = frozenset({"transcript_lines"})
# A data part whose files are short or empty: ClickHouse 26.9 (chdb) commits such parts when the
# disk fills up under a merge or an insert (issue #11; reproduced on a full tmpfs).
_BROKEN_PART_CODES = frozenset(
    {
        32,  # ATTEMPT_TO_READ_AFTER_EOF
        33,  # CANNOT_READ_ALL_DATA
        40,  # CHECKSUM_DOESNT_MATCH
        246,  # CORRUPTED_DATA ("Empty marks file")
    }
)


def storage_error(exc: BaseException, what: str) -> StorageError:
    """Our error for a driver failure, transient when its ClickHouse code says so.

    The caller raises it ``from exc``; ``what`` names the statement (never its data).
    """
    message = f"{what}: {exc}"
    if _error_code(exc) in TRANSIENT_CODES:
        return TransientStorageError(message)
    return StorageError(message)


def is_broken_part(exc: BaseException) -> bool:
    """Whether a driver failure is a read of a broken data part (not of bad input)."""
    return _error_code(exc) in _BROKEN_PART_CODES and "part" in str(exc)


def _error_code(exc: BaseException) -> int | None:
    """The ClickHouse error code of a driver failure: its ``code``, else the message's."""
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    match = _CODE.search(str(exc))
    return int(match.group(1)) if match else None


class ClickHouse(ABC):
    """A connection to one database of one ClickHouse (``target``).

    Statements run with ``target.database`` as the current database, so SQL may name tables
    unqualified. Every method raises ``StorageError`` (``TransientStorageError`` if worth a
    retry) and nothing else. Methods block; call them from a thread in async code.
    """

    def __init__(self, target: ClickHouseTarget) -> None:
        self.target = target

    @abstractmethod
    def execute(self, sql: str) -> None:
        """Run one statement that returns nothing (DDL, ``INSERT … SELECT``)."""

    @abstractmethod
    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run one ``SELECT``; rows as tuples of Python values.

        Types: integers ``int``, decimals ``Decimal``, ``DateTime``/``DateTime64`` aware UTC
        ``datetime``, ``Date`` ``date``, arrays ``list``, maps ``dict``, NULL ``None``.
        """

    def query_columns(self, sql: str) -> list[list[Any]]:
        """Run one ``SELECT``; its columns as lists (same value types as ``query``).

        For large results: engines override it with a columnar transfer.
        """
        rows = self.query(sql)
        if not rows:
            return []
        return [list(column) for column in zip(*rows, strict=True)]

    def query_arrow(self, sql: str) -> Any:
        """Run one ``SELECT``; a ``pyarrow.Table`` whose columns are the query's, by position
        (names are the engine's; read them by index). Values as a column of ``query_columns``
        holds them, with the Arrow type of the ClickHouse column where the engine knows it.

        For results that mostly travel back into ClickHouse: engines override it with a
        transfer that makes no Python object per value.
        """
        import pyarrow as pa  # type: ignore[import-untyped]

        columns = self.query_columns(sql)
        return pa.table({f"c{i}": pa.array(column) for i, column in enumerate(columns)})

    @abstractmethod
    def insert(
        self, table: str, rows: Sequence[Mapping[str, Any]], *, token: str | None = None
    ) -> None:
        """Insert ``rows`` (dicts keyed by column; all rows share one set of keys) in ONE INSERT.

        With ``token`` the insert carries ``insert_deduplication_token`` (dependent materialized
        views deduplicate too), so retrying the same rows with the same token is a no-op. Row
        values: ``int``, ``str``, ``Decimal``, aware ``datetime``, ``list``, ``dict``, ``None``.
        ``rows`` may also be a ``pyarrow.Table`` whose column names are the columns (what
        ``query_arrow`` returned, rearranged): the same rows, without a dict per row.
        """

    def column_types(self, table: str) -> dict[str, str]:
        """The ClickHouse type of each column of ``table`` (engines may cache it until DDL)."""
        return {str(r[0]): str(r[1]) for r in self.query(f"DESCRIBE TABLE {table_name(table)}")}

    def lost_inserts(self) -> int:
        """Inserts whose part this engine found broken and detached since it opened (chdb under
        a full disk, ``clickhouse/disk.py``): their rows are gone unless delivered again. A server
        keeps its own disks: 0."""
        return 0

    @abstractmethod
    def close(self) -> None:
        """Release the connection; idempotent."""

    def __enter__(self) -> ClickHouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_clickhouse(target: ClickHouseTarget) -> ClickHouse:
    """Open the backend ``target`` names and make ``target.database`` exist and be current."""
    if target.kind == "chdb":
        from ingestor.clickhouse.chdb_engine import ChdbClickHouse

        return ChdbClickHouse(target)
    if target.kind == "shared":
        from ingestor.clickhouse.shared_engine import SharedChdbClickHouse

        return SharedChdbClickHouse(target)
    from ingestor.clickhouse.server_engine import ServerClickHouse

    return ServerClickHouse(target)


def sized_query(sql: str) -> str:
    """``sql`` with a query size limit that admits it (ClickHouse's default is 256 KiB; a
    ``SETTINGS`` clause in the query itself raises it for that query)."""
    if len(sql.encode()) < 200_000:
        return sql
    return f"{sql} SETTINGS max_query_size = {len(sql.encode()) + 65_536}"


def quote_identifier(name: str) -> str:
    """``name`` as a backquoted ClickHouse identifier (database, table or column)."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_string(text: str) -> str:
    """``text`` as a single-quoted ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?")


def table_name(table: str) -> str:
    """``table`` (``name`` or ``db.name``) checked to be a plain identifier, for SQL text."""
    if not _TABLE.fullmatch(table):
        raise StorageError(f"not a table name: {table!r}")
    return table
