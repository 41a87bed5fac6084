"""ClickHouse: the engines (chdb, server), migrations, retries, and the one batch writer
(``write``): rows, rollups, winners and file positions, in that order. The rows themselves are
built by ``ingestor.rows`` (pure)."""

from ingestor.clickhouse.engine import ClickHouse, open_clickhouse
from ingestor.clickhouse.migrations import apply_schema
from ingestor.clickhouse.positions import file_positions
from ingestor.clickhouse.retry import call_with_retry

__all__ = ["ClickHouse", "apply_schema", "call_with_retry", "file_positions", "open_clickhouse"]
