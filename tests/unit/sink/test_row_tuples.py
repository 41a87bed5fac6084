"""``RowTuples``: rows as tuples that read as the dict rows they stand for."""

from __future__ import annotations

from typing import Any

import pytest

from ingestor.sink.positions import batch_positions, line_spans
from ingestor.sink.row_tuples import RowTuples, column_of
from ingestor.sink.winners import _usage_lines, batch_generations
from ingestor.sink.write import Batch

COLUMNS = ("source_file", "source_generation", "source_offset", "source_length", "n")


def _rows(*values: tuple[Any, ...]) -> RowTuples:
    return RowTuples(COLUMNS, list(values))


def test_tuples_read_as_dict_rows() -> None:
    rows = _rows(("f", 0, 0, 5, 1), ("f", 0, 5, 7, 2))
    dicts = [dict(zip(COLUMNS, t, strict=True)) for t in rows.tuples]
    assert len(rows) == 2 and rows[1] == dicts[1] and list(rows) == dicts
    assert rows == dicts and dicts == rows and rows != dicts[:1]
    assert rows[1:] == RowTuples(COLUMNS, [("f", 0, 5, 7, 2)])
    assert rows.column("n") == [1, 2] and list(column_of(rows, "n")) == [1, 2]
    assert list(column_of(dicts, "n")) == [1, 2]
    with pytest.raises(ValueError):
        rows.column("unknown")


def test_tuples_extend_by_tuples_and_dicts() -> None:
    rows = _rows(("f", 0, 0, 5, 1))
    rows.extend(_rows(("g", 1, 0, 3, 2)))
    rows.extend([{"n": 3, "source_file": "h", "source_generation": 0, "source_offset": 9,
                  "source_length": 1, "extra": "dropped"}])  # fmt: skip
    assert rows.tuples == [("f", 0, 0, 5, 1), ("g", 1, 0, 3, 2), ("h", 0, 9, 1, 3)]
    with pytest.raises(KeyError):
        rows.append({"n": 4})


def test_a_batch_concatenates_tuples_and_keeps_dicts() -> None:
    batch = Batch(max_rows=10, max_age_s=1.0, clock=lambda: 0.0)
    batch.add({"transcript_lines": _rows(("f", 0, 0, 5, 1)), "dead_letters": [{"a": 1}]})
    batch.add({"transcript_lines": _rows(("f", 0, 5, 5, 2), ("f", 0, 10, 5, 3))})
    assert batch.size == 4
    rows = batch.take()
    lines = rows["transcript_lines"]
    assert isinstance(lines, RowTuples) and lines.columns == COLUMNS
    assert [t[-1] for t in lines.tuples] == [1, 2, 3]
    assert rows["dead_letters"] == [{"a": 1}]


def test_positions_and_spans_read_tuples_as_dicts() -> None:
    tuples = _rows(("f", 0, 0, 5, 1), ("f", 0, 5, 7, 2), ("g", 2, 3, 4, 3))
    dead = [
        {"kind": "transcript", "source_file": "f", "source_generation": 0,
         "source_offset": 12, "source_length": 1},
        {"kind": "event", "source_file": "", "source_generation": 0,
         "source_offset": 0, "source_length": 0},
    ]  # fmt: skip
    as_tuples = {"transcript_lines": tuples, "dead_letters": dead}
    as_dicts = {"transcript_lines": list(tuples), "dead_letters": dead}
    assert list(line_spans(tuples)) == list(line_spans(list(tuples)))
    assert batch_positions(as_tuples) == batch_positions(as_dicts)
    assert batch_positions(as_tuples) == [
        {"source_file": "f", "source_generation": 0, "end_offset": 13},
        {"source_file": "g", "source_generation": 2, "end_offset": 7},
    ]
    assert batch_generations(as_tuples) == batch_generations(as_dicts) == {"f": 0, "g": 2}


def test_the_winners_read_the_usage_lines_of_tuples_as_of_dicts() -> None:
    columns = (*COLUMNS, "has_usage", "dedup_scope", "message_id")
    rows = RowTuples(columns, [
        ("f", 0, 0, 5, 1, True, "s", "m1"),
        ("f", 0, 5, 7, 2, False, "s", ""),
        ("g", 2, 3, 4, 3, True, "s", ""),
    ])  # fmt: skip
    wanted = ("dedup_scope", "message_id", "source_file", "source_generation", "source_offset")
    from_dicts = [{k: row[k] for k in wanted} for row in _usage_lines(list(rows))]
    assert _usage_lines(rows) == from_dicts
    assert [row["source_offset"] for row in from_dicts] == [0, 3]
