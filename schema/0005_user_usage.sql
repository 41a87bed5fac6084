-- Per-user LLM usage by day, week, month and year (seed 002, adapted): prompt_call events with a
-- user_id, aggregated as they arrive. Retention tiers: daily 90 days, weekly 1 year, monthly
-- 24 months, yearly forever. Read sums with sum(), sessions with uniqExactMerge(sessions).

CREATE TABLE IF NOT EXISTS user_usage_daily
(
    user_id            String,
    period_start       Date,
    prompt_calls       SimpleAggregateFunction(sum, UInt64),
    failures           SimpleAggregateFunction(sum, UInt64),
    tokens_input       SimpleAggregateFunction(sum, UInt64),
    tokens_output      SimpleAggregateFunction(sum, UInt64),
    tokens_cache_read  SimpleAggregateFunction(sum, UInt64),
    tokens_cache_write SimpleAggregateFunction(sum, UInt64),
    total_tokens       SimpleAggregateFunction(sum, UInt64),
    cost_usd           SimpleAggregateFunction(sum, Decimal(38, 10)),
    sessions           AggregateFunction(uniqExact, String),
    models             SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    last_activity      SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(period_start)
ORDER BY (user_id, period_start)
TTL period_start + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS user_usage_daily_mv TO user_usage_daily AS
SELECT
    user_id,
    toDate(timestamp) AS period_start,
    count() AS prompt_calls,
    countIf(status != 'success') AS failures,
    sum(tokens_input) AS tokens_input,
    sum(tokens_output) AS tokens_output,
    sum(tokens_cache_read) AS tokens_cache_read,
    sum(tokens_cache_write) AS tokens_cache_write,
    tokens_input + tokens_output + tokens_cache_read + tokens_cache_write AS total_tokens,  -- the sums above
    toDecimal128(sum(cost_usd), 10) AS cost_usd,
    uniqExactStateIf(session_id, session_id != '') AS sessions,
    groupUniqArrayIf(toString(model), model != '') AS models,
    max(timestamp) AS last_activity
FROM events
WHERE event_type = 'prompt_call' AND user_id != ''
GROUP BY user_id, period_start;

CREATE TABLE IF NOT EXISTS user_usage_weekly
(
    user_id            String,
    period_start       Date,
    prompt_calls       SimpleAggregateFunction(sum, UInt64),
    failures           SimpleAggregateFunction(sum, UInt64),
    tokens_input       SimpleAggregateFunction(sum, UInt64),
    tokens_output      SimpleAggregateFunction(sum, UInt64),
    tokens_cache_read  SimpleAggregateFunction(sum, UInt64),
    tokens_cache_write SimpleAggregateFunction(sum, UInt64),
    total_tokens       SimpleAggregateFunction(sum, UInt64),
    cost_usd           SimpleAggregateFunction(sum, Decimal(38, 10)),
    sessions           AggregateFunction(uniqExact, String),
    models             SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    last_activity      SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(period_start)
ORDER BY (user_id, period_start)
TTL period_start + INTERVAL 1 YEAR
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS user_usage_weekly_mv TO user_usage_weekly AS
SELECT
    user_id,
    toMonday(timestamp) AS period_start,
    count() AS prompt_calls,
    countIf(status != 'success') AS failures,
    sum(tokens_input) AS tokens_input,
    sum(tokens_output) AS tokens_output,
    sum(tokens_cache_read) AS tokens_cache_read,
    sum(tokens_cache_write) AS tokens_cache_write,
    tokens_input + tokens_output + tokens_cache_read + tokens_cache_write AS total_tokens,  -- the sums above
    toDecimal128(sum(cost_usd), 10) AS cost_usd,
    uniqExactStateIf(session_id, session_id != '') AS sessions,
    groupUniqArrayIf(toString(model), model != '') AS models,
    max(timestamp) AS last_activity
FROM events
WHERE event_type = 'prompt_call' AND user_id != ''
GROUP BY user_id, period_start;

CREATE TABLE IF NOT EXISTS user_usage_monthly
(
    user_id            String,
    period_start       Date,
    prompt_calls       SimpleAggregateFunction(sum, UInt64),
    failures           SimpleAggregateFunction(sum, UInt64),
    tokens_input       SimpleAggregateFunction(sum, UInt64),
    tokens_output      SimpleAggregateFunction(sum, UInt64),
    tokens_cache_read  SimpleAggregateFunction(sum, UInt64),
    tokens_cache_write SimpleAggregateFunction(sum, UInt64),
    total_tokens       SimpleAggregateFunction(sum, UInt64),
    cost_usd           SimpleAggregateFunction(sum, Decimal(38, 10)),
    sessions           AggregateFunction(uniqExact, String),
    models             SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    last_activity      SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(period_start)
ORDER BY (user_id, period_start)
TTL period_start + INTERVAL 24 MONTH
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS user_usage_monthly_mv TO user_usage_monthly AS
SELECT
    user_id,
    toStartOfMonth(timestamp) AS period_start,
    count() AS prompt_calls,
    countIf(status != 'success') AS failures,
    sum(tokens_input) AS tokens_input,
    sum(tokens_output) AS tokens_output,
    sum(tokens_cache_read) AS tokens_cache_read,
    sum(tokens_cache_write) AS tokens_cache_write,
    tokens_input + tokens_output + tokens_cache_read + tokens_cache_write AS total_tokens,  -- the sums above
    toDecimal128(sum(cost_usd), 10) AS cost_usd,
    uniqExactStateIf(session_id, session_id != '') AS sessions,
    groupUniqArrayIf(toString(model), model != '') AS models,
    max(timestamp) AS last_activity
FROM events
WHERE event_type = 'prompt_call' AND user_id != ''
GROUP BY user_id, period_start;

CREATE TABLE IF NOT EXISTS user_usage_yearly
(
    user_id            String,
    period_start       Date,
    prompt_calls       SimpleAggregateFunction(sum, UInt64),
    failures           SimpleAggregateFunction(sum, UInt64),
    tokens_input       SimpleAggregateFunction(sum, UInt64),
    tokens_output      SimpleAggregateFunction(sum, UInt64),
    tokens_cache_read  SimpleAggregateFunction(sum, UInt64),
    tokens_cache_write SimpleAggregateFunction(sum, UInt64),
    total_tokens       SimpleAggregateFunction(sum, UInt64),
    cost_usd           SimpleAggregateFunction(sum, Decimal(38, 10)),
    sessions           AggregateFunction(uniqExact, String),
    models             SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    last_activity      SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (user_id, period_start)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS user_usage_yearly_mv TO user_usage_yearly AS
SELECT
    user_id,
    toStartOfYear(timestamp) AS period_start,
    count() AS prompt_calls,
    countIf(status != 'success') AS failures,
    sum(tokens_input) AS tokens_input,
    sum(tokens_output) AS tokens_output,
    sum(tokens_cache_read) AS tokens_cache_read,
    sum(tokens_cache_write) AS tokens_cache_write,
    tokens_input + tokens_output + tokens_cache_read + tokens_cache_write AS total_tokens,  -- the sums above
    toDecimal128(sum(cost_usd), 10) AS cost_usd,
    uniqExactStateIf(session_id, session_id != '') AS sessions,
    groupUniqArrayIf(toString(model), model != '') AS models,
    max(timestamp) AS last_activity
FROM events
WHERE event_type = 'prompt_call' AND user_id != ''
GROUP BY user_id, period_start;
