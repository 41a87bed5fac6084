-- Transcript lines and dead letters: the facts everything else is derived from.
--
-- Every stored JSONL line is one row, usage or not, keyed by its identity in the source file, so
-- a replayed or retried line replaces itself (ReplacingMergeTree; read with FINAL). The ccusage
-- dedup rule is applied at query time (usage_dedup, 0002), never at write time, so the result
-- does not depend on arrival order.

CREATE TABLE IF NOT EXISTS transcript_lines
(
    source_file           String,
    source_generation     UInt32,
    source_offset         UInt64,
    source_length         UInt32,
    -- ccusage processes files in order of their earliest timestamp; unknown sorts last.
    file_first_ts         DateTime64(3, 'UTC'),
    project               LowCardinality(String),
    dedup_scope           LowCardinality(String),  -- duplicates are resolved within a scope
    session_id            String,
    line_type             LowCardinality(String),
    uuid                  String,
    parent_uuid           String,
    request_id            String,
    message_id            String,  -- '' = the line has no message.id (never deduplicated)
    timestamp             DateTime64(3, 'UTC'),  -- 1970-01-01 when the line has none
    is_sidechain          UInt8,
    is_api_error          UInt8,
    model                 LowCardinality(String),
    has_usage             UInt8,
    input_tokens          UInt64,
    output_tokens         UInt64,
    cache_creation_tokens UInt64,  -- ephemeral 5m + 1h when split, else cache_creation_input_tokens
    cache_read_tokens     UInt64,
    cache_creation_5m     UInt64,
    cache_creation_1h     UInt64,
    service_tier          LowCardinality(String),
    cost_usd              Decimal(20, 10),
    tool_uses             Array(LowCardinality(String)),
    cwd                   String,
    version               LowCardinality(String),
    ingested_at           DateTime64(3, 'UTC') DEFAULT now64(3),

    INDEX idx_session session_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_message message_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (source_file, source_generation, source_offset)
SETTINGS non_replicated_deduplication_window = 1000;

-- Input that could not be stored, with where it came from. Transcript dead letters are keyed by
-- their file location (Kafka coordinates are zeroed: they change when a line is re-sent), other
-- kinds by their Kafka coordinates.
CREATE TABLE IF NOT EXISTS dead_letters
(
    kind              LowCardinality(String),  -- 'transcript' | 'event' | 'ledger'
    topic             LowCardinality(String),
    partition         UInt32,
    offset            UInt64,
    idx               UInt32,  -- record index inside the envelope
    source_file       String,
    source_generation UInt32,
    source_offset     UInt64,
    source_length     UInt32,
    reason            String,
    field             String,
    raw               String,
    dead_at           DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (kind, source_file, source_generation, source_offset, topic, partition, offset, idx)
SETTINGS non_replicated_deduplication_window = 1000;
