-- Session summaries (seed 000, adapted): one row per session, written by the worker from its live
-- session table. The version column makes the newest summary win; read with FINAL.
CREATE TABLE IF NOT EXISTS session_summaries
(
    session_id            String,
    project               LowCardinality(String),
    input_tokens          UInt64,
    output_tokens         UInt64,
    cache_creation_tokens UInt64,
    cache_read_tokens     UInt64,
    total_tokens          UInt64,
    messages              UInt64,
    cost_usd              Decimal(20, 10),
    models                Map(String, UInt64),  -- tokens per model
    tool_uses             Map(String, UInt64),  -- calls per tool name
    message_types         Map(String, UInt64),  -- lines per line type
    first_activity        DateTime64(3, 'UTC'),
    last_activity         DateTime64(3, 'UTC'),
    version               UInt64,  -- the last applied source position; higher wins
    updated_at            DateTime64(3, 'UTC') DEFAULT now64(3),

    INDEX idx_last_activity last_activity TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(version)
ORDER BY session_id
SETTINGS non_replicated_deduplication_window = 1000;

-- Per (session, file) totals of counted usage lines (seed 000's detail table, derived instead of
-- stored so it can never disagree with usage_dedup).
CREATE VIEW IF NOT EXISTS session_file_details AS
SELECT
    session_id,
    source_file,
    any(project) AS project,
    count() AS usage_lines,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_creation_tokens) AS cache_creation_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens AS total_tokens,
    sum(cost_usd) AS cost_usd,
    sum(length(tool_uses)) AS tool_uses,
    groupUniqArray(model) AS models,
    min(timestamp) AS first_activity,
    max(timestamp) AS last_activity
FROM usage_dedup
GROUP BY session_id, source_file;

-- One row per ingest run (watcher backfill, worker lifetime); re-written as the run progresses.
CREATE TABLE IF NOT EXISTS ingest_runs
(
    run_id         String,
    started_at     DateTime64(3, 'UTC'),
    finished_at    Nullable(DateTime64(3, 'UTC')),
    host           String,
    version        LowCardinality(String),  -- ingestor version
    mode           LowCardinality(String),  -- e.g. 'backfill', 'follow', 'worker'
    status         LowCardinality(String),  -- 'running' | 'ok' | 'failed'
    files_scanned  UInt64,
    lines_read     UInt64,
    records_stored UInt64,
    dead_letters   UInt64,
    error          String,
    updated_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY run_id
TTL toDateTime(started_at) + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE VIEW IF NOT EXISTS session_token_summary AS
SELECT
    session_id,
    project,
    total_tokens,
    input_tokens,
    output_tokens,
    cache_creation_tokens,
    cache_read_tokens,
    messages,
    cost_usd,
    length(models) AS model_count,
    first_activity,
    last_activity,
    dateDiff('second', first_activity, last_activity) AS duration_s
FROM session_summaries FINAL
ORDER BY last_activity DESC;

CREATE VIEW IF NOT EXISTS token_trends AS
SELECT
    toDate(last_activity) AS date,
    count() AS sessions,
    sum(total_tokens) AS tokens,
    sum(cost_usd) AS cost_usd,
    sum(messages) AS messages,
    avg(total_tokens) AS avg_tokens_per_session,
    max(total_tokens) AS max_session_tokens
FROM session_summaries FINAL
GROUP BY date
ORDER BY date DESC;

-- Usage by content category across sessions: models (tokens), tools (calls), line types (lines).
CREATE VIEW IF NOT EXISTS content_category_analysis AS
SELECT category, name, count() AS sessions, sum(amount) AS amount
FROM
(
    SELECT 'model' AS category, kv.1 AS name, kv.2 AS amount
    FROM session_summaries FINAL ARRAY JOIN CAST(models, 'Array(Tuple(String, UInt64))') AS kv
    UNION ALL
    SELECT 'tool', kv.1, kv.2
    FROM session_summaries FINAL ARRAY JOIN CAST(tool_uses, 'Array(Tuple(String, UInt64))') AS kv
    UNION ALL
    SELECT 'message_type', kv.1, kv.2
    FROM session_summaries FINAL ARRAY JOIN CAST(message_types, 'Array(Tuple(String, UInt64))') AS kv
)
GROUP BY category, name
ORDER BY category, amount DESC, name;
