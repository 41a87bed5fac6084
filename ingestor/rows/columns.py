"""Rows of one table as a list per column: the batch form of a table's rows that come one a
line (``transcript_lines``). Pure.

A dict a row cost the worker's hot loop ~3 µs a line to build (35 keys hashed and stored) and
the insert thread a lookup a key to convert. Columns are what both ends want: the watcher sends
a transcript envelope's lines as columns (``ingestor/wire.py``), a batch concatenates them with
one ``list.extend`` a column, and Arrow builds each column from its list in C
(``rows/arrow.py``).

Time columns (``times``) hold epoch milliseconds (UTC, floored: what a ``DateTime64(3)`` keeps),
not ``datetime`` objects: the watcher sends them so, and a row's dict shows them as aware
datetimes. ``RowColumns`` is a ``Sequence`` of dict rows, built on demand, so every reader of
rows (tests, replays, small batches) keeps working unchanged; the hot readers (``arrow_table``,
file positions, the winners' span) take ``column``/``raw`` directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, overload

__all__ = ["Rows", "RowColumns", "column_of", "epoch_ms"]

Row = dict[str, Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_MS = timedelta(milliseconds=1)


def epoch_ms(value: Any) -> Any:
    """A ``datetime`` as epoch milliseconds (floored; a naive one read as UTC, as Arrow does);
    any other value as it is."""
    if isinstance(value, datetime):
        return (value - (_EPOCH if value.tzinfo is not None else _NAIVE_EPOCH)) // _MS
    return value


def _shown(value: Any) -> Any:
    return _EPOCH + value * _MS if type(value) is int else value


class RowColumns(Sequence[Row]):
    """Rows as one list of values a column; a row's dict is made only when one is asked for."""

    __slots__ = ("_times", "columns", "data", "times")

    def __init__(
        self,
        columns: Sequence[str],
        data: list[list[Any]] | None = None,
        times: Iterable[str] = (),
    ) -> None:
        self.columns = tuple(columns)
        self.data: list[list[Any]] = [[] for _ in self.columns] if data is None else data
        if len(self.data) != len(self.columns):
            raise ValueError(f"{len(self.data)} lists for {len(self.columns)} columns")
        self.times = frozenset(times)
        self._times = [c in self.times for c in self.columns]

    def like(self) -> RowColumns:
        """An empty ``RowColumns`` of the same columns."""
        return RowColumns(self.columns, None, self.times)

    def __len__(self) -> int:
        return len(self.data[0]) if self.data else 0

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> RowColumns: ...
    def __getitem__(self, index: int | slice) -> Row | RowColumns:
        if isinstance(index, slice):
            return RowColumns(self.columns, [values[index] for values in self.data], self.times)
        return {
            c: _shown(values[index]) if t else values[index]
            for c, t, values in zip(self.columns, self._times, self.data, strict=True)
        }

    def __iter__(self) -> Iterator[Row]:
        for index in range(len(self)):
            yield self[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RowColumns):
            return self.columns == other.columns and self.data == other.data
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as a list

    def __repr__(self) -> str:
        return f"RowColumns({len(self)} rows of {len(self.columns)} columns)"

    def append(self, row: Mapping[str, Any]) -> None:
        """Add a dict row; raises ``KeyError`` when it lacks a column (extra keys are dropped)."""
        values = [row[c] for c in self.columns]  # every key looked up before any list grows
        for column, is_time, value in zip(self.data, self._times, values, strict=True):
            column.append(epoch_ms(value) if is_time else value)

    def add_tuples(self, tuples: Sequence[tuple[Any, ...]]) -> None:
        """Add rows given as tuples of the columns' values, in order."""
        if not tuples:
            return
        by_column = zip(*tuples, strict=True)
        for column, is_time, values in zip(self.data, self._times, by_column, strict=True):
            column.extend(map(epoch_ms, values) if is_time else values)

    def add_columns(self, data: Sequence[Sequence[Any]]) -> None:
        """Add rows given as a list of values a column (time columns in epoch milliseconds)."""
        if len(data) != len(self.columns) or len({len(values) for values in data}) > 1:
            raise ValueError("columns of unequal length, or not one a column")
        for column, values in zip(self.data, data, strict=True):
            column.extend(values)

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> None:
        if isinstance(rows, RowColumns) and rows.columns == self.columns:
            for column, values in zip(self.data, rows.data, strict=True):
                column.extend(values)
            return
        for row in rows:
            self.append(row)

    def column(self, name: str) -> list[Any]:
        """The values of column ``name`` in row order, as the rows show them (time columns as
        datetimes); raises ``ValueError`` for an unknown one."""
        index = self.columns.index(name)
        values = self.data[index]
        return list(map(_shown, values)) if self._times[index] else values

    def raw(self, name: str) -> list[Any]:
        """The stored values of column ``name`` (time columns in epoch milliseconds)."""
        return self.data[self.columns.index(name)]


# A table's rows in a batch: dicts, or columns for the tables that come one a line.
Rows = list[Row] | RowColumns


def column_of(rows: Iterable[Mapping[str, Any]], name: str) -> Iterable[Any]:
    """The values of column ``name`` of ``rows`` (``None`` for a dict row without it)."""
    if isinstance(rows, RowColumns):
        return rows.column(name)
    return (row.get(name) for row in rows)
