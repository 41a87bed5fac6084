from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from ingestor.clickhouse.engine import open_clickhouse
from ingestor.plain_settings import ClickHouseTarget
from ingestor.rows.arrow import arrow_table, arrow_type
from ingestor.rows.columns import RowColumns

TYPES = {
    "k": "LowCardinality(String)",
    "ts": "DateTime64(3, 'UTC')",
    "cost": "Decimal(20, 10)",
    "tags": "Array(LowCardinality(String))",
    "attrs": "Map(String, String)",
    "latency": "Nullable(UInt32)",
    "flag": "UInt8",
}
ROW = {
    "k": "a",
    "ts": datetime(2025, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))),
    "cost": Decimal("0.1234567891"),
    "tags": ["x"],
    "attrs": {"p": "q"},
    "latency": None,
    "flag": 1,
}


def test_types_follow_the_clickhouse_columns() -> None:
    assert arrow_type("Nullable(UInt32)") == pa.uint32()
    assert arrow_type("DateTime64(3, 'UTC')") == pa.timestamp("ms", tz="UTC")
    assert arrow_type("Decimal(20, 10)") == pa.decimal128(20, 10)
    assert arrow_type("Array(LowCardinality(String))") == pa.list_(pa.string())
    assert arrow_type("Enum8('a' = 1)") is None
    assert arrow_type("DateTime64(3, 'Europe/Paris')") is None


def test_rows_become_typed_columns() -> None:
    table = arrow_table([ROW, {**ROW, "latency": 7}], list(ROW), TYPES)
    assert table is not None
    assert table.column_names == list(ROW)
    assert table.column("ts").to_pylist()[0] == datetime(2025, 1, 1, tzinfo=UTC)
    assert table.column("latency").to_pylist() == [None, 7]
    assert table.column("cost").to_pylist()[0] == Decimal("0.1234567891")


def test_anything_arrow_cannot_hold_exactly_is_left_to_the_json_path() -> None:
    for bad in (
        {"flag": True},  # a bool in an integer column
        {"flag": 300},  # out of range
        {"cost": Decimal("0.12345678912")},  # more places than the column keeps
        {"k": 5},
    ):
        assert arrow_table([{**ROW, **bad}], list(ROW), TYPES) is None, bad
    assert arrow_table([ROW], [*ROW, "unknown"], TYPES) is None
    assert arrow_table([ROW], ["k"], {"k": "UUID"}) is None


def test_a_single_column() -> None:
    table = arrow_table([{"k": "a"}, {"k": "b"}], ["k"], TYPES)
    assert table is not None
    assert table.column("k").to_pylist() == ["a", "b"]


@pytest.mark.integration
def test_chdb_stores_the_same_values_either_way(tmp_path: Path, monkeypatch: Any) -> None:
    from ingestor.clickhouse import chdb_engine

    target = ClickHouseTarget(kind="chdb", database="arrow", path=tmp_path / "ch")
    with open_clickhouse(target) as ch:
        columns = ", ".join(f"{name} {kind}" for name, kind in TYPES.items())
        ch.execute(
            f"CREATE TABLE t ({columns}) ENGINE = MergeTree ORDER BY k"
            " SETTINGS non_replicated_deduplication_window = 100"
        )
        rows = [
            ROW,
            {**ROW, "k": "b", "ts": datetime(2025, 1, 1, 0, 0, 0, 411999, tzinfo=UTC)},
            {**ROW, "k": "c", "latency": 4294967295, "cost": Decimal("-0.0"), "attrs": {}},
        ]
        monkeypatch.setattr(chdb_engine, "ARROW_MIN_ROWS", 1)  # else these few go as JSON
        ch.insert("t", rows, token="arrow")
        ch.insert("t", rows, token="arrow")  # a retry with the same token is a no-op
        ch.insert("t", _columns(rows, "-rows-arrow"), token="columns-arrow")
        monkeypatch.setattr(chdb_engine, "arrow_table", lambda *_: None)
        ch.insert("t", [{**row, "k": row["k"] + "-json"} for row in rows], token="json")
        ch.insert("t", _columns(rows, "-rows-json"), token="columns-json")
        stored = ch.query("SELECT * FROM t ORDER BY k")
    assert len(stored) == 12
    for arrow, *others in zip(*(stored[i::4] for i in range(4)), strict=True):
        assert [o[0] for o in others] == [
            arrow[0] + s for s in ("-json", "-rows-arrow", "-rows-json")
        ]
        assert all(o[1:] == arrow[1:] for o in others)


def _columns(rows: list[dict[str, Any]], suffix: str) -> RowColumns:
    out = RowColumns(list(ROW))
    out.extend({**row, "k": row["k"] + suffix} for row in rows)
    return out


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_datetimes_become_the_ticks_arrow_itself_makes(unit: str) -> None:
    # Ours avoids Arrow's conversion of aware datetimes (it imports pandas): same values.
    digits = {"s": 0, "ms": 3, "us": 6, "ns": 9}[unit]
    values = [
        datetime(2025, 1, 1, 2, 3, 4, 123999, tzinfo=timezone(timedelta(hours=-5))),
        datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC),  # floored, not truncated
        datetime(2261, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # ns holds up to 2262
        datetime(2024, 2, 29, 12, 0, 0, 1),  # naive: UTC
        None,
    ]
    table = arrow_table([{"ts": v} for v in values], ["ts"], {"ts": f"DateTime64({digits})"})
    assert table is not None
    kind = pa.timestamp(unit, tz="UTC")
    assert table.column("ts").combine_chunks() == pa.array(values, type=kind)


def test_only_plain_scalars_go_as_json() -> None:
    from ingestor.clickhouse.chdb_engine import _plain_json

    types = {"ts": "DateTime64(3, 'UTC')", "n": "UInt64", "s": "String", "f": "Float64"}
    at = datetime(2025, 1, 1, tzinfo=UTC)
    assert _plain_json([{"ts": at, "n": 1, "s": "x"}], ["ts", "n", "s"], types)
    assert _plain_json([{"ts": None, "n": Decimal("1.5"), "s": True}], ["ts", "n", "s"], types)
    # Arrow reads an integer in a time column as ticks of its unit, JSON as seconds.
    assert not _plain_json([{"ts": 1_758_975_436_800}], ["ts"], types)
    assert not _plain_json([{"f": float("nan")}], ["f"], types)
    assert not _plain_json([{"s": ["a"]}], ["s"], types)


def _by_column(rows: list[dict[str, Any]], types: dict[str, str]) -> pa.Table | None:
    """The plain way (one ``pa.array`` a column), which the one-pass struct read must equal."""
    from ingestor.rows.arrow import _ticks

    arrays = []
    for column, ch_type in types.items():
        kind = arrow_type(ch_type)
        values = [row[column] for row in rows]
        try:
            timely = pa.types.is_timestamp(kind)
            arrays.append(pa.array(_ticks(values, kind) if timely else values, type=kind))
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            return None
    return pa.Table.from_arrays(arrays, names=list(types))


def test_one_pass_equals_a_pass_a_column() -> None:
    import random

    pick = random.Random(7)
    odd: dict[str, list[Any]] = {
        "k": ["", "a", "é\x00", 5, None, b"x"],
        "ts": [ROW["ts"], None, datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC)],
        "cost": [
            *(Decimal("1.5"), Decimal("-0.0"), Decimal("1e-11"), Decimal("1e9"), 3, None, 1.5),
            *(Decimal("1E+10"), Decimal("-9999999999.9999999999"), Decimal("0E-15")),
            *(Decimal("1.50000000000000"), Decimal("NaN"), Decimal("-Infinity"), Decimal("-1E-10")),
        ],
        "tags": [[], ["x", "y"], None, [None], "ab", [1]],
        "attrs": [{}, {"p": "q"}, None, {"p": 1}],
        "latency": [None, 0, 2**32 - 1, 2**32, -1, True, 1.0],
        "flag": [0, 1, 255, 256, True, None, "1"],
    }
    agreed = refused = 0
    for _ in range(1500):
        rows = [
            {c: pick.choice(v) if pick.random() < 0.2 else ROW[c] for c, v in odd.items()}
            for _ in range(pick.randint(1, 4))
        ]
        want = _by_column(rows, TYPES)
        got = arrow_table(rows, list(TYPES), TYPES)
        columns = RowColumns(list(ROW))
        columns.extend(rows)
        by_column = arrow_table(columns, list(TYPES), TYPES)
        assert (got is None) == (want is None) == (by_column is None), rows
        if got is not None:
            assert got.equals(want), rows
            assert by_column.equals(want), rows
        agreed += got is not None
        refused += got is None
    assert agreed > 50 and refused > 50  # both sides of the rule were exercised


def test_a_row_without_a_column_is_an_error() -> None:
    rows = [ROW, {c: v for c, v in ROW.items() if c != "latency"}]
    with pytest.raises(KeyError):
        arrow_table(rows, list(ROW), TYPES)
    with pytest.raises(KeyError):
        arrow_table([ROW, {c: v for c, v in ROW.items() if c != "ts"}], list(ROW), TYPES)
    without_latency = RowColumns([c for c in ROW if c != "latency"])
    without_latency.append(ROW)
    with pytest.raises(KeyError):
        arrow_table(without_latency, list(ROW), TYPES)


@pytest.mark.integration
def test_chdb_reads_a_tables_types_again_after_ddl(tmp_path: Path, monkeypatch: Any) -> None:
    from ingestor.clickhouse import chdb_engine

    seen: list[dict[str, str]] = []

    def spy(rows: Any, columns: Any, types: dict[str, str]) -> Any:
        seen.append(dict(types))
        return arrow_table(rows, columns, types)

    monkeypatch.setattr(chdb_engine, "arrow_table", spy)
    target = ClickHouseTarget(kind="chdb", database="arrow", path=tmp_path / "ch")
    with open_clickhouse(target) as ch:
        ch.execute("CREATE TABLE t (k String) ENGINE = MergeTree ORDER BY k")
        ch.insert("t", [{"k": "a"}] * 150)
        ch.execute("ALTER TABLE t ADD COLUMN n UInt8")
        ch.insert("t", [{"k": "b", "n": 7}] * 150)
        assert ch.query("SELECT k, n, count() FROM t GROUP BY k, n ORDER BY k") == [
            ("a", 0, 150),
            ("b", 7, 150),
        ]
    assert seen == [{"k": "String"}, {"k": "String", "n": "UInt8"}]
