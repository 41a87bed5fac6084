"""``ClickHouse`` on a chdb directory that another process owns (``local/chdb_share.py``).

Each call is sent to the owner and runs in its one engine; what it raises arrives here as the
same ``StorageError``. A lost or refused connection is a ``TransientStorageError`` (the owner may
be restarting) and the next call connects again. Calls are serialised by ``self._lock``: one
connection carries one call at a time.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Client, Connection
from typing import Any

from ingestor.clickhouse.engine import ClickHouse
from ingestor.errors import StorageError, TransientStorageError
from ingestor.plain_settings import ClickHouseTarget
from ingestor.rows.columns import RowColumns

__all__ = ["SharedChdbClickHouse"]


class SharedChdbClickHouse(ClickHouse):
    def __init__(self, target: ClickHouseTarget) -> None:
        super().__init__(target)
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._closed = False
        self.query("SELECT 1")  # fail here, not at the first insert, when the owner is not there

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self._closed:
                raise StorageError(f"{method}: engine is closed")
            try:
                if self._conn is None:
                    key = self.target.password.get_secret_value().encode()
                    self._conn = Client((self.target.host, self.target.port), authkey=key)
                self._conn.send((method, args, kwargs))
                status, value = self._conn.recv()
            except (OSError, EOFError) as e:
                self._drop()
                raise TransientStorageError(f"{method} on {self.target}: {e!r}") from e
            except Exception as e:  # e.g. AuthenticationError: a wrong key will not get better
                self._drop()
                raise StorageError(f"{method} on {self.target}: {e!r}") from e
        if status == "error":
            raise value
        return value

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
            self._conn = None

    def execute(self, sql: str) -> None:
        self._call("execute", sql)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._call("query", sql)
        return rows

    def query_columns(self, sql: str) -> list[list[Any]]:
        columns: list[list[Any]] = self._call("query_columns", sql)
        return columns

    def insert(
        self, table: str, rows: Sequence[Mapping[str, Any]], *, token: str | None = None
    ) -> None:
        if rows:  # a pyarrow.Table and columns travel as they are (they pickle), dicts as a list
            sent = rows if hasattr(rows, "num_rows") or isinstance(rows, RowColumns) else list(rows)
            self._call("insert", table, sent, token=token)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop()
