from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from ingestor.clickhouse.engine import ClickHouse
from ingestor.clickhouse.migrations import apply_schema, load_migrations, split_statements

pytestmark = pytest.mark.integration

TABLES = {
    "transcript_lines",
    "dead_letters",
    "usage_dedup",
    "line_accounting",
    "session_summaries",
    "session_file_details",
    "ingest_runs",
    "session_token_summary",
    "token_trends",
    "content_category_analysis",
    "events",
    "tool_calls",
    "agent_steps",
    "hourly_metrics",
    "daily_metrics",
    "project_summary",
    "user_usage_daily",
    "user_usage_weekly",
    "user_usage_monthly",
    "user_usage_yearly",
    "token_usage_ledger",
    "ledger_gross_margin",
    "ledger_provider_costs",
    "ledger_margin_trend",
    "ledger_cost_distribution",
}


def test_apply_twice_applies_nothing_the_second_time(
    clickhouse_empty: ClickHouse, caplog: pytest.LogCaptureFixture
) -> None:
    ch = clickhouse_empty
    everything = [m.name for m in load_migrations()]
    first = apply_schema(ch)
    if ch.target.kind == "chdb":
        assert first == [m.name for m in load_migrations() if not m.requires_server]
    else:
        assert first == everything
    assert apply_schema(ch) == []
    names = {
        str(row[0])
        for row in ch.query("SELECT name FROM system.tables WHERE database = currentDatabase()")
    }
    assert names >= TABLES
    recorded = [
        int(r[0]) for r in ch.query("SELECT version FROM schema_migrations FINAL ORDER BY version")
    ]
    assert recorded == [int(n[:4]) for n in first]


_PREPARE_WITHOUT_PANDAS = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from ingestor.plain_settings import ClickHouseTarget
from ingestor.clickhouse.engine import open_clickhouse
from ingestor.clickhouse.migrations import apply_schema

target = ClickHouseTarget(kind="chdb", database="ingestor", path=Path(sys.argv[1]))
with open_clickhouse(target) as ch:
    apply_schema(ch)
    # Now: a run older than the table's TTL can be gone before it is read.
    now = datetime.now(UTC).replace(microsecond=0)
    ch.insert("ingest_runs", [{"run_id": "r", "started_at": now, "status": "running"}])
    assert ch.query("SELECT run_id, started_at FROM ingest_runs") == [("r", now)]
assert "pandas" not in sys.modules, "an insert built an Arrow array"
"""


def test_preparing_a_data_dir_loads_no_pandas(tmp_path: Path) -> None:
    # pyarrow's first array imports pandas, ~0.4 s of `ingestor up`'s fixed cost in each process
    # that only records a few rows: those go as JSON (clickhouse/chdb_engine.py, ARROW_MIN_ROWS).
    code = _PREPARE_WITHOUT_PANDAS
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "ch")], check=True, timeout=120)


_ARROW_WITHOUT_PANDAS = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from ingestor.clickhouse.allocators import refuse_pandas

assert refuse_pandas()
from ingestor.plain_settings import ClickHouseTarget
from ingestor.clickhouse.engine import open_clickhouse
from ingestor.clickhouse.migrations import apply_schema

target = ClickHouseTarget(kind="chdb", database="ingestor", path=Path(sys.argv[1]))
with open_clickhouse(target) as ch:
    apply_schema(ch)
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [{"run_id": f"r{i}", "started_at": now, "status": "running"} for i in range(300)]
    ch.insert("ingest_runs", rows)  # past ARROW_MIN_ROWS: an Arrow table
    sql = "SELECT run_id, started_at FROM ingest_runs ORDER BY run_id"
    assert ch.query_columns(sql)[1][0] == now
    assert ch.query_arrow(sql).num_rows == 300
    assert ch.query_arrow("SELECT 1 WHERE 0").num_rows == 0
assert "pandas" not in sys.modules
"""


def test_the_worker_stores_and_reads_arrow_without_pandas(tmp_path: Path) -> None:
    # The worker refuses pandas (clickhouse/allocators.py): its engine must not need it.
    code = _ARROW_WITHOUT_PANDAS
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "ch")], check=True, timeout=120)


def test_roles_are_skipped_on_chdb_with_a_log_line(
    clickhouse_empty: ClickHouse, caplog: pytest.LogCaptureFixture
) -> None:
    if clickhouse_empty.target.kind != "chdb":
        pytest.skip("chdb-only behaviour")
    with caplog.at_level(logging.INFO, logger="ingestor.clickhouse.migrations"):
        applied = apply_schema(clickhouse_empty)
    assert "0007_roles" not in applied
    assert any(
        "skipping 0007_roles" in r.getMessage() and "server" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.server
def test_roles_exist_on_a_server(clickhouse: ClickHouse) -> None:
    if clickhouse.target.kind != "server":
        pytest.skip("needs a ClickHouse server: set INGESTOR_TEST_CLICKHOUSE_URL")
    roles = {str(r[0]) for r in clickhouse.query("SELECT name FROM system.roles")}
    assert {"dashboard_reader", "service_writer", "schema_admin"} <= roles


def test_roles_migration_is_marked_server_only() -> None:
    marked = {m.name for m in load_migrations() if m.requires_server}
    assert marked == {"0007_roles"}


def test_split_statements_respects_quotes_and_comments() -> None:
    sql = "-- a; comment\nSELECT 'a;b';\n\nSELECT 2 -- tail; here\n;"
    assert split_statements(sql) == ["SELECT 'a;b'", "SELECT 2"]
