-- ccusage parity (issue #6): what every --mode and the fast-model names need, and usage_dedup
-- following ccusage 20.x's order and comparison.
--
-- cost_usd stays the auto-mode cost (costUSD when the line has one, else calculated);
-- has_cost_usd says which, cost_calculated is always the calculated one (--mode calculate), and
-- price_missing marks a model without a price that used tokens.
ALTER TABLE transcript_lines ADD COLUMN IF NOT EXISTS speed LowCardinality(String) DEFAULT '' AFTER service_tier;
ALTER TABLE transcript_lines ADD COLUMN IF NOT EXISTS has_cost_usd UInt8 DEFAULT 0 AFTER cost_usd;
ALTER TABLE transcript_lines ADD COLUMN IF NOT EXISTS cost_calculated Decimal(20, 10) DEFAULT 0 AFTER has_cost_usd;
ALTER TABLE transcript_lines ADD COLUMN IF NOT EXISTS price_missing UInt8 DEFAULT 0 AFTER cost_calculated;
-- blocks: when an "usage limit reached" API error says the limit resets (0: not such a line)
ALTER TABLE transcript_lines ADD COLUMN IF NOT EXISTS usage_limit_reset_ms Int64 DEFAULT 0 AFTER price_missing;

-- The dedup rule in SQL, for the views and the worker's restore (reports run ccusage's rule
-- step for step in ingestor/usage/dedup.py over the same rows). Only the newest generation of a
-- file counts (ccusage reads what is on disk now). Order: ccusage reads files by path, lines in
-- file order. Copies of one (message_id, request_id) compete: non-sidechain first, then the
-- larger input + output + cache creation + cache read, then the one with a speed, then the
-- first. A sidechain line whose message_id appeared earlier with another request_id is a replay.
CREATE OR REPLACE VIEW usage_dedup AS
SELECT * EXCEPT (prev_lines, prev_min_request, prev_max_request, copy_rank)
FROM
(
    SELECT
        *,
        row_number() OVER (
            PARTITION BY dedup_scope, message_id, request_id
            ORDER BY is_sidechain ASC,
                     input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens DESC,
                     speed != '' DESC, source_file, source_generation, source_offset
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
          AND (source_file, source_generation) IN
              (SELECT source_file, max(source_generation) FROM transcript_lines GROUP BY source_file)
        WINDOW earlier AS (
            PARTITION BY dedup_scope, message_id
            ORDER BY source_file, source_generation, source_offset
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        )
    )
    WHERE NOT (
        is_sidechain = 1 AND message_id != '' AND prev_lines > 0
        AND (prev_min_request != request_id OR prev_max_request != request_id)
    )
)
WHERE message_id = '' OR copy_rank = 1;
