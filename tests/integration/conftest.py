"""The ``clickhouse`` fixture: a fresh database with the schema applied, one per test.

chdb in ``tmp_path`` by default; with ``$INGESTOR_TEST_CLICKHOUSE_URL``
(``clickhouse://user:pass@host:9000``) a uniquely named database on that server instead,
dropped afterwards.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from chdb_share import shared_clickhouse  # noqa: F401 - fixture
from kafka_cluster import kafka1, kafka3  # noqa: F401 - fixtures
from pipeline import Pipeline

from ingestor.clickhouse.engine import ClickHouse, open_clickhouse, quote_identifier
from ingestor.clickhouse.migrations import apply_schema
from ingestor.plain_settings import ClickHouseTarget

SERVER_URL_ENV = "INGESTOR_TEST_CLICKHOUSE_URL"


def server_url() -> str | None:
    return os.environ.get(SERVER_URL_ENV, "").strip() or None


def _target(tmp_path: Path) -> ClickHouseTarget:
    url = server_url()
    if url is None:
        return ClickHouseTarget(kind="chdb", database="ingestor", path=tmp_path / "chdb")
    base = ClickHouseTarget.parse(url, default_path=tmp_path)
    return dataclasses.replace(base, database=f"ingestor_test_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def clickhouse_empty(tmp_path: Path) -> Iterator[ClickHouse]:
    """An engine on a fresh, empty database (no schema)."""
    ch = open_clickhouse(_target(tmp_path))
    try:
        yield ch
    finally:
        if ch.target.kind == "server":
            ch.execute(f"DROP DATABASE IF EXISTS {quote_identifier(ch.target.database)}")
        ch.close()


@pytest.fixture
def clickhouse(clickhouse_empty: ClickHouse) -> ClickHouse:
    """An engine on a fresh database with every migration applied."""
    apply_schema(clickhouse_empty)
    return clickhouse_empty


@pytest.fixture
def pipeline(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Pipeline]:
    """A prepared pipeline (topics, schema) on the test broker and engine; its worker is stopped."""
    url = os.environ.get("INGESTOR_TEST_CLICKHOUSE_URL") or f"chdb://{tmp_path / 'chdb'}"
    p = Pipeline(kafka_bootstrap, tmp_path, url)
    p.prepare()
    try:
        yield p
    finally:
        p.stop_worker(kill=True)
