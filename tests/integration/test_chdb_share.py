"""``chdb+tcp://``: one chdb directory, several processes; errors arrive as ours."""

from __future__ import annotations

import pytest

from ingestor.clickhouse.engine import open_clickhouse
from ingestor.clickhouse.migrations import apply_schema
from ingestor.errors import StorageError, TransientStorageError
from ingestor.plain_settings import ClickHouseTarget

pytestmark = pytest.mark.integration


def test_two_clients_share_tables_and_errors_are_storage_errors(
    shared_clickhouse: str, tmp_path: object
) -> None:
    target = ClickHouseTarget.parse(shared_clickhouse, default_path=tmp_path)  # type: ignore[arg-type]
    with open_clickhouse(target) as one, open_clickhouse(target) as two:
        assert apply_schema(one)
        assert apply_schema(two) == []  # the same database: already applied
        position = {"source_file": "/p/s.jsonl", "source_generation": 0, "end_offset": 10}
        one.insert("file_positions", [position])
        assert two.query("SELECT source_file, end_offset FROM file_positions") == [
            ("/p/s.jsonl", 10)
        ]
        with pytest.raises(StorageError, match="UNKNOWN_TABLE|Unknown table|doesn't exist"):
            two.query("SELECT * FROM no_such_table")
        assert two.query("SELECT 1") == [(1,)]  # the connection survives an error


def test_a_wrong_key_is_refused_and_a_gone_owner_is_transient(shared_clickhouse: str) -> None:
    from pathlib import Path

    good = ClickHouseTarget.parse(shared_clickhouse, default_path=Path("."))
    wrong = ClickHouseTarget.parse(
        shared_clickhouse.replace("://:", "://:x"), default_path=Path(".")
    )
    with pytest.raises(StorageError):
        open_clickhouse(wrong)
    gone = ClickHouseTarget.parse(
        f"chdb+tcp://:k@127.0.0.1:{_closed_port()}/ingestor", default_path=Path(".")
    )
    with pytest.raises(TransientStorageError):
        open_clickhouse(gone)
    with open_clickhouse(good) as ch:
        assert ch.query("SELECT 1") == [(1,)]


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
