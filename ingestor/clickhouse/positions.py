"""Where each transcript file is durably stored up to: the watcher's resume point.

The embedded broker keeps nothing across restarts, so the watcher resumes each file where
ClickHouse says. A batch's lines go to two tables, ``transcript_lines`` and ``dead_letters``,
in two inserts; a crash between them leaves one table ahead of the other, so the furthest line
of either is not a safe resume point (the lines the other insert lost would be skipped for good).
The worker therefore writes ``batch_positions`` to ``file_positions`` after every other table of
the batch: a position there means every line before it is stored. Lines after it that a crashed
batch did store are sent again, and replace themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ingestor.clickhouse.engine import ClickHouse
from ingestor.rows.columns import RowColumns

__all__ = ["POSITIONS_TABLE", "batch_positions", "file_positions", "line_spans"]

POSITIONS_TABLE = "file_positions"

# No FINAL: max() is the same whether or not the older rows were merged away.
_SQL = f"""
SELECT source_file, source_generation, max(end_offset)
FROM {POSITIONS_TABLE}
GROUP BY source_file, source_generation
"""


def batch_positions(rows: Mapping[str, Iterable[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """``file_positions`` rows for a batch: per file, the end of its furthest line, and the
    generations announced without lines (rows already in ``file_positions``). Pure."""
    ends: dict[tuple[str, int], int] = {}
    for row in rows.get(POSITIONS_TABLE, ()):
        key = (row["source_file"], row["source_generation"])
        ends[key] = max(row["end_offset"], ends.get(key, -1))
    for table in ("transcript_lines", "dead_letters"):
        for file, generation, offset, length in line_spans(rows.get(table, ())):
            if not file:
                continue
            key = (file, generation)
            end = offset + length
            if end > ends.get(key, -1):
                ends[key] = end
    return [
        {"source_file": f, "source_generation": g, "end_offset": end}
        for (f, g), end in ends.items()
    ]


_SPAN = ("source_file", "source_generation", "source_offset", "source_length")


def line_spans(rows: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, int, int, int]]:
    """(file, generation, offset, length) of each row of a transcript line (not an event's or
    ledger entry's dead letter; a dead letter of a message, not a line, has no file). Pure."""
    if isinstance(rows, RowColumns) and "kind" not in rows.columns:
        # Read by column, no dict a row (a batch's transcript lines).
        yield from zip(*map(rows.raw, _SPAN), strict=True)
        return
    for row in rows:
        if row.get("kind", "transcript") == "transcript":
            yield (
                row["source_file"],
                row["source_generation"],
                row["source_offset"],
                row["source_length"],
            )


def file_positions(ch: ClickHouse) -> dict[tuple[str, int], int]:
    """``(source_file, source_generation) -> end offset`` up to which every line is stored.

    Files ClickHouse holds nothing of are absent. Raises ``StorageError``.
    """
    return {(str(f), int(g)): int(end) for f, g, end in ch.query(_SQL)}
