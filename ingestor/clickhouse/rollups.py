"""Fill the events rollups (``hourly_metrics``, ``daily_metrics``, ``user_usage_*``) from what
``events`` stores, one stored batch at a time.

They used to be materialized views on ``events``. ClickHouse writes an insert's own part and its
views' parts one after the other, so a kill -9 or a full disk in between left the views short
for good: the re-delivered events were already in ``events`` and the sink does not insert a
stored event again (it would count twice). Here each step can be done again:

* every event row carries the ``batch_id`` of the insert that stored it (``write_batch``'s
  token), so a batch's events can be read back exactly as they were stored;
* a batch is rolled up by one ``INSERT … SELECT`` per rollup table, each with its own
  ``insert_deduplication_token``: done twice, the second is a no-op (the tables keep a
  deduplication window), so a crash after some of them is mended by doing them all again;
* ``rolled_up_batches`` records a batch once all its rollups are written. A re-delivered event
  that is already stored names its batch: if that batch is not recorded, it is rolled up now
  (``pending``). Events stored before migration 0014 have ``batch_id`` '' and were counted by
  the views.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ingestor.clickhouse.engine import ClickHouse, quote_string

__all__ = ["ROLLED_UP_TABLE", "ROLLUPS", "pending", "roll_up"]

ROLLED_UP_TABLE = "rolled_up_batches"

# What every rollup sums (after its own count of events).
_SUMS = """
    countIf(status != 'success') AS failures,
    sum(tokens_input) AS tokens_input,
    sum(tokens_output) AS tokens_output,
    sum(tokens_cache_read) AS tokens_cache_read,
    sum(tokens_cache_write) AS tokens_cache_write,"""

_METRICS = f"""
    count() AS events,{_SUMS}
    toDecimal128(sum(cost_usd), 10) AS cost_usd,
    sum(ifNull(latency_ms, 0)) AS latency_sum_ms,
    count(latency_ms) AS latency_count,
    quantilesState(0.5, 0.9, 0.99)(latency_ms) AS latency_quantiles,
    min(timestamp) AS first_seen,
    max(timestamp) AS last_seen"""

_USER_USAGE = f"""
    count() AS prompt_calls,{_SUMS}
    tokens_input + tokens_output + tokens_cache_read + tokens_cache_write AS total_tokens,
    toDecimal128(sum(cost_usd), 10) AS cost_usd,
    uniqExactStateIf(session_id, session_id != '') AS sessions,
    groupUniqArrayIf(toString(model), model != '') AS models,
    max(timestamp) AS last_activity"""

_PERIODS = {
    "daily": "toDate(timestamp)",
    "weekly": "toMonday(timestamp)",
    "monthly": "toStartOfMonth(timestamp)",
    "yearly": "toStartOfYear(timestamp)",
}

# Rollup table -> its SELECT over one batch's events ({batch}: the quoted batch id). ORDER BY
# makes the output, hence the insert's blocks and their deduplication ids, the same each time.
ROLLUPS: Mapping[str, str] = {
    "hourly_metrics": (
        f"SELECT project_id, toStartOfHour(timestamp) AS hour, event_type, model,{_METRICS}\n"
        "FROM events WHERE batch_id = {batch}\n"
        "GROUP BY project_id, hour, event_type, model ORDER BY project_id, hour, event_type, model"
    ),
    "daily_metrics": (
        f"SELECT project_id, toDate(timestamp) AS day, event_type, model,{_METRICS}\n"
        "FROM events WHERE batch_id = {batch}\n"
        "GROUP BY project_id, day, event_type, model ORDER BY project_id, day, event_type, model"
    ),
    **{
        f"user_usage_{period}": (
            f"SELECT user_id, {start} AS period_start,{_USER_USAGE}\n"
            "FROM events\n"
            "WHERE batch_id = {batch} AND event_type = 'prompt_call' AND user_id != ''\n"
            "GROUP BY user_id, period_start ORDER BY user_id, period_start"
        )
        for period, start in _PERIODS.items()
    },
}


def roll_up(ch: ClickHouse, batch_id: str) -> None:
    """Write ``batch_id``'s rollups, then record it. Idempotent: see the module docstring."""
    batch = quote_string(batch_id)
    for table, select in ROLLUPS.items():
        token = quote_string(f"{batch_id}:{table}")
        ch.execute(
            f"INSERT INTO {table} SETTINGS insert_deduplication_token = {token}, max_threads = 1 "
            + select.replace("{batch}", batch)
        )
    ch.execute(f"INSERT INTO {ROLLED_UP_TABLE} (batch_id) VALUES ({batch})")


def pending(ch: ClickHouse, batch_ids: Iterable[str]) -> list[str]:
    """The batches among ``batch_ids`` not recorded as rolled up ('' never is: the views were)."""
    wanted = sorted({b for b in batch_ids if b})
    if not wanted:
        return []
    listed = ", ".join(quote_string(b) for b in wanted)
    done = {
        str(r[0])
        for r in ch.query(f"SELECT batch_id FROM {ROLLED_UP_TABLE} WHERE batch_id IN ({listed})")
    }
    return [b for b in wanted if b not in done]
