-- The live session aggregates follow the winners (issue #9): the worker applies every change it
-- writes to counted_usage to the sessions it belongs to, so a counted line carries everything a
-- session sums, its tool uses too. The worker no longer holds a dedup index of the history.
--
-- Rows stored before carry no tool uses, so the winners are made again: usage_copies is filled
-- anew from transcript_lines, counted_usage and its sums emptied, and the worker decides every
-- group again at its next start (rebuild_winners, then ensure_usage_rollup), as for a database
-- from before 0013. Until then reports run the rule over the stored lines themselves.
ALTER TABLE usage_copies ADD COLUMN IF NOT EXISTS tool_uses Array(LowCardinality(String));

ALTER TABLE counted_usage ADD COLUMN IF NOT EXISTS tool_uses Array(LowCardinality(String));

TRUNCATE TABLE IF EXISTS counted_usage_ready;

TRUNCATE TABLE IF EXISTS usage_rollup_ready;

TRUNCATE TABLE IF EXISTS counted_usage;

TRUNCATE TABLE IF EXISTS usage_rollup;

TRUNCATE TABLE IF EXISTS usage_rolled_batches;

TRUNCATE TABLE IF EXISTS usage_copies;

INSERT INTO usage_copies
SELECT dedup_scope, message_id, source_file, source_generation, source_offset, request_id,
       line_session_id, is_sidechain, speed, timestamp, model, version, input_tokens,
       output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd, has_cost_usd,
       cost_calculated, usage_limit_reset_ms, tool_uses
FROM transcript_lines FINAL
WHERE has_usage = 1;

-- A database without usage lines is maintained from the start (as in 0013 and 0015).
INSERT INTO counted_usage_ready (ready_at)
SELECT now64(3) FROM system.one
WHERE (SELECT count() FROM transcript_lines WHERE has_usage = 1) = 0;

INSERT INTO usage_rollup_ready (ready_at)
SELECT now64(3) FROM system.one
WHERE (SELECT count() FROM transcript_lines WHERE has_usage = 1) = 0;
