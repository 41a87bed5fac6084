"""``RowColumns``: rows as a list a column that read as the dict rows they stand for."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ingestor.clickhouse.positions import batch_positions, line_spans
from ingestor.clickhouse.winners import batch_generations, usage_copies
from ingestor.clickhouse.write import Batch
from ingestor.rows.columns import RowColumns, column_of, epoch_ms
from ingestor.usage.winners import StoredCopy

COLUMNS = ("source_file", "source_generation", "source_offset", "source_length", "n")


def _rows(*values: tuple[Any, ...]) -> RowColumns:
    rows = RowColumns(COLUMNS)
    rows.add_tuples(list(values))
    return rows


def test_columns_read_as_dict_rows() -> None:
    rows = _rows(("f", 0, 0, 5, 1), ("f", 0, 5, 7, 2))
    dicts = [dict(zip(COLUMNS, t, strict=True)) for t in [("f", 0, 0, 5, 1), ("f", 0, 5, 7, 2)]]
    assert len(rows) == 2 and rows[1] == dicts[1] and list(rows) == dicts
    assert rows == dicts and dicts == rows and rows != dicts[:1]
    assert rows[1:] == _rows(("f", 0, 5, 7, 2))
    assert rows.column("n") == [1, 2] and list(column_of(rows, "n")) == [1, 2]
    assert list(column_of(dicts, "n")) == [1, 2]
    with pytest.raises(ValueError):
        rows.column("unknown")


def test_columns_extend_by_columns_tuples_and_dicts() -> None:
    rows = _rows(("f", 0, 0, 5, 1))
    rows.extend(_rows(("g", 1, 0, 3, 2)))
    rows.extend([{"n": 3, "source_file": "h", "source_generation": 0, "source_offset": 9,
                  "source_length": 1, "extra": "dropped"}])  # fmt: skip
    rows.add_columns([["i"], [0], [10], [1], [4]])
    assert rows.data == [["f", "g", "h", "i"], [0, 1, 0, 0], [0, 0, 9, 10], [5, 3, 1, 1],
                         [1, 2, 3, 4]]  # fmt: skip
    with pytest.raises(KeyError):
        rows.append({"n": 4})
    assert len(rows) == 4  # a row that lacks a column adds nothing
    with pytest.raises(ValueError):
        rows.add_columns([["j"], [0], [11], [1], []])


def test_time_columns_hold_milliseconds_and_show_datetimes() -> None:
    rows = RowColumns(("at", "n"), times=("at",))
    when = datetime(2025, 3, 4, 5, 6, 7, 891_999, tzinfo=UTC)
    rows.append({"at": when, "n": 1})
    rows.add_tuples([(datetime(1969, 12, 31, 23, 59, 59, 999_500, tzinfo=UTC), 2)])
    rows.add_columns([[0], [3]])
    assert rows.raw("at") == [epoch_ms(when), -1, 0]
    assert epoch_ms(when) == 1741064767891  # floored, as a DateTime64(3) keeps it
    assert rows[0]["at"] == when.replace(microsecond=891_000)
    assert rows.column("at")[2] == datetime(1970, 1, 1, tzinfo=UTC)
    assert rows.like().columns == rows.columns and rows.like().times == rows.times


def test_a_batch_concatenates_columns_and_keeps_dicts() -> None:
    batch = Batch(max_rows=10, max_age_s=1.0, clock=lambda: 0.0)
    batch.add({"transcript_lines": _rows(("f", 0, 0, 5, 1)), "dead_letters": [{"a": 1}]})
    batch.add({"transcript_lines": _rows(("f", 0, 5, 5, 2), ("f", 0, 10, 5, 3))})
    assert batch.size == 4
    rows = batch.take()
    lines = rows["transcript_lines"]
    assert isinstance(lines, RowColumns) and lines.columns == COLUMNS
    assert lines.raw("n") == [1, 2, 3]
    assert rows["dead_letters"] == [{"a": 1}]


def test_positions_and_spans_read_columns_as_dicts() -> None:
    columns = _rows(("f", 0, 0, 5, 1), ("f", 0, 5, 7, 2), ("g", 2, 3, 4, 3))
    dead = [
        {"kind": "transcript", "source_file": "f", "source_generation": 0,
         "source_offset": 12, "source_length": 1},
        {"kind": "event", "source_file": "", "source_generation": 0,
         "source_offset": 0, "source_length": 0},
    ]  # fmt: skip
    as_columns = {"transcript_lines": columns, "dead_letters": dead}
    as_dicts = {"transcript_lines": list(columns), "dead_letters": dead}
    assert list(line_spans(columns)) == list(line_spans(list(columns)))
    assert batch_positions(as_columns) == batch_positions(as_dicts)
    assert batch_positions(as_columns) == [
        {"source_file": "f", "source_generation": 0, "end_offset": 13},
        {"source_file": "g", "source_generation": 2, "end_offset": 7},
    ]
    assert batch_generations(as_columns) == batch_generations(as_dicts) == {"f": 0, "g": 2}


def test_the_winners_copy_the_usage_lines_of_columns_as_of_dicts() -> None:
    copied = StoredCopy._fields
    columns = (*COLUMNS, "has_usage", *(c for c in copied if c not in COLUMNS))
    values = tuple(1_736_071_200_123 if c == "timestamp" else f"{c}-v" for c in columns[6:])
    rows = RowColumns(columns, times=("timestamp",))
    rows.add_tuples([
        ("f", 0, 0, 5, 1, 1, *values),
        ("f", 0, 5, 7, 2, 0, *values),
        ("g", 2, 3, 4, 3, 1, *values),
    ])  # fmt: skip
    from_columns = usage_copies(rows)
    assert isinstance(from_columns, RowColumns) and from_columns.columns == copied
    assert from_columns.raw("timestamp") == [1_736_071_200_123] * 2  # as the lines hold it
    assert from_columns == usage_copies(list(rows))  # the rows as dicts show them
    assert [(r["source_file"], r["source_offset"]) for r in from_columns] == [("f", 0), ("g", 3)]
    assert from_columns[1]["message_id"] == "message_id-v"
    assert from_columns[1]["timestamp"] == datetime(2025, 1, 5, 10, 0, 0, 123_000, tzinfo=UTC)
