"""Migrations rendered for a ClickHouse cluster: read by ClickHouse's parser (chdb), and applied
and used on a real cluster where one is configured (``INGESTOR_TEST_CLICKHOUSE_URL`` and
``INGESTOR_TEST_CLICKHOUSE_CLUSTER``; skipped otherwise).
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from pathlib import Path

import pytest

from ingestor.clickhouse.engine import ClickHouse, open_clickhouse, quote_identifier
from ingestor.clickhouse.migrations import apply_schema, cluster_statements
from ingestor.plain_settings import ClickHouseTarget

pytestmark = pytest.mark.integration


def test_clickhouse_parses_every_rendered_statement(clickhouse_empty: ClickHouse) -> None:
    statements = cluster_statements("analytics", "ingestor")
    literals = ", ".join(
        "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'" for s in statements
    )
    # One query: ClickHouse's parser names the statement it cannot read in its error.
    formatted = [
        row[0] for row in clickhouse_empty.query(f"SELECT formatQuery(arrayJoin([{literals}]))")
    ]
    assert len(formatted) == len(statements)
    assert all("ON CLUSTER" in f or f.startswith("INSERT") for f in formatted)


@pytest.mark.server
def test_schema_applies_on_a_cluster_and_reads_fan_out(tmp_path: Path) -> None:
    url = os.environ.get("INGESTOR_TEST_CLICKHOUSE_URL", "").strip()
    cluster = os.environ.get("INGESTOR_TEST_CLICKHOUSE_CLUSTER", "").strip()
    if not url or not cluster:
        pytest.skip("needs INGESTOR_TEST_CLICKHOUSE_URL and INGESTOR_TEST_CLICKHOUSE_CLUSTER")
    target = dataclasses.replace(
        ClickHouseTarget.parse(url, default_path=tmp_path),
        database=f"ingestor_test_{uuid.uuid4().hex[:12]}",
        cluster=cluster,
    )
    with open_clickhouse(target) as ch:
        try:
            assert apply_schema(ch)
            assert apply_schema(ch) == []
            [(engine,)] = ch.query(
                "SELECT engine FROM system.tables WHERE database = currentDatabase() "
                "AND name = 'transcript_lines'"
            )
            assert engine == "Distributed"
            # A retried row lands on the same shard as its first copy, where FINAL collapses it.
            position = {"source_file": "/p/s.jsonl", "source_generation": 0, "end_offset": 10}
            ch.insert("file_positions", [position])
            ch.insert("file_positions", [position])
            [(n,)] = ch.query("SELECT count() FROM file_positions FINAL")
            assert n == 1
        finally:
            ch.execute(
                f"DROP DATABASE IF EXISTS {quote_identifier(target.database)} "
                f"ON CLUSTER {quote_identifier(cluster)}"
            )
