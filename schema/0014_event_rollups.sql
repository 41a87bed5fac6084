-- The events rollups (hourly_metrics, daily_metrics, user_usage_*) were materialized views on
-- events. A kill -9 or a full disk between an insert's events part and its views' parts left
-- the views short for good: the re-delivered events were already stored, so they were not
-- inserted again (issue #11). The worker now fills the rollups itself from what events holds,
-- one stored batch at a time (ingestor/sink/rollups.py): each event row names the batch that
-- stored it, a batch is rolled up with one deduplication token per rollup table (doing it again
-- is a no-op), and rolled_up_batches lists the batches whose rollups are all written.
-- Rows stored before this migration have batch_id '': the views counted them.
ALTER TABLE events ADD COLUMN IF NOT EXISTS batch_id String DEFAULT '';

-- Rolling up a batch reads its rows only.
ALTER TABLE events ADD INDEX IF NOT EXISTS idx_batch_id batch_id TYPE bloom_filter(0.001) GRANULARITY 1;

DROP VIEW IF EXISTS hourly_metrics_mv;
DROP VIEW IF EXISTS daily_metrics_mv;
DROP VIEW IF EXISTS user_usage_daily_mv;
DROP VIEW IF EXISTS user_usage_weekly_mv;
DROP VIEW IF EXISTS user_usage_monthly_mv;
DROP VIEW IF EXISTS user_usage_yearly_mv;

CREATE TABLE IF NOT EXISTS rolled_up_batches
(
    batch_id  String,
    rolled_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY batch_id;
