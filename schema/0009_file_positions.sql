-- How far each transcript file is durably stored: the watcher's resume point after the embedded
-- broker lost its memory (ARCHITECTURE.md, "Whole-tree kill").
--
-- The worker writes one row per file per batch, after every other table of that batch, so a row
-- here means every line up to end_offset is in transcript_lines or dead_letters. The furthest
-- line of those tables is not enough: a crash between their two inserts leaves one ahead of the
-- other, and resuming at the furthest would skip the lines the other one lost.

CREATE TABLE IF NOT EXISTS file_positions
(
    source_file       String,
    source_generation UInt32,
    end_offset        UInt64,
    stored_at         DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(end_offset)
ORDER BY (source_file, source_generation)
SETTINGS non_replicated_deduplication_window = 1000;

-- Data stored before this table existed: its furthest line, as the resume point was computed then.
INSERT INTO file_positions (source_file, source_generation, end_offset)
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
GROUP BY source_file, source_generation;
