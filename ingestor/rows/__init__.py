"""Rows from records, pure: a transcript line's ``transcript_lines`` row (``records``, and the
fast path without pydantic, ``fast``), event and dead-letter rows; a batch's rows as columns
(``columns``) and as Arrow (``arrow``). ``ingestor.clickhouse`` stores them."""
