"""Rows (dicts keyed by column, or lists a column: ``RowColumns``) as a columnar Arrow table
typed by the ClickHouse columns. Pure.

chdb reads an Arrow table in place (``INSERT … SELECT * FROM Python(table)``) with the GIL
released, where JSON text costs an orjson encode under the GIL and a parse in ClickHouse. Each
column is built with the Arrow type of its ClickHouse column, so Arrow rejects what the column
cannot hold instead of converting it: a value of the wrong type, an integer out of range, a
Decimal with more places than the column keeps. ``arrow_table`` then returns None and the caller
sends the rows the old way, which keeps ClickHouse's own behaviour (and errors) for odd input.

Datetimes become integers of the column's unit here (floored, as Arrow's own conversion does):
Arrow converts an aware ``datetime`` through pandas, whose import costs ~0.5 s in every process
that inserts a first timestamp (the fixed cost of `ingestor up`), for no faster a conversion.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]

from ingestor.rows.columns import RowColumns

__all__ = ["arrow_table", "arrow_type"]

_SIMPLE: dict[str, pa.DataType] = {
    "UInt8": pa.uint8(),
    "UInt16": pa.uint16(),
    "UInt32": pa.uint32(),
    "UInt64": pa.uint64(),
    "Int8": pa.int8(),
    "Int16": pa.int16(),
    "Int32": pa.int32(),
    "Int64": pa.int64(),
    "Float32": pa.float32(),
    "Float64": pa.float64(),
    "String": pa.string(),
    "Bool": pa.bool_(),
    "Date": pa.date32(),
}
_DECIMAL = re.compile(r"Decimal\((\d+),\s*(\d+)\)")
_DATETIME64 = re.compile(r"DateTime64\(([0369])(?:,\s*'UTC')?\)")
_UNITS = {"0": "s", "3": "ms", "6": "us", "9": "ns"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_STEPS = {
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
    "us": timedelta(microseconds=1),
}


@lru_cache(maxsize=256)
def arrow_type(ch_type: str) -> pa.DataType | None:
    """The Arrow type that holds exactly the values of ClickHouse ``ch_type``; None if unsure."""
    if ch_type in _SIMPLE:
        return _SIMPLE[ch_type]
    for wrapper in ("Nullable(", "LowCardinality("):
        if ch_type.startswith(wrapper):
            return arrow_type(ch_type[len(wrapper) : -1])  # Arrow columns are all nullable
    if ch_type.startswith("Array("):
        item = arrow_type(ch_type[6:-1])
        return None if item is None else pa.list_(item)
    if ch_type == "Map(String, String)":
        return pa.map_(pa.string(), pa.string())
    if match := _DECIMAL.fullmatch(ch_type):
        precision, scale = int(match.group(1)), int(match.group(2))
        return pa.decimal128(precision, scale) if precision <= 38 else None
    if match := _DATETIME64.fullmatch(ch_type):
        return pa.timestamp(_UNITS[match.group(1)], tz="UTC")
    if ch_type in ("DateTime", "DateTime('UTC')"):
        return pa.timestamp("s", tz="UTC")
    return None  # Enum, UUID, other time zones…: not worth the risk of a silent difference


def arrow_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], types: Mapping[str, str]
) -> pa.Table | None:
    """``rows`` as an Arrow table of ``columns`` typed by ``types`` (column -> ClickHouse type).

    None when a column is unknown, has a type without an exact Arrow twin, or a value Arrow
    refuses for that type. Raises ``KeyError`` when a row lacks a column.
    """
    kinds = []
    for column in columns:
        ch_type = types.get(column)
        kind = None if ch_type is None else arrow_type(ch_type)
        if kind is None:
            return None
        kinds.append(kind)
    timely = [pa.types.is_timestamp(kind) for kind in kinds]
    try:
        if isinstance(rows, RowColumns):
            arrays = _by_column(rows, columns, kinds, timely)
        else:
            arrays = _by_struct(rows, columns, kinds, timely)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    return pa.Table.from_arrays(arrays, names=list(columns))


def _by_struct(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    kinds: Sequence[pa.DataType],
    timely: Sequence[bool],
) -> list[pa.Array]:
    """The columns, all but the datetimes read from the rows in one pass in C: Arrow's struct
    converter looks each field up in each dict (measured half the CPU of a list per column,
    which pays a Python call per value) with the same per-type conversion as ``pa.array``.
    Datetimes go through ``_ticks`` (Arrow's own conversion of them imports pandas)."""
    plain = [(c, k) for c, k, t in zip(columns, kinds, timely, strict=True) if not t]
    arrays: dict[str, pa.Array] = {}
    if plain:
        struct = pa.array(rows, type=pa.struct([pa.field(c, k) for c, k in plain]))
        for (column, _), array in zip(plain, struct.flatten(), strict=True):
            # The struct reads a missing key as null: a row without the column is the caller's
            # error (KeyError, as in the timestamp columns below), not a default in ClickHouse.
            if array.null_count and not all(column in row for row in rows):
                raise KeyError(column)
            arrays[column] = array
    for column, kind, t in zip(columns, kinds, timely, strict=True):
        if t:
            arrays[column] = pa.array(_ticks(list(map(itemgetter(column), rows)), kind), type=kind)
    return [arrays[column] for column in columns]


def _by_column(
    rows: RowColumns,
    columns: Sequence[str],
    kinds: Sequence[pa.DataType],
    timely: Sequence[bool],
) -> list[pa.Array]:
    """The columns of ``RowColumns``, each converted from its list as ``pa.array`` converts it
    (what ``_by_struct`` does a field); their time columns hold epoch milliseconds already."""
    arrays = []
    for column, kind, t in zip(columns, kinds, timely, strict=True):
        if column not in rows.columns:
            raise KeyError(column)
        if t and column in rows.times:
            arrays.append(_from_ms(rows.raw(column), kind))
        elif pa.types.is_decimal(kind):
            arrays.append(_decimals(rows.raw(column), kind))
        else:
            values = rows.raw(column)
            arrays.append(pa.array(_ticks(values, kind) if t else values, type=kind))
    return arrays


_DECIMAL_OR_NONE = frozenset({Decimal, type(None)})


def _decimals(values: Sequence[Any], kind: pa.DataType) -> pa.Array:
    """Decimals as ``kind`` through their text, which Arrow parses in C++: half the CPU of its
    reading of ``Decimal`` objects (0.11 against 0.25 s for 300k values), and the same values
    refused (more places than the column keeps, more digits than it holds: ``ArrowInvalid``).
    Anything but Decimals goes through ``pa.array``, which decides as before."""
    if not _DECIMAL_OR_NONE.issuperset(map(type, values)):
        return pa.array(values, type=kind)
    texts = [None if value is None else str(value) for value in values]
    return pa.array(texts, type=pa.string()).cast(kind)


_PER_MS = {"s": None, "ms": 1, "us": 1000, "ns": 1_000_000}


def _from_ms(values: Sequence[Any], kind: pa.DataType) -> pa.Array:
    """Epoch milliseconds as a timestamp array of ``kind`` (a unit coarser than milliseconds
    floors them, as the datetimes' conversion does)."""
    scale = _PER_MS[kind.unit]
    if scale is None:
        values = [None if v is None else v // 1000 for v in values]
    elif scale != 1:
        values = [None if v is None else v * scale for v in values]
    return pa.array(values, type=pa.int64()).view(kind)


def _ticks(column: Sequence[Any], kind: pa.DataType) -> Sequence[Any]:
    """Datetimes as integers of ``kind``'s unit (naive ones read as UTC, as Arrow does)."""
    if kind.unit == "ns":
        step, scale = _STEPS["us"], 1000
    else:
        step, scale = _STEPS[kind.unit], 1
    out: list[Any] = []
    for value in column:
        if isinstance(value, datetime):
            epoch = _EPOCH if value.tzinfo is not None else _NAIVE_EPOCH
            value = (value - epoch) // step * scale
        out.append(value)
    return out
