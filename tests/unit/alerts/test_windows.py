"""Budget windows without a broker: window assignment by event time, one alert per crossing per
window, deterministic ids, re-delivery skipped (and its alert re-emitted), retractions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ingestor.alerts.budgets import parse_budgets
from ingestor.alerts.windows import (
    RecentIds,
    Spend,
    WindowTotal,
    alert_id,
    apply_spends,
    change_spends,
    events_spends,
    seed_windows,
    window_start,
)
from ingestor.models import validate_event
from ingestor.rows.records import event_rows
from ingestor.usage.prices import price_table
from ingestor.usage.winners import CountedChange

H = 3_600_000
T0 = int(datetime(2026, 1, 5, 10, tzinfo=UTC).timestamp() * 1000)  # 10:00 UTC


class Store:
    """The Faust table's twin: bytes by key."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def run(self, budgets: str, spends: list[Spend], offset: int, source: str = "t:0") -> list[Any]:
        updates, alerts = apply_spends(
            self.data.get, parse_budgets(budgets), spends, source=source, offset=offset
        )
        self.data.update((k, w.encode()) for k, w in updates.items())
        return alerts


def spend(minute: float, usd: str, **who: str) -> Spend:
    return Spend(T0 + int(minute * 60_000), Decimal(usd), **{"session": "s1", **who})


def test_windows_are_utc_hours_and_days_by_event_time() -> None:
    hour, day = parse_budgets("session:1h:1,session:1d:1")
    assert window_start(T0 + H - 1, hour) == T0
    assert window_start(T0 + H, hour) == T0 + H
    assert window_start(T0 + H, day) == T0 - 10 * H


def test_one_alert_per_crossing_per_window_not_one_per_message() -> None:
    store = Store()
    alerts = []
    # Hour 10: $8 a message crosses $20 at the third; more spend in that hour alerts no more.
    for i in range(6):
        alerts += store.run("session:1h:20", [spend(i, "8")], offset=i)
    # Hour 11: crosses again.
    alerts += store.run("session:1h:20", [spend(60, "15"), spend(61, "15")], offset=6)
    assert [(a["timestamp"], a["actual_usd"]) for a in alerts] == [
        ("2026-01-05T10:02:00.000+00:00", "24"),
        ("2026-01-05T11:01:00.000+00:00", "30"),
    ]
    first, second = alerts
    assert first["event_id"] != second["event_id"]
    assert first["event_id"] == alert_id(parse_budgets("session:1h:20")[0], "s1", T0)
    assert (first["window_start"], first["subject"], first["scope"], first["threshold_usd"]) == (
        "2026-01-05T10:00:00.000+00:00", "s1", "session", "20",
    )  # fmt: skip
    # Exactly at the limit is not above it.
    assert Store().run("session:1h:20", [spend(0, "20")], offset=0) == []


def test_each_subject_and_each_budget_has_its_own_windows() -> None:
    store = Store()
    alerts = store.run(
        "session:1h:10,user:1d:15,project=p:1h:100",
        [spend(0, "11", user="u", project="p"), spend(1, "11", session="s2", user="u")],
        offset=0,
    )
    assert sorted((a["scope"], a["subject"]) for a in alerts) == [
        ("session", "s1"), ("session", "s2"), ("user", "u"),
    ]  # fmt: skip
    assert len({a["event_id"] for a in alerts}) == 3


def test_redelivered_envelopes_are_not_counted_twice_and_re_emit_their_alert() -> None:
    store = Store()
    assert store.run("session:1h:20", [spend(0, "15")], offset=5) == []
    # Re-delivered after a crash (the table kept it): skipped, so no false crossing at $30.
    assert store.run("session:1h:20", [spend(0, "15")], offset=5) == []
    [alert] = store.run("session:1h:20", [spend(1, "6")], offset=6)
    # Re-delivered once more: the alert may not have reached ClickHouse, so it comes again,
    # with the same id and contents (the sink drops a stored id).
    assert store.run("session:1h:20", [spend(1, "6")], offset=6) == [alert]
    # Another partition's envelope at a lower offset is not a re-delivery.
    assert store.run("session:1h:20", [spend(2, "1")], offset=1, source="t:1") == []
    [(_, raw)] = store.data.items()
    window = WindowTotal.decode(raw)
    assert (window.total, window.applied) == (Decimal(22), {"t:0": 6, "t:1": 1})
    assert WindowTotal.decode(window.encode()) == window


def test_a_fresh_table_finds_the_same_alerts_with_the_same_ids() -> None:
    """A replay into an empty table (fresh consumer group, lost state): same ids, so ClickHouse
    keeps one alert per window."""
    stream = [[spend(0, "12")], [spend(30, "12")], [spend(70, "25")]]
    runs = []
    for _ in range(2):
        store = Store()
        runs.append([a for i, s in enumerate(stream) for a in store.run("session:1h:20", s, i)])
    assert runs[0] == runs[1] and len(runs[0]) == 2


def test_a_retraction_lowers_the_total_and_the_window_still_alerts_once() -> None:
    store = Store()
    [alert] = store.run("session:1h:10", [spend(0, "11")], offset=0)
    assert store.run("session:1h:10", [spend(1, "-5")], offset=1) == []
    assert store.run("session:1h:10", [spend(2, "9")], offset=2) == []
    [(_, raw)] = store.data.items()
    assert WindowTotal.decode(raw).total == Decimal(15)
    assert alert["actual_usd"] == "11"


def test_the_alert_is_a_valid_event_with_no_cost_and_its_budget_in_attributes() -> None:
    [alert] = Store().run("user:1d:1", [spend(0, "2", user="u", project="p")], offset=0)
    rows = event_rows(validate_event(alert))["events"]
    [row] = rows
    assert (row["event_type"], row["cost_usd"], row["cost_provided"]) == (
        "cost_threshold_exceeded", Decimal(0), 1,
    )  # fmt: skip
    assert (row["user_id"], row["session_id"], row["project_id"]) == ("u", "s1", "p")
    assert row["attributes"] == {
        "actual_usd": "2", "budget": "user:1d:1", "scope": "user", "subject": "u",
        "threshold_usd": "1", "window": "1d", "window_start": "2026-01-05 00:00:00+00:00",
    }  # fmt: skip
    # An alert is no spend.
    assert events_spends(rows, price_table()) == []


def _row(**extra: Any) -> dict[str, Any]:
    event = {
        "event_type": "prompt_call", "event_id": "e", "project_id": "p", "user_id": "u",
        "session_id": "s", "timestamp": "2026-01-05T10:00:00.001Z",
        "model": "claude-sonnet-4-20250514",
        **extra,
    }  # fmt: skip
    [row] = event_rows(validate_event(event))["events"]
    return row


def test_event_spend_is_the_provided_cost_else_the_priced_tokens() -> None:
    prices = price_table()
    provided = events_spends([_row(cost_usd="0.5", tokens_input=1_000_000)], prices)
    assert provided == [Spend(T0 + 1, Decimal("0.5"), project="p", user="u", session="s")]
    [priced] = events_spends([_row(tokens_input=100_000, tokens_output=100_000)], prices)
    assert priced.cost == Decimal("1.8")  # $3 + $15 per million, below the 200k tier
    assert events_spends([_row(), _row(model="no-such-model", tokens_input=5)], prices) == []


def test_an_event_id_seen_before_is_no_new_spend() -> None:
    """A producer retry the broker had stored arrives again at a new offset: counted once."""
    seen = RecentIds(size=2)
    first = events_spends([_row(cost_usd="1"), _row(cost_usd="1")], price_table(), seen)
    assert len(first) == 1
    assert events_spends([_row(cost_usd="1")], price_table(), seen) == []
    for other in ("x", "y"):  # the memory is bounded: the oldest id goes
        assert len(events_spends([_row(event_id=other, cost_usd="1")], price_table(), seen)) == 1
    assert len(events_spends([_row(cost_usd="1")], price_table(), seen)) == 1


def change(sign: int, file: str, at: int, usd: str) -> CountedChange:
    return CountedChange(sign, "host", file, at, "m", 1, 1, 0, 0, Decimal(usd))


def test_change_spend_is_the_lines_that_start_counting_less_those_that_stop() -> None:
    file = "/h/.claude/projects/proj/s.jsonl"
    agent = "/h/.claude/projects/proj/s/subagents/agent-1.jsonl"
    changes = [
        change(1, file, T0, "2"),
        change(1, file, T0 + 1, "0"),
        change(-1, agent, T0 - 1, "1.5"),
    ]
    assert change_spends(changes) == [
        Spend(T0, Decimal(2), project="proj", session="s"),
        Spend(T0 - 1, Decimal("-1.5"), project="proj", session="s"),  # a subagent's: its session's
    ]


def test_seeded_windows_hold_the_stored_totals_and_a_crossed_one_alerts_no_more() -> None:
    budgets = parse_budgets("session:1h:20")
    stored = [spend(0, "10"), spend(30, "5"), spend(60, "25"), spend(61, "1", session="other")]
    seeds = seed_windows(budgets, stored)
    store = Store()
    store.data.update((k, w.encode()) for k, w in seeds.items())
    windows = {k: WindowTotal.decode(v) for k, v in store.data.items()}
    assert sorted((w.total, w.applied, w.alert is not None) for w in windows.values()) == [
        (Decimal(1), {}, False), (Decimal(15), {}, False), (Decimal(25), {}, True),
    ]  # fmt: skip
    crossed = next(w.alert for w in windows.values() if w.alert is not None)
    assert crossed is not None
    assert crossed["event_id"] == alert_id(budgets[0], "s1", T0 + H)  # the stored alert's id
    # Spend after the restart: the window at $15 crosses, the one already crossed does not.
    [alert] = store.run("session:1h:20", [spend(40, "6"), spend(70, "1")], offset=0)
    assert (alert["window_start"], alert["actual_usd"]) == ("2026-01-05T10:00:00.000+00:00", "21")
