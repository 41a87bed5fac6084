"""Where each transcript file was stored up to, as ClickHouse durably holds it.

The embedded broker keeps nothing across restarts, so the watcher resumes each file at the end
of the furthest line ClickHouse holds, stored or dead-lettered (both carry file and offset).
"""

from __future__ import annotations

from ingestor.sink.engine import ClickHouse

__all__ = ["file_positions"]

# No FINAL: replays replace rows with identical positions, so max() is the same either way.
_SQL = """
SELECT source_file, source_generation, max(source_offset + source_length)
FROM
(
    SELECT source_file, source_generation, source_offset, source_length
    FROM transcript_lines
    UNION ALL
    SELECT source_file, source_generation, source_offset, source_length
    FROM dead_letters
    WHERE kind = 'transcript' AND source_file != ''
)
GROUP BY source_file, source_generation
"""


def file_positions(ch: ClickHouse) -> dict[tuple[str, int], int]:
    """``(source_file, source_generation) -> end offset`` of its furthest stored line.

    Files ClickHouse holds nothing of are absent. Raises ``StorageError``.
    """
    return {(str(f), int(g)): int(end) for f, g, end in ch.query(_SQL)}
