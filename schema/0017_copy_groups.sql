-- The groups usage_copies holds, for point lookups (issue #9): a batch asks which of its groups
-- were stored before it, and decides the others from its own copies alone. A lookup by message
-- id in usage_copies itself reads nearly every granule (the ids are random), so each batch cost
-- grew with the history, and a backfill with its square.
--
-- A key is the first 8 bytes of MD5(dedup_scope || '\0' || message_id), little-endian (the worker
-- computes it in Python: ingestor/clickhouse/winners.py, _group_key); lines without a message id
-- are groups of their own, looked up by their identity in usage_copies. The worker inserts a
-- group's key before its copies, so every group with a stored copy has its key: a key without
-- copies (a crash in between, a hash collision) only sends a group down the lookup path, which
-- reads its copies.
-- EmbeddedRocksDB survives kill -9 (its write-ahead log) as MergeTree parts do. On a cluster each
-- node would hold its own: the worker does not use it there (ingestor/clickhouse/winners.py).
CREATE TABLE IF NOT EXISTS copy_groups
(
    group_hash UInt64
)
ENGINE = EmbeddedRocksDB
PRIMARY KEY group_hash;

INSERT INTO copy_groups
SELECT DISTINCT reinterpretAsUInt64(MD5(concat(dedup_scope, '\0', message_id)))
FROM usage_copies WHERE message_id != '';
