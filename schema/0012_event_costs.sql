-- Costs for events (issue #10, deliverable 4). cost_provided says whether the producer sent
-- cost_usd (1) or not (0: cost_usd is 0 and the reports price the tokens at query time from
-- ingestor/usage/prices.json, so a price change re-prices history and nothing is frozen at
-- ingest). Rows stored before this column existed count as provided, as they were reported.
ALTER TABLE events ADD COLUMN IF NOT EXISTS cost_provided UInt8 DEFAULT 1 AFTER cost_usd;
