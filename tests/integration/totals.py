"""Every total ClickHouse holds, in one comparable value: for each table and view, its row count
and the sum of each numeric column (aggregate states finalized), after ``FINAL`` where the engine
merges rows. Equal snapshots before and after an operation mean it changed no total anywhere,
materialized views' targets included."""

from __future__ import annotations

from typing import Any

from ingestor.clickhouse.engine import ClickHouse, quote_identifier

_NUMERIC = ("Int", "UInt", "Float", "Decimal")
_MERGING = ("ReplacingMergeTree", "AggregatingMergeTree", "SummingMergeTree")


def _expression(name: str, type_name: str) -> str | None:
    column = quote_identifier(name)
    if type_name.startswith("SimpleAggregateFunction("):
        type_name = type_name.split(",", 1)[1].rstrip(")").strip()
    if type_name.startswith("AggregateFunction("):
        return f"sum(cityHash64(toString(finalizeAggregation({column}))))"
    if type_name.startswith("Nullable("):
        type_name = type_name[len("Nullable(") :]
    if type_name.startswith("Float"):
        return f"round(sum({column}), 6)"
    if type_name.startswith(_NUMERIC):
        return f"sum({column})"
    return None


def snapshot(ch: ClickHouse, *, skip: tuple[str, ...] = ("ingest_runs",)) -> dict[str, Any]:
    tables = ch.query(
        "SELECT name, engine FROM system.tables WHERE database = currentDatabase() "
        "AND engine != 'MaterializedView' ORDER BY name"
    )
    out: dict[str, Any] = {}
    for name, engine in tables:
        if name in skip:
            continue
        columns = ch.query(
            "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
            f"AND table = '{name}' ORDER BY position"
        )
        sums = [e for n, t in columns if (e := _expression(str(n), str(t))) is not None]
        final = " FINAL" if str(engine).startswith(_MERGING) else ""
        [row] = ch.query(f"SELECT {', '.join(['count()', *sums])} FROM {name}{final}")
        out[str(name)] = tuple(row)
    return out
