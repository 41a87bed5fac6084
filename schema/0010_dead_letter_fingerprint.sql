-- Dead letters keep no text of their input (ingestor.redact): ``raw`` holds only the structure of
-- a JSON object (keys, value types, usage fields), and these columns identify the input instead.
-- ``raw_sha256`` is '' when the input's bytes never reached the worker (a line it found invalid
-- after the watcher had stripped it).
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS raw_sha256 String DEFAULT '' AFTER raw;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS raw_length UInt64 DEFAULT 0 AFTER raw_sha256;
