"""Migrations rendered for a ClickHouse cluster (``clickhouse/cluster.py``): the SQL itself.

ClickHouse's own parser reads every rendered statement in
``tests/integration/test_schema_cluster.py``, which also runs them where a cluster is configured.
"""

from __future__ import annotations

from ingestor.clickhouse.migrations import cluster_statements


def rendered() -> list[str]:
    return cluster_statements("analytics", "ingestor")


def named(prefix: str) -> str:
    [statement] = [s for s in rendered() if s.startswith(prefix)]
    return statement


def test_every_merge_tree_table_is_replicated_locally_and_distributed_under_its_name() -> None:
    local = named("CREATE TABLE IF NOT EXISTS transcript_lines_local ON CLUSTER `analytics`")
    assert (
        "ENGINE = ReplicatedReplacingMergeTree("
        "'/clickhouse/tables/{shard}/ingestor/transcript_lines_local', '{replica}')" in local
    )
    assert "replicated_deduplication_window = 1000" in local
    assert "non_replicated" not in local
    distributed = named("CREATE TABLE IF NOT EXISTS transcript_lines ON CLUSTER")
    # Copies of a line share the sorting key, hence the shard, where FINAL collapses them.
    assert distributed.endswith(
        "ENGINE = Distributed('analytics', 'ingestor', 'transcript_lines_local', "
        "cityHash64((source_file, source_generation, source_offset)))"
    )
    assert "AS transcript_lines_local" in distributed


def test_engine_arguments_follow_the_replication_path() -> None:
    local = named("CREATE TABLE IF NOT EXISTS session_summaries_local")
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/ingestor/"
        "session_summaries_local', '{replica}', version)" in local
    )
    hourly = named("CREATE TABLE IF NOT EXISTS hourly_metrics_local")
    assert "ReplicatedAggregatingMergeTree(" in hourly


def test_materialized_views_fire_on_the_local_tables() -> None:
    mv = named("CREATE MATERIALIZED VIEW IF NOT EXISTS hourly_metrics_mv")
    assert mv.startswith(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS hourly_metrics_mv ON CLUSTER `analytics` "
        "TO hourly_metrics_local AS"
    )
    assert "FROM events_local" in mv
    assert "FROM events\n" not in mv and not mv.endswith("FROM events")


def test_alters_reach_both_tables_and_everything_runs_on_the_cluster() -> None:
    statements = rendered()
    alters = [s for s in statements if s.startswith("ALTER TABLE transcript_lines")]
    assert {a.split(" ON CLUSTER")[0] for a in alters} == {
        "ALTER TABLE transcript_lines",
        "ALTER TABLE transcript_lines_local",
    }
    once = [s for s in statements if "ON CLUSTER" not in s]
    # INSERT … SELECT runs once, through the Distributed tables.
    assert once and all(s.startswith("INSERT INTO") for s in once)
    assert any(s.startswith("GRANT ON CLUSTER `analytics` SELECT") for s in statements)
    assert statements[0] == "CREATE DATABASE IF NOT EXISTS `ingestor` ON CLUSTER `analytics`"
    views = [s for s in statements if s.startswith("CREATE OR REPLACE VIEW usage_dedup")]
    assert views and all("ON CLUSTER `analytics` AS" in v for v in views)


def test_indexes_go_to_the_shards_and_dropped_views_everywhere() -> None:
    statements = rendered()
    index = [s for s in statements if "ADD INDEX IF NOT EXISTS idx_batch_id" in s]
    # A Distributed table has no indexes: only the shards' tables get one.
    assert [s.split(" ON CLUSTER")[0] for s in index] == [
        "ALTER TABLE events_local",
        "ALTER TABLE counted_usage_local",
    ]
    column = [s for s in statements if "ADD COLUMN IF NOT EXISTS batch_id" in s]
    assert {s.split(" ON CLUSTER")[0] for s in column} == {
        "ALTER TABLE events",
        "ALTER TABLE events_local",
        "ALTER TABLE counted_usage",
        "ALTER TABLE counted_usage_local",
    }
    assert "DROP VIEW IF EXISTS hourly_metrics_mv ON CLUSTER `analytics`" in statements


def test_without_a_cluster_migrations_are_left_as_written() -> None:
    from ingestor.settings import Settings

    s = Settings(clickhouse_url="clickhouse://h:9000/db", clickhouse_cluster="c")
    assert s.clickhouse.cluster == "c"
    assert Settings(clickhouse_url="clickhouse://h:9000/db").clickhouse.cluster is None
    assert Settings(clickhouse_cluster="c").clickhouse.cluster is None  # chdb: one process


def test_truncates_empty_the_shards_tables() -> None:
    truncates = [s for s in rendered() if s.startswith("TRUNCATE")]
    assert "TRUNCATE TABLE IF EXISTS counted_usage_local ON CLUSTER `analytics`" in truncates
    assert "TRUNCATE TABLE IF EXISTS usage_copies_local ON CLUSTER `analytics`" in truncates
    assert all(" ON CLUSTER " in s for s in truncates)


def test_a_table_of_another_engine_is_created_on_every_node_as_it_is() -> None:
    [create] = [s for s in rendered() if s.startswith("CREATE TABLE IF NOT EXISTS copy_groups")]
    assert create.startswith("CREATE TABLE IF NOT EXISTS copy_groups ON CLUSTER `analytics`")
    assert "ENGINE = EmbeddedRocksDB" in create and "copy_groups_local" not in create
