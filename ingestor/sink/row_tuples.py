"""Rows of one table as tuples in the order of its ``columns``: the batch form of a table's rows
that come one a line (``transcript_lines``). Pure.

A dict a row cost the worker's hot loop ~3 µs a line to build (35 keys hashed and stored) and
the insert thread a lookup a key to convert; a tuple is built in a third of the time, batches
concatenate with one ``list.extend``, and columns are read by position (``column``).

``RowTuples`` is a ``Sequence`` of dict rows, built on demand, so every reader of rows (tests,
replays, small batches) keeps working unchanged; the hot readers (``arrow_table``, file
positions, the winners' span, metrics) take ``columns`` / ``tuples`` directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, overload

__all__ = ["Rows", "RowTuples", "column_of"]

Row = dict[str, Any]


class RowTuples(Sequence[Row]):
    """Rows as tuples of ``columns``' values; a row's dict is made only when one is asked for."""

    __slots__ = ("columns", "tuples")

    def __init__(self, columns: Sequence[str], tuples: list[tuple[Any, ...]] | None = None) -> None:
        self.columns = tuple(columns)
        self.tuples: list[tuple[Any, ...]] = [] if tuples is None else tuples

    def __len__(self) -> int:
        return len(self.tuples)

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> RowTuples: ...
    def __getitem__(self, index: int | slice) -> Row | RowTuples:
        if isinstance(index, slice):
            return RowTuples(self.columns, self.tuples[index])
        return dict(zip(self.columns, self.tuples[index], strict=True))

    def __iter__(self) -> Iterator[Row]:
        columns = self.columns
        for values in self.tuples:
            yield dict(zip(columns, values, strict=True))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RowTuples):
            return self.columns == other.columns and self.tuples == other.tuples
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as a list

    def __repr__(self) -> str:
        return f"RowTuples({len(self.tuples)} rows of {len(self.columns)} columns)"

    def append(self, row: Mapping[str, Any]) -> None:
        """Add a dict row; raises ``KeyError`` when it lacks a column (extra keys are dropped)."""
        self.tuples.append(tuple(row[c] for c in self.columns))

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> None:
        if isinstance(rows, RowTuples) and rows.columns == self.columns:
            self.tuples.extend(rows.tuples)
            return
        for row in rows:
            self.append(row)

    def column(self, name: str) -> list[Any]:
        """The values of column ``name``, in row order; raises ``ValueError`` for an unknown one."""
        return list(map(itemgetter(self.columns.index(name)), self.tuples))


# A table's rows in a batch: dicts, or tuples for the tables that come one a line.
Rows = list[Row] | RowTuples


def column_of(rows: Iterable[Mapping[str, Any]], name: str) -> Iterable[Any]:
    """The values of column ``name`` of ``rows`` (``None`` for a dict row without it)."""
    if isinstance(rows, RowTuples):
        return rows.column(name)
    return (row.get(name) for row in rows)
