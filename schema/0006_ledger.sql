-- The billing ledger (seed 004, adapted): one row per billed request, replaced by request_id.
-- Money is Decimal end to end. KPI views read FINAL and count successful requests only.
CREATE TABLE IF NOT EXISTS token_usage_ledger
(
    request_id        String,
    user_id           String,
    provider_id       LowCardinality(String),
    model_id          LowCardinality(String),
    created_at        DateTime64(3, 'UTC'),
    vendor_cost       Decimal(18, 8),  -- paid to the provider, USD
    credits_deducted  UInt64,
    margin_multiplier Decimal(6, 2),
    gross_margin_usd  Decimal(18, 8),  -- revenue - vendor cost; negative for a loss
    status            Enum8('success' = 1, 'failed' = 2, 'cancelled' = 3),
    input_tokens      UInt64,
    output_tokens     UInt64,
    ingested_at       DateTime64(3, 'UTC') DEFAULT now64(3),

    INDEX idx_created_at created_at TYPE minmax GRANULARITY 1,
    INDEX idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_status status TYPE set(3) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(created_at)
ORDER BY request_id
SETTINGS non_replicated_deduplication_window = 1000;

-- Gross margin KPI over all successful requests (filter created_at on the table for a range).
CREATE VIEW IF NOT EXISTS ledger_gross_margin AS
SELECT
    count() AS requests,
    sum(vendor_cost) AS vendor_cost_usd,
    sum(gross_margin_usd) AS gross_margin_usd,
    vendor_cost_usd + gross_margin_usd AS revenue_usd,
    if(revenue_usd = 0, NULL, toFloat64(gross_margin_usd) / toFloat64(revenue_usd)) AS margin_ratio,
    sum(credits_deducted) AS credits_deducted,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens
FROM token_usage_ledger FINAL
WHERE status = 'success';

CREATE VIEW IF NOT EXISTS ledger_provider_costs AS
SELECT
    provider_id,
    model_id,
    count() AS requests,
    sum(vendor_cost) AS vendor_cost_usd,
    sum(gross_margin_usd) AS gross_margin_usd,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens
FROM token_usage_ledger FINAL
WHERE status = 'success'
GROUP BY provider_id, model_id
ORDER BY vendor_cost_usd DESC, provider_id, model_id;

CREATE VIEW IF NOT EXISTS ledger_margin_trend AS
SELECT
    toDate(created_at) AS day,
    count() AS requests,
    sum(vendor_cost) AS vendor_cost_usd,
    sum(gross_margin_usd) AS gross_margin_usd,
    vendor_cost_usd + gross_margin_usd AS revenue_usd,
    if(revenue_usd = 0, NULL, toFloat64(gross_margin_usd) / toFloat64(revenue_usd)) AS margin_ratio,
    sum(credits_deducted) AS credits_deducted
FROM token_usage_ledger FINAL
WHERE status = 'success'
GROUP BY day
ORDER BY day;

-- Requests by vendor cost per request, in decade buckets; bucket = the lower bound in USD.
CREATE VIEW IF NOT EXISTS ledger_cost_distribution AS
SELECT
    multiIf(
        vendor_cost < toDecimal64('0.0001', 8), toDecimal64('0', 8),
        vendor_cost < toDecimal64('0.001', 8), toDecimal64('0.0001', 8),
        vendor_cost < toDecimal64('0.01', 8), toDecimal64('0.001', 8),
        vendor_cost < toDecimal64('0.1', 8), toDecimal64('0.01', 8),
        vendor_cost < toDecimal64('1', 8), toDecimal64('0.1', 8),
        toDecimal64('1', 8)
    ) AS bucket_usd,
    count() AS requests,
    sum(vendor_cost) AS vendor_cost_usd
FROM token_usage_ledger FINAL
WHERE status = 'success'
GROUP BY bucket_usd
ORDER BY bucket_usd;
