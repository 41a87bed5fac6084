-- Usage summed at write time (issue #9): reports read these sums instead of grouping every
-- counted line of counted_usage FINAL on each query.
--
-- One row per (quarter hour, scope, file, model, fast) and insert: its counted lines' signed
-- sums. Every real time zone's offset is a whole number of quarter hours, so a quarter hour lies
-- in one local day (reports check it, and read the lines on a difference). Sums of sign * value
-- stay exact under retractions: a -1 row repeats its +1 twin's values. The order and instants of
-- a group (its first slot, earliest and latest instant) are only right while no line of it was
-- retracted: `retracted` counts -1 rows, and reports take those of a group that has any from
-- the lines themselves (ingestor/report/counted.py).
--
-- Crash safety as for the events rollups (0014): each counted_usage insert names its batch, a
-- batch is rolled up by one INSERT ... SELECT with its own deduplication token (done twice, the
-- second is a no-op), and usage_rolled_batches records it; the worker rolls up any batch left
-- unrecorded at start (ingestor/sink/usage_rollup.py), and reports read the sums only when none
-- is left and usage_rollup_ready says the table was filled from everything stored before.
ALTER TABLE counted_usage ADD COLUMN IF NOT EXISTS batch_id String DEFAULT '';

ALTER TABLE counted_usage ADD INDEX IF NOT EXISTS idx_batch_id batch_id TYPE bloom_filter(0.001) GRANULARITY 1;

-- Reports read the lines of the few files with a retracted line.
ALTER TABLE counted_usage ADD INDEX IF NOT EXISTS idx_source_file source_file TYPE bloom_filter(0.01) GRANULARITY 1;

CREATE TABLE IF NOT EXISTS usage_rollup
(
    bucket                Int64,  -- epoch milliseconds / 900000: a quarter hour, UTC
    dedup_scope           LowCardinality(String),
    source_file           String,
    model                 LowCardinality(String),
    fast                  UInt8,
    lines                 SimpleAggregateFunction(sum, Int64),
    retracted             SimpleAggregateFunction(sum, UInt64),
    input_tokens          SimpleAggregateFunction(sum, Int64),
    output_tokens         SimpleAggregateFunction(sum, Int64),
    cache_creation_tokens SimpleAggregateFunction(sum, Int64),
    cache_read_tokens     SimpleAggregateFunction(sum, Int64),
    cost_usd              SimpleAggregateFunction(sum, Decimal(38, 10)),
    cost_calculated       SimpleAggregateFunction(sum, Decimal(38, 10)),
    cost_display          SimpleAggregateFunction(sum, Decimal(38, 10)),
    first                 SimpleAggregateFunction(min, Tuple(String, UInt64)),
    first_ms              SimpleAggregateFunction(min, Int64),
    last_ms               SimpleAggregateFunction(max, Int64)
)
ENGINE = AggregatingMergeTree
ORDER BY (dedup_scope, source_file, bucket, model, fast)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS usage_rolled_batches
(
    batch_id  String,
    rolled_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY batch_id;

-- A row here says usage_rollup was filled from every counted line stored before batches were
-- rolled up one by one. A database without counted lines starts so; one with older data is
-- filled by the worker at start (ingestor/sink/usage_rollup.py, ensure_usage_rollup).
CREATE TABLE IF NOT EXISTS usage_rollup_ready
(
    ready_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY tuple();

INSERT INTO usage_rollup_ready (ready_at)
SELECT now64(3) FROM system.one
WHERE (SELECT count() FROM counted_usage) = 0
  AND (SELECT count() FROM usage_rollup_ready) = 0;
