-- Files as ccusage sees them (issue #7, row 7): the current generation of a file is the newest
-- one the watcher announced, even when it holds no line. A file replaced or truncated to nothing
-- and a deleted file (its tombstone: a new, empty generation) then count nothing of their older
-- generations. The watcher announces a generation with an envelope without records, which the
-- worker stores as a file_positions row at offset 0; lines stored before their position row
-- (a crash between the two inserts) still name their generation, hence the union.
CREATE OR REPLACE VIEW current_generations AS
SELECT source_file, max(source_generation) AS source_generation
FROM
(
    SELECT source_file, source_generation FROM transcript_lines
    UNION ALL
    SELECT source_file, source_generation FROM file_positions
)
GROUP BY source_file;

-- usage_dedup as in 0008, over the current generations.
CREATE OR REPLACE VIEW usage_dedup AS
SELECT * EXCEPT (prev_lines, instant_requests, instant_min_sidechain, copy_rank)
FROM
(
    SELECT
        *,
        row_number() OVER (
            PARTITION BY dedup_scope, message_id, request_id,
                         if(request_id = '', line_session_id, '')
            ORDER BY is_sidechain ASC,
                     input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens DESC,
                     speed != '' DESC, source_file, source_generation, source_offset
        ) AS copy_rank
    FROM
    (
        SELECT
            *,
            count() OVER earlier AS prev_lines,
            uniqExact(request_id) OVER instant AS instant_requests,
            min(is_sidechain) OVER instant AS instant_min_sidechain
        FROM transcript_lines FINAL
        WHERE has_usage = 1
          AND (source_file, source_generation) IN
              (SELECT source_file, source_generation FROM current_generations)
        WINDOW
            earlier AS (
                PARTITION BY dedup_scope, message_id, timestamp
                ORDER BY source_file, source_generation, source_offset
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
            ),
            instant AS (PARTITION BY dedup_scope, message_id, timestamp)
    )
    WHERE NOT (
        is_sidechain = 1 AND message_id != '' AND instant_requests > 1
        AND (instant_min_sidechain = 0 OR prev_lines > 0)
    )
)
WHERE message_id = '' OR (request_id = '' AND line_session_id = '') OR copy_rank = 1;
