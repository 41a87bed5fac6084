"""``ClickHouse`` on a server, over the native protocol (clickhouse-driver).

Inserts are columnar (the driver's fastest path). The driver's ``Client`` is one connection and
not thread-safe, so every call holds ``self._lock``. Driver and socket errors become
``StorageError``/``TransientStorageError`` ``from`` the original.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from clickhouse_driver import Client

from ingestor.clickhouse.engine import (
    UNMERGED_ON_INSERT,
    ClickHouse,
    quote_identifier,
    storage_error,
    table_name,
)
from ingestor.errors import StorageError, TransientStorageError
from ingestor.plain_settings import ClickHouseTarget
from ingestor.rows.columns import RowColumns

__all__ = ["ServerClickHouse"]

_UNKNOWN_DATABASE = 81


class ServerClickHouse(ClickHouse):
    def __init__(self, target: ClickHouseTarget) -> None:
        super().__init__(target)
        self._lock = threading.Lock()
        self._client = self._connect(target.database)
        try:
            self._client.execute("SELECT 1")
        except Exception as e:
            if getattr(e, "code", None) != _UNKNOWN_DATABASE:
                self._client.disconnect()
                raise _translate(e, f"connecting to {target}") from e
            self._create_database()
        except BaseException:
            self._client.disconnect()
            raise

    def _connect(self, database: str) -> Client:
        t = self.target
        return Client(
            host=t.host,
            port=t.port,
            user=t.user,
            password=t.password.get_secret_value(),
            database=database,
            secure=t.secure,
        )

    def _create_database(self) -> None:
        # The handshake names the database, so a missing one must be made from elsewhere.
        bootstrap = self._connect("default")
        try:
            bootstrap.execute(
                f"CREATE DATABASE IF NOT EXISTS {quote_identifier(self.target.database)}"
            )
        except Exception as e:
            raise _translate(e, f"creating database {self.target.database}") from e
        finally:
            bootstrap.disconnect()

    def execute(self, sql: str) -> None:
        self._call(sql, lambda: self._client.execute(sql))

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        rows = self._call(sql, lambda: self._client.execute(sql))
        return [tuple(_normalize(v) for v in row) for row in rows]

    def insert(
        self, table: str, rows: Sequence[Mapping[str, Any]], *, token: str | None = None
    ) -> None:
        if hasattr(rows, "to_pylist"):  # a pyarrow.Table: the driver takes Python values
            rows = rows.to_pylist()
        if not rows:
            return
        try:
            if isinstance(rows, RowColumns):
                columns = list(rows.columns)
                data = [rows.column(c) for c in columns]
            else:
                columns = list(rows[0].keys())
                data = [[row[c] for row in rows] for c in columns]
        except KeyError as e:
            raise StorageError(f"INSERT INTO {table}: rows do not match {columns}: {e!r}") from e
        settings: dict[str, Any] = {}
        if table in UNMERGED_ON_INSERT:
            settings["optimize_on_insert"] = 0
        if token is not None:
            settings["insert_deduplication_token"] = token
            settings["deduplicate_blocks_in_dependent_materialized_views"] = 1
        if self.target.cluster:
            # Through a Distributed table: return only once the shards stored the rows, so a
            # confirmed batch is a stored one (offsets are committed after it).
            settings["insert_distributed_sync"] = 1
        names = ", ".join(quote_identifier(c) for c in columns)
        sql = f"INSERT INTO {table_name(table)} ({names}) VALUES"
        self._call(
            f"INSERT INTO {table} ({len(rows)} rows)",
            lambda: self._client.execute(sql, data, columnar=True, settings=settings),
        )

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        with self._lock:
            try:
                return fn()
            except Exception as e:
                raise _translate(e, what.strip().split("\n", 1)[0][:200]) from e

    def close(self) -> None:
        with self._lock:
            self._client.disconnect()


def _translate(exc: BaseException, what: str) -> StorageError:
    if isinstance(exc, (OSError, EOFError)):  # the connection dropped: reconnecting may work
        return TransientStorageError(f"{what}: {exc}")
    return storage_error(exc, what)


def _normalize(value: Any) -> Any:
    # The driver localizes to the column's zone; the interface promises aware UTC.
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, tuple):
        return tuple(_normalize(v) for v in value)
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return value
