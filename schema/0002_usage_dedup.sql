-- The ccusage dedup rule (ARCHITECTURE.md), applied at query time over every stored line.
--
-- Within one dedup_scope (one watcher's sources, as ccusage on one machine).
-- Order key: (file_first_ts, source_file, source_generation, source_offset).
-- Rule 3: a sidechain usage line whose message_id appeared on an earlier usage line with a
--         different request_id is a replay: dropped. "Some earlier line has another request_id"
--         is "the earlier lines' request_ids are not all equal to mine": min/max over the
--         preceding rows of the message_id partition.
-- Rule 4: per (message_id, request_id), the non-sidechain copy wins, then the larger
--         input + output, then the first in order.
-- Rule 1: message_id = '' always counts.
CREATE VIEW IF NOT EXISTS usage_dedup AS
SELECT * EXCEPT (prev_lines, prev_min_request, prev_max_request, copy_rank)
FROM
(
    SELECT
        *,
        row_number() OVER (
            PARTITION BY dedup_scope, message_id, request_id
            ORDER BY is_sidechain ASC, input_tokens + output_tokens DESC,
                     file_first_ts, source_file, source_generation, source_offset
        ) AS copy_rank
    FROM
    (
        SELECT
            *,
            count() OVER earlier AS prev_lines,
            min(request_id) OVER earlier AS prev_min_request,
            max(request_id) OVER earlier AS prev_max_request
        FROM transcript_lines FINAL
        WHERE has_usage = 1
        WINDOW earlier AS (
            PARTITION BY dedup_scope, message_id
            ORDER BY file_first_ts, source_file, source_generation, source_offset
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        )
    )
    WHERE NOT (
        is_sidechain = 1 AND message_id != '' AND prev_lines > 0
        AND (prev_min_request != request_id OR prev_max_request != request_id)
    )
)
WHERE message_id = '' OR copy_rank = 1;

-- Where every line of a file went: stored (usage or not), counted, dropped as a duplicate,
-- or dead-lettered. lines_stored = usage_lines + no_usage_lines; usage_lines = counted + duplicates.
CREATE VIEW IF NOT EXISTS line_accounting AS
SELECT
    source_file,
    max(project) AS project,
    sum(stored) AS lines_stored,
    sum(usage) AS usage_lines,
    sum(counted) AS usage_counted,
    usage_lines - usage_counted AS duplicates,
    sum(no_usage) AS no_usage_lines,
    sum(dead) AS dead_letters
FROM
(
    SELECT source_file, any(project) AS project, count() AS stored,
           countIf(has_usage = 1) AS usage, toUInt64(0) AS counted,
           countIf(has_usage = 0) AS no_usage, toUInt64(0) AS dead
    FROM transcript_lines FINAL
    GROUP BY source_file
    UNION ALL
    SELECT source_file, any(project), 0, 0, count(), 0, 0
    FROM usage_dedup
    GROUP BY source_file
    UNION ALL
    SELECT source_file, '', 0, 0, 0, 0, count()
    FROM dead_letters FINAL
    WHERE kind = 'transcript' AND source_file != ''
    GROUP BY source_file
)
GROUP BY source_file;
