"""ClickHouse: rows from records (pure), the engines (chdb, server), migrations, retries, and
the one batch writer (``write``): rows, rollups, winners and file positions, in that order."""

from ingestor.sink.engine import ClickHouse, open_clickhouse
from ingestor.sink.migrations import apply_schema
from ingestor.sink.positions import file_positions
from ingestor.sink.retry import call_with_retry

__all__ = ["ClickHouse", "apply_schema", "call_with_retry", "file_positions", "open_clickhouse"]
