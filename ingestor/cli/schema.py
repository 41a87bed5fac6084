"""``ingestor schema apply``: apply the numbered migrations in ``schema/`` (idempotent)."""

from __future__ import annotations

import argparse
from typing import Any

from ingestor.settings import load_settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "schema",
        help="ClickHouse schema migrations",
        description="Apply schema/NNNN_*.sql to INGESTOR_CLICKHOUSE_URL (default: the embedded "
        "chdb under the data dir, INGESTOR_DATA_DIR); `ingestor up` does it for you.",
    )
    actions = p.add_subparsers(dest="action", required=True)
    apply = actions.add_parser(
        "apply", help="apply pending migrations to the configured ClickHouse"
    )
    apply.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ingestor.clickhouse.engine import open_clickhouse
    from ingestor.clickhouse.migrations import apply_schema

    settings = load_settings()
    ch = open_clickhouse(settings.clickhouse)
    try:
        applied = apply_schema(ch)
    finally:
        ch.close()
    print(
        f"{settings.clickhouse}: applied {len(applied)} migration(s)"
        + "".join(f"\n  {v}" for v in applied)
    )
    return 0
