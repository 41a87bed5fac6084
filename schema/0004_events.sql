-- Observability events from the SDK (seed 003, adapted). Prompt and response text is never
-- stored, only sizes. Rows replace themselves by event_id (it ends the sorting key, and a
-- replayed event carries the same project, type and timestamp).
CREATE TABLE IF NOT EXISTS events
(
    event_id           String,
    project_id         LowCardinality(String),
    event_type         LowCardinality(String),
    timestamp          DateTime64(3, 'UTC'),
    user_id            String,
    session_id         String,
    run_id             String,
    env                LowCardinality(String),
    tags               Array(LowCardinality(String)),
    model              LowCardinality(String),
    tokens_input       UInt64,
    tokens_output      UInt64,
    tokens_cache_read  UInt64,
    tokens_cache_write UInt64,
    cost_usd           Decimal(20, 10),
    latency_ms         Nullable(UInt64),  -- NULL = not measured (kept out of averages)
    status             Enum8('success' = 1, 'error' = 2, 'timeout' = 3, 'cancelled' = 4),
    prompt_chars       Nullable(UInt64),
    response_chars     Nullable(UInt64),
    finish_reason      LowCardinality(String),
    error_type         LowCardinality(String),
    error_message      String,
    -- The remaining type-specific fields (tool, step, assertion, alert …) as text; tool calls and
    -- agent steps also get typed rows in their own tables.
    attributes         Map(LowCardinality(String), String),
    ingested_at        DateTime64(3, 'UTC') DEFAULT now64(3),

    INDEX idx_run_id run_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_model model TYPE set(256) GRANULARITY 4,
    INDEX idx_status status TYPE set(4) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, event_type, timestamp, event_id)
TTL toDateTime(timestamp) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS tool_calls
(
    event_id      String,
    project_id    LowCardinality(String),
    timestamp     DateTime64(3, 'UTC'),
    run_id        String,
    session_id    String,
    user_id       String,
    tool_name     LowCardinality(String),
    tool_call_id  String,
    model         LowCardinality(String),
    status        Enum8('success' = 1, 'error' = 2, 'timeout' = 3, 'cancelled' = 4),
    latency_ms    Nullable(UInt64),
    cost_usd      Decimal(20, 10),
    error_message String,

    INDEX idx_run_id run_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_status status TYPE set(4) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, tool_name, timestamp, event_id)
TTL toDateTime(timestamp) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Ordered for workflow replay: a run's steps in step order.
CREATE TABLE IF NOT EXISTS agent_steps
(
    event_id      String,
    project_id    LowCardinality(String),
    run_id        String,
    timestamp     DateTime64(3, 'UTC'),
    session_id    String,
    step_number   UInt32,
    step_name     String,
    step_type     LowCardinality(String),
    agent_name    LowCardinality(String),
    model         LowCardinality(String),
    status        Enum8('success' = 1, 'error' = 2, 'timeout' = 3, 'cancelled' = 4),
    latency_ms    Nullable(UInt64),
    tokens_input  UInt64,
    tokens_output UInt64,
    cost_usd      Decimal(20, 10)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, run_id, step_number, timestamp, event_id)
TTL toDateTime(timestamp) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Hourly and daily metrics. Sums merge as SimpleAggregateFunction(sum); latency quantiles need
-- real aggregate states (read with quantilesMerge(0.5, 0.9, 0.99)(latency_quantiles)); the
-- average is latency_sum_ms / latency_count, exact. These tables count every inserted event
-- block once: the sink inserts with a deduplication token and drops event ids already stored.
CREATE TABLE IF NOT EXISTS hourly_metrics
(
    project_id         LowCardinality(String),
    hour               DateTime('UTC'),
    event_type         LowCardinality(String),
    model              LowCardinality(String),
    events             SimpleAggregateFunction(sum, UInt64),
    failures           SimpleAggregateFunction(sum, UInt64),  -- status != 'success'
    tokens_input       SimpleAggregateFunction(sum, UInt64),
    tokens_output      SimpleAggregateFunction(sum, UInt64),
    tokens_cache_read  SimpleAggregateFunction(sum, UInt64),
    tokens_cache_write SimpleAggregateFunction(sum, UInt64),
    cost_usd           SimpleAggregateFunction(sum, Decimal(38, 10)),
    latency_sum_ms     SimpleAggregateFunction(sum, UInt64),
    latency_count      SimpleAggregateFunction(sum, UInt64),
    latency_quantiles  AggregateFunction(quantiles(0.5, 0.9, 0.99), Nullable(UInt64)),
    first_seen         SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen          SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, hour, event_type, model)
TTL hour + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS hourly_metrics_mv TO hourly_metrics AS
SELECT
    project_id,
    toStartOfHour(timestamp) AS hour,
    event_type,
    model,
    count() AS events,
    countIf(status != 'success') AS failures,
    sum(tokens_input) AS tokens_input,
    sum(tokens_output) AS tokens_output,
    sum(tokens_cache_read) AS tokens_cache_read,
    sum(tokens_cache_write) AS tokens_cache_write,
    toDecimal128(sum(cost_usd), 10) AS cost_usd,
    sum(ifNull(latency_ms, 0)) AS latency_sum_ms,
    count(latency_ms) AS latency_count,
    quantilesState(0.5, 0.9, 0.99)(latency_ms) AS latency_quantiles,
    min(timestamp) AS first_seen,
    max(timestamp) AS last_seen
FROM events
GROUP BY project_id, hour, event_type, model;

CREATE TABLE IF NOT EXISTS daily_metrics
(
    project_id         LowCardinality(String),
    day                Date,
    event_type         LowCardinality(String),
    model              LowCardinality(String),
    events             SimpleAggregateFunction(sum, UInt64),
    failures           SimpleAggregateFunction(sum, UInt64),
    tokens_input       SimpleAggregateFunction(sum, UInt64),
    tokens_output      SimpleAggregateFunction(sum, UInt64),
    tokens_cache_read  SimpleAggregateFunction(sum, UInt64),
    tokens_cache_write SimpleAggregateFunction(sum, UInt64),
    cost_usd           SimpleAggregateFunction(sum, Decimal(38, 10)),
    latency_sum_ms     SimpleAggregateFunction(sum, UInt64),
    latency_count      SimpleAggregateFunction(sum, UInt64),
    latency_quantiles  AggregateFunction(quantiles(0.5, 0.9, 0.99), Nullable(UInt64)),
    first_seen         SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen          SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project_id, day, event_type, model)
TTL day + INTERVAL 730 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS daily_metrics_mv TO daily_metrics AS
SELECT
    project_id,
    toDate(timestamp) AS day,
    event_type,
    model,
    count() AS events,
    countIf(status != 'success') AS failures,
    sum(tokens_input) AS tokens_input,
    sum(tokens_output) AS tokens_output,
    sum(tokens_cache_read) AS tokens_cache_read,
    sum(tokens_cache_write) AS tokens_cache_write,
    toDecimal128(sum(cost_usd), 10) AS cost_usd,
    sum(ifNull(latency_ms, 0)) AS latency_sum_ms,
    count(latency_ms) AS latency_count,
    quantilesState(0.5, 0.9, 0.99)(latency_ms) AS latency_quantiles,
    min(timestamp) AS first_seen,
    max(timestamp) AS last_seen
FROM events
GROUP BY project_id, day, event_type, model;

-- Per-project overview, from the long-retention daily metrics.
CREATE VIEW IF NOT EXISTS project_summary AS
SELECT
    project_id,
    sum(events) AS total_events,
    sum(failures) AS total_failures,
    sumIf(events, event_type = 'error') AS error_events,
    sum(tokens_input) + sum(tokens_output) AS total_tokens,
    sum(cost_usd) AS total_cost_usd,
    if(sum(latency_count) = 0, NULL, sum(latency_sum_ms) / sum(latency_count)) AS avg_latency_ms,
    groupUniqArrayIf(model, model != '') AS models,
    min(first_seen) AS first_event,
    max(last_seen) AS last_event
FROM daily_metrics
GROUP BY project_id;
