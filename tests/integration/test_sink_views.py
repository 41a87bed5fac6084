"""Every view and materialized view gives exact, replay-proof numbers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from builders import Wrapped, store_events, store_lines, usage_line, user_line

from ingestor.clickhouse.engine import ClickHouse
from ingestor.clickhouse.positions import file_positions
from ingestor.clickhouse.write import write_batch
from ingestor.errors import InvalidRecord, Location, StorageError
from ingestor.models import validate_event, validate_ledger
from ingestor.rows.records import dead_letter_row, event_rows, ledger_row
from ingestor.wire import TranscriptSource
from ingestor.worker.dlq import DeadLetter

pytestmark = pytest.mark.integration

A = TranscriptSource(
    file="/p/projects/proj/a.jsonl", project="proj", first_ts="2025-01-01T00:00:00Z"
)
B = TranscriptSource(
    file="/p/projects/proj/b.jsonl", project="proj", first_ts="2025-01-02T00:00:00Z"
)


def _dedup_scenario(ch: ClickHouse) -> None:
    store_lines(
        ch,
        A,
        [
            (
                0,
                usage_line(
                    ts="2025-01-01T10:00:00Z", message_id="m1", request_id="r1", inp=10, out=1
                ),
            ),
            (
                100,
                usage_line(
                    ts="2025-01-01T10:00:01Z", message_id="m1", request_id="r1", inp=10, out=50
                ),
            ),
            (200, usage_line(ts="2025-01-01T10:00:02Z", inp=5, out=5)),
            (300, user_line("2025-01-01T10:00:03Z")),
            (
                400,
                usage_line(
                    ts="2025-01-01T10:00:04Z",
                    message_id="m3",
                    request_id="r3",
                    inp=7,
                    out=7,
                    sidechain=True,
                ),
            ),
        ],
        token="a",
    )
    store_lines(
        ch,
        B,
        [
            (
                0,
                usage_line(
                    ts="2025-01-02T10:00:00Z",
                    message_id="m1",
                    request_id="r9",
                    inp=10,
                    out=50,
                    sidechain=True,
                ),
            ),
            (
                100,
                usage_line(
                    ts="2025-01-02T10:00:01Z", message_id="m3", request_id="r3", inp=7, out=7
                ),
            ),
            (
                200,
                usage_line(
                    ts="2025-01-02T10:00:02Z", message_id="m4", request_id="r4", inp=3, out=3
                ),
            ),
            (
                300,
                usage_line(
                    ts="2025-01-02T10:00:03Z", message_id="m4", request_id="r4", inp=3, out=3
                ),
            ),
            (400, usage_line(ts="2025-01-02T10:00:04Z", inp=5, out=5)),
        ],
        token="b",
    )


def _counted(ch: ClickHouse) -> list[tuple[str, int]]:
    rows = ch.query(
        "SELECT source_file, source_offset FROM usage_dedup ORDER BY source_file, source_offset"
    )
    return [(str(f), int(o)) for f, o in rows]


def test_usage_dedup_applies_each_rule(clickhouse: ClickHouse) -> None:
    _dedup_scenario(clickhouse)
    assert _counted(clickhouse) == [
        (A.file, 100),  # streaming copies of m1/r1: the one with the most tokens
        (A.file, 200),  # no message id: always counts
        # A:400 sidechain m3/r3 loses to the non-sidechain copy B:100, though it came first
        (B.file, 0),  # sidechain m1 with another request id at another instant: counts (20.0.24)
        (B.file, 100),
        (B.file, 200),  # m4/r4 tie: the first in order wins
        (B.file, 400),  # no message id, same tokens as A:200: counts too
    ]


def test_identical_lines_reinserted_count_once(clickhouse: ClickHouse) -> None:
    _dedup_scenario(clickhouse)
    _dedup_scenario(clickhouse)  # same tokens: deduplicated inserts
    store_lines(
        clickhouse,
        A,
        [  # a replay under a new token: replaces itself
            (200, usage_line(ts="2025-01-01T10:00:02Z", inp=5, out=5)),
        ],
        token="replay",
    )
    assert len(_counted(clickhouse)) == 6
    total = clickhouse.query("SELECT sum(input_tokens + output_tokens) FROM usage_dedup")
    assert total == [(60 + 10 + 60 + 14 + 6 + 10,)]


def test_sidechain_copies_at_other_instants_count(clickhouse: ClickHouse) -> None:
    store_lines(
        clickhouse,
        A,
        [
            (
                0,
                usage_line(
                    ts="2025-01-01T10:00:00Z",
                    message_id="m5",
                    request_id="r5",
                    inp=1,
                    out=1,
                    sidechain=True,
                ),
            ),
            (
                100,
                usage_line(
                    ts="2025-01-01T10:00:01Z", message_id="m5", request_id="r6", inp=2, out=2
                ),
            ),
            (
                200,
                usage_line(
                    ts="2025-01-01T10:00:02Z",
                    message_id="m5",
                    request_id="r7",
                    inp=3,
                    out=3,
                    sidechain=True,
                ),
            ),
        ],
    )
    assert _counted(clickhouse) == [(A.file, 0), (A.file, 100), (A.file, 200)]


def test_a_sidechain_replay_at_the_same_instant_is_dropped(clickhouse: ClickHouse) -> None:
    at = "2025-01-01T10:00:00Z"
    store_lines(
        clickhouse,
        A,
        [
            (0, usage_line(ts=at, message_id="m6", request_id="r1", inp=1, out=1)),
            (100, usage_line(ts=at, message_id="m6", request_id="r2", inp=9, sidechain=True)),
        ],
    )
    assert _counted(clickhouse) == [(A.file, 0)]


def _dead(file: str, offset: int, generation: int = 0) -> DeadLetter:
    error = InvalidRecord(
        "not valid JSON",
        None,
        Location(topic="t", partition=1, offset=9, file=file, file_offset=offset),
    )
    return DeadLetter.of(
        "transcript", error, "{oops", max_bytes=100, source_generation=generation, source_length=50
    )


def test_line_accounting_and_positions(clickhouse: ClickHouse) -> None:
    _dedup_scenario(clickhouse)
    when = datetime(2025, 1, 3, tzinfo=UTC)
    clickhouse.insert("dead_letters", [dead_letter_row(_dead(A.file, 500), dead_at=when)])
    clickhouse.insert(
        "dead_letters", [dead_letter_row(_dead(A.file, 500), dead_at=when)], token="again"
    )
    rows = clickhouse.query(
        "SELECT source_file, lines_stored, usage_lines, usage_counted, duplicates, "
        "no_usage_lines, dead_letters FROM line_accounting ORDER BY source_file"
    )
    assert rows == [(A.file, 5, 4, 2, 2, 1, 1), (B.file, 5, 5, 4, 1, 0, 0)]
    # The worker writes each batch's positions after its lines (clickhouse/write.py); the
    # furthest wins.
    clickhouse.insert(
        "file_positions",
        [{"source_file": A.file, "source_generation": 0, "end_offset": end} for end in (550, 300)]
        + [{"source_file": B.file, "source_generation": 0, "end_offset": 500}],
    )
    assert file_positions(clickhouse) == {(A.file, 0): 550, (B.file, 0): 500}


# Events and their metrics expire after 90 days (TTL), so these tests live two weeks ago:
# D is a Monday, D1 the Tuesday after.
_TODAY = datetime.now(UTC).date()
D = _TODAY - timedelta(days=_TODAY.weekday() + 14)
D1 = D + timedelta(days=1)


def _at(day: date, hh_mm: str) -> str:
    return f"{day.isoformat()}T{hh_mm}:00Z"


def _hour(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _event(n: int, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": f"e{n}",
        "project_id": "p1",
        "event_type": "prompt_call",
        "timestamp": _at(D, "10:15"),
        "user_id": "u1",
        "session_id": "s1",
        "model": "m",
        "tokens_input": 100,
        "tokens_output": 10,
        "cost_usd": "0.0015",
        "latency_ms": 100 * n,
    }
    return {**base, **extra}


EVENTS = [
    _event(1),
    _event(2, status="error", timestamp=_at(D, "10:45"), session_id="s2"),
    _event(3, timestamp=_at(D, "11:05"), tokens_cache_read=5, latency_ms=None),
    _event(4, user_id="u2", timestamp=_at(D1, "09:00"), cost_usd="0.1"),
    _event(5, event_type="tool_call", tool_name="grep", cost_usd="0"),
    _event(6, event_type="agent_step", step_number=2, step_name="plan", run_id="run1"),
    _event(7, event_type="error", error_type="Boom", status="error", latency_ms=None),
]


def _hourly(ch: ClickHouse) -> list[tuple[Any, ...]]:
    return ch.query(
        "SELECT hour, event_type, sum(events), sum(failures), sum(tokens_input), "
        "sum(tokens_cache_read), sum(cost_usd), sum(latency_sum_ms), sum(latency_count) "
        "FROM hourly_metrics GROUP BY hour, event_type ORDER BY hour, event_type"
    )


HOURLY = [
    (_hour(D, 10), "agent_step", 1, 0, 100, 0, Decimal("0.0015"), 600, 1),
    (_hour(D, 10), "error", 1, 1, 100, 0, Decimal("0.0015"), 0, 0),
    (_hour(D, 10), "prompt_call", 2, 1, 200, 0, Decimal("0.003"), 300, 2),
    (_hour(D, 10), "tool_call", 1, 0, 100, 0, Decimal("0"), 500, 1),
    (_hour(D, 11), "prompt_call", 1, 0, 100, 5, Decimal("0.0015"), 0, 0),
    (_hour(D1, 9), "prompt_call", 1, 0, 100, 0, Decimal("0.1"), 400, 1),
]


def test_event_metrics_are_exact_and_retries_count_once(clickhouse: ClickHouse) -> None:
    store_events(clickhouse, EVENTS, token="batch1")
    store_events(clickhouse, EVENTS, token="batch1")  # a retried flush
    assert _hourly(clickhouse) == HOURLY
    daily = clickhouse.query(
        "SELECT day, sum(events), sum(failures), sum(cost_usd), "
        "quantilesMerge(0.5, 0.9, 0.99)(latency_quantiles) FROM daily_metrics "
        "WHERE event_type = 'prompt_call' GROUP BY day ORDER BY day"
    )
    assert [row[:4] for row in daily] == [
        (D, 3, 1, Decimal("0.0045")),
        (D1, 1, 0, Decimal("0.1")),
    ]
    assert daily[1][4] == [400.0, 400.0, 400.0]
    summary = clickhouse.query(
        "SELECT project_id, total_events, total_failures, error_events, total_tokens, "
        "total_cost_usd FROM project_summary"
    )
    assert summary == [("p1", 7, 2, 1, 770, Decimal("0.1075"))]
    assert clickhouse.query("SELECT tool_name, status FROM tool_calls FINAL") == [
        ("grep", "success")
    ]
    assert clickhouse.query("SELECT run_id, step_number, step_name FROM agent_steps FINAL") == [
        ("run1", 2, "plan")
    ]


def test_distinct_batches_with_equal_aggregates_both_count(clickhouse: ClickHouse) -> None:
    store_events(clickhouse, [_event(1)], token="one")
    store_events(clickhouse, [_event(2)], token="two")  # same metrics, another event
    assert clickhouse.query("SELECT sum(events) FROM hourly_metrics") == [(2,)]


class _DiesBefore(Wrapped):
    """The real engine, until a statement starting with ``prefix`` runs: then it raises, as if
    the worker died (kill -9, full disk) between two of a batch's inserts."""

    def __init__(self, real: ClickHouse, prefix: str) -> None:
        super().__init__(real)
        self._prefix = prefix

    def execute(self, sql: str) -> None:
        if sql.startswith(self._prefix):
            raise StorageError(f"killed before {self._prefix}")
        super().execute(sql)

    def insert(
        self, table: str, rows: Sequence[Mapping[str, Any]], *, token: str | None = None
    ) -> None:
        if f"INSERT INTO {table}".startswith(self._prefix):
            raise StorageError(f"killed before {self._prefix}")
        super().insert(table, rows, token=token)


def _user_daily(ch: ClickHouse) -> list[tuple[Any, ...]]:
    return ch.query(
        "SELECT user_id, period_start, sum(prompt_calls), sum(cost_usd), "
        "uniqExactMerge(sessions) FROM user_usage_daily "
        "GROUP BY user_id, period_start ORDER BY user_id, period_start"
    )


@pytest.mark.parametrize(
    "dies_before",
    ["INSERT INTO hourly_metrics", "INSERT INTO daily_metrics", "INSERT INTO rolled_up_batches"],
)
def test_a_crash_between_events_and_their_rollups_is_mended_by_the_redelivery(
    clickhouse: ClickHouse, dies_before: str
) -> None:
    """Issue #11's view shortfall: the events are stored, some rollups are not, and the
    re-delivered events are not inserted again. Their batch is rolled up from what is stored,
    and a rollup written before the crash is not written twice."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for raw in EVENTS:
        for table, new in event_rows(validate_event(raw)).items():
            rows.setdefault(table, []).extend(new)
    with pytest.raises(StorageError):
        write_batch(_DiesBefore(clickhouse, dies_before), rows, token="run1:1", retries=0,
                    backoff_s=0)  # fmt: skip
    assert clickhouse.query("SELECT count() FROM events") == [(len(EVENTS),)]
    assert clickhouse.query("SELECT count() FROM rolled_up_batches") == [(0,)]
    redelivered = {"events": rows["events"][:2]}  # Kafka re-sends from the last commit
    write_batch(clickhouse, redelivered, token="run2:1", retries=0, backoff_s=0)
    assert _hourly(clickhouse) == HOURLY
    expected_daily = [("u1", D, 3, Decimal("0.0045"), 2), ("u2", D1, 1, Decimal("0.1"), 1)]
    assert _user_daily(clickhouse) == expected_daily
    store_events(clickhouse, EVENTS, token="replay:1")  # a replay of all of it: nothing new
    assert _hourly(clickhouse) == HOURLY
    assert _user_daily(clickhouse) == expected_daily
    assert clickhouse.query("SELECT count() FROM events") == [(len(EVENTS),)]


def test_user_usage_by_period(clickhouse: ClickHouse) -> None:
    store_events(clickhouse, EVENTS, token="batch1")
    store_events(clickhouse, EVENTS, token="batch1")
    periods: dict[str, Callable[[date], date]] = {
        "user_usage_daily": lambda d: d,
        "user_usage_weekly": lambda d: d - timedelta(days=d.weekday()),
        "user_usage_monthly": lambda d: d.replace(day=1),
        "user_usage_yearly": lambda d: d.replace(month=1, day=1),
    }
    for table, period in periods.items():
        rows = clickhouse.query(
            f"SELECT user_id, period_start, sum(prompt_calls), sum(failures), sum(tokens_input), "
            f"sum(total_tokens), sum(cost_usd), uniqExactMerge(sessions) FROM {table} "
            "GROUP BY user_id, period_start ORDER BY user_id, period_start"
        )
        assert rows == [
            ("u1", period(D), 3, 1, 300, 335, Decimal("0.0045"), 2),
            ("u2", period(D1), 1, 0, 100, 110, Decimal("0.1"), 1),
        ], table


def test_ledger_kpis(clickhouse: ClickHouse) -> None:
    def entry(
        n: int,
        cost: str,
        margin: str,
        status: str = "success",
        day: int = 1,
        provider: str = "anthropic",
    ) -> dict[str, Any]:
        return ledger_row(
            validate_ledger(
                {
                    "request_id": f"r{n}",
                    "user_id": "u1",
                    "provider_id": provider,
                    "model_id": "m1",
                    "created_at": f"2025-02-0{day}T12:00:00Z",
                    "vendor_cost": cost,
                    "credits_deducted": 10,
                    "margin_multiplier": "1.50",
                    "gross_margin_usd": margin,
                    "status": status,
                    "input_tokens": 5,
                    "output_tokens": 6,
                }
            )
        )

    rows = [
        entry(1, "0.00005", "0.000025"),
        entry(2, "0.02", "0.01", day=2),
        entry(3, "0.5", "0.25", provider="openai", day=2),
        entry(4, "9", "1", status="failed"),
    ]
    clickhouse.insert("token_usage_ledger", rows, token="l1")
    clickhouse.insert("token_usage_ledger", rows[:1], token="l2")  # replayed request
    kpi = clickhouse.query(
        "SELECT requests, vendor_cost_usd, gross_margin_usd, revenue_usd, "
        "credits_deducted FROM ledger_gross_margin"
    )
    assert kpi == [(3, Decimal("0.52005"), Decimal("0.260025"), Decimal("0.780075"), 30)]
    providers = clickhouse.query(
        "SELECT provider_id, requests, vendor_cost_usd FROM ledger_provider_costs"
    )
    assert providers == [("openai", 1, Decimal("0.5")), ("anthropic", 2, Decimal("0.02005"))]
    trend = clickhouse.query("SELECT day, requests, gross_margin_usd FROM ledger_margin_trend")
    assert trend == [
        (date(2025, 2, 1), 1, Decimal("0.000025")),
        (date(2025, 2, 2), 2, Decimal("0.26")),
    ]
    buckets = clickhouse.query("SELECT bucket_usd, requests FROM ledger_cost_distribution")
    assert buckets == [(Decimal("0"), 1), (Decimal("0.01"), 1), (Decimal("0.1"), 1)]


def test_session_summaries_and_views(clickhouse: ClickHouse) -> None:
    def summary(version: int, tokens: int) -> dict[str, Any]:
        return {
            "session_id": "s1",
            "project": "proj",
            "input_tokens": tokens,
            "output_tokens": 0,
            "cache_creation_tokens": 0,
            "cache_read_tokens": 0,
            "total_tokens": tokens,
            "messages": version,
            "cost_usd": Decimal("0.5"),
            "models": {"claude-sonnet-4-5": tokens},
            "tool_uses": {"Bash": 2, "Read": 1},
            "message_types": {"assistant": version},
            "version": version,
            "first_activity": datetime(2025, 1, 1, 10, tzinfo=UTC),
            "last_activity": datetime(2025, 1, 1, 11, tzinfo=UTC),
        }

    clickhouse.insert("session_summaries", [summary(2, 200)], token="v2")
    clickhouse.insert("session_summaries", [summary(1, 100)], token="v1")  # late, older
    assert clickhouse.query(
        "SELECT session_id, total_tokens, duration_s FROM session_token_summary"
    ) == [("s1", 200, 3600)]
    assert clickhouse.query("SELECT date, sessions, tokens FROM token_trends") == [
        (date(2025, 1, 1), 1, 200)
    ]
    assert clickhouse.query(
        "SELECT category, name, sessions, amount FROM content_category_analysis"
    ) == [
        ("message_type", "assistant", 1, 2),
        ("model", "claude-sonnet-4-5", 1, 200),
        ("tool", "Bash", 1, 2),
        ("tool", "Read", 1, 1),
    ]

    _dedup_scenario(clickhouse)
    details = clickhouse.query(
        "SELECT session_id, source_file, usage_lines, total_tokens "
        "FROM session_file_details ORDER BY source_file"
    )
    assert details == [("a", A.file, 2, 70), ("b", B.file, 4, 90)]  # ccusage: a session is a file
