-- Dedup winners maintained at write time (issue #9): reports read what counts instead of running
-- ccusage's rule over every stored usage line on each query.
--
-- ccusage's rule only ever compares lines of one (dedup_scope, message_id): such a group is
-- decided by its own copies in ccusage's order, whatever other groups hold. After each batch
-- the worker re-decides every group the batch touched, from these copies, and writes the
-- difference to counted_usage (ingestor/sink/winners.py). A line without message id is a group
-- of its own and counts while its generation is current.

-- Every usage line once, ordered for fetching whole groups. Filled from transcript_lines by the
-- worker (INSERT ... SELECT over the batch's lines); a replayed copy replaces itself, and readers
-- take one row per line identity, so nothing here needs FINAL.
CREATE TABLE IF NOT EXISTS usage_copies
(
    dedup_scope           LowCardinality(String),
    message_id            String,
    source_file           String,
    source_generation     UInt32,
    source_offset         UInt64,
    request_id            String,
    line_session_id       String,
    is_sidechain          UInt8,
    speed                 LowCardinality(String),
    timestamp             DateTime64(3, 'UTC'),
    model                 LowCardinality(String),
    version               LowCardinality(String),
    input_tokens          UInt64,
    output_tokens         UInt64,
    cache_creation_tokens UInt64,
    cache_read_tokens     UInt64,
    cost_usd              Decimal(20, 10),
    has_cost_usd          UInt8,
    cost_calculated       Decimal(20, 10),
    usage_limit_reset_ms  Int64
)
ENGINE = ReplacingMergeTree
ORDER BY (dedup_scope, message_id, source_file, source_generation, source_offset)
SETTINGS index_granularity = 1024;

-- One +1 row per counted line; a line that stops counting gets its -1 twin (same row, sign -1),
-- merges collapse the pair. A line counts while sum(sign) over its rows is 1. slot_file and
-- slot_offset are where the entry's place in ccusage's list was made (its first copy): reports
-- order entries by (dedup_scope, slot_file, slot_offset), as ccusage's list is.
-- No non_replicated_deduplication_window: a +1 written again after its -1 is a new fact, and
-- block deduplication by checksum would drop it.
CREATE TABLE IF NOT EXISTS counted_usage
(
    dedup_scope           LowCardinality(String),
    message_id            String,
    source_file           String,
    source_generation     UInt32,
    source_offset         UInt64,
    slot_file             String,
    slot_offset           UInt64,
    sign                  Int8,
    timestamp             DateTime64(3, 'UTC'),
    model                 LowCardinality(String),
    speed                 LowCardinality(String),
    version               LowCardinality(String),
    input_tokens          UInt64,
    output_tokens         UInt64,
    cache_creation_tokens UInt64,
    cache_read_tokens     UInt64,
    cost_usd              Decimal(20, 10),
    has_cost_usd          UInt8,
    cost_calculated       Decimal(20, 10),
    usage_limit_reset_ms  Int64
)
ENGINE = CollapsingMergeTree(sign)
ORDER BY (dedup_scope, message_id, source_file, source_generation, source_offset,
          slot_file, slot_offset)
SETTINGS index_granularity = 1024;

-- A row here says counted_usage holds every group's winners: reports read it only then. A
-- database without usage lines starts maintained; one with older data is rebuilt by the worker
-- at start (ingestor/sink/winners.py, rebuild_winners), which then writes the row.
CREATE TABLE IF NOT EXISTS counted_usage_ready
(
    ready_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY tuple();

INSERT INTO counted_usage_ready (ready_at)
SELECT now64(3) FROM system.one
WHERE (SELECT count() FROM transcript_lines WHERE has_usage = 1) = 0
  AND (SELECT count() FROM counted_usage_ready) = 0;

INSERT INTO usage_copies
SELECT dedup_scope, message_id, source_file, source_generation, source_offset, request_id,
       line_session_id, is_sidechain, speed, timestamp, model, version, input_tokens,
       output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd, has_cost_usd,
       cost_calculated, usage_limit_reset_ms
FROM transcript_lines FINAL
WHERE has_usage = 1;
