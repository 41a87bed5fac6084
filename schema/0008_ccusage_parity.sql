-- ccusage parity (issue #6): what every --mode and the fast-model names need, and usage_dedup
-- following ccusage 20.x's order and comparison.
--
-- cost_usd stays the auto-mode cost (costUSD when the line has one, else calculated);
-- has_cost_usd says which, cost_calculated is always the calculated one (--mode calculate), and
-- price_missing marks a model without a price that used tokens.
ALTER TABLE transcript_lines ADD COLUMN IF NOT EXISTS speed LowCardinality(String) DEFAULT '' AFTER service_tier;
-- the sessionId written on the line ('' when absent); session_id is ccusage's (the file's)
ALTER TABLE transcript_lines ADD COLUMN IF NOT EXISTS line_session_id String DEFAULT '' AFTER session_id;
ALTER TABLE transcript_lines ADD COLUMN IF NOT EXISTS has_cost_usd UInt8 DEFAULT 0 AFTER cost_usd;
ALTER TABLE transcript_lines ADD COLUMN IF NOT EXISTS cost_calculated Decimal(20, 10) DEFAULT 0 AFTER has_cost_usd;
ALTER TABLE transcript_lines ADD COLUMN IF NOT EXISTS price_missing UInt8 DEFAULT 0 AFTER cost_calculated;
-- blocks: when an "usage limit reached" API error says the limit resets (0: not such a line)
ALTER TABLE transcript_lines ADD COLUMN IF NOT EXISTS usage_limit_reset_ms Int64 DEFAULT 0 AFTER price_missing;

-- The dedup rule in SQL, for the derived views and the worker's restore (reports run ccusage's
-- rule step for step in ingestor/usage/dedup.py over the same rows; this view approximates its
-- sidechain case). Only the newest generation of a file counts (ccusage reads what is on disk
-- now). Order: ccusage reads files by path, lines in file order. Copies of one
-- (message_id, request_id) compete (a line without request_id: of one (message_id, its own
-- sessionId); without either it always counts): non-sidechain first, then the larger input + output + cache
-- creation + cache read, then the one with a speed, then the first. A sidechain line is a replay
-- (dropped) when a line of the same message at the same instant has another request_id and is
-- either not a sidechain line or earlier.
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
              (SELECT source_file, max(source_generation) FROM transcript_lines GROUP BY source_file)
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
