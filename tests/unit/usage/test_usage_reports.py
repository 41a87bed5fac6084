"""daily/weekly/monthly/session on hand-made entries, with expectations worked out by hand.

(Named ``test_usage_reports`` because ``tests/integration/test_reports.py`` takes the plain name.)
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from usage_helpers import HAIKU, OPUS, SONNET, e, ms

from ingestor.usage import reports


def labels(report: dict[str, object], key: str, label: str) -> list[str]:
    rows = report[key]
    assert isinstance(rows, list)
    return [row[label] for row in rows]


# --- daily ------------------------------------------------------------------------------------


def test_daily_dates_are_days_in_the_zone() -> None:
    entries = [e("2025-09-08T03:00:00.000Z"), e("2025-09-08T05:00:00.000Z")]
    assert labels(reports.daily(entries, tz="UTC"), "daily", "date") == ["2025-09-08"]
    assert labels(reports.daily(entries, tz="America/New_York"), "daily", "date") == [
        "2025-09-07",
        "2025-09-08",
    ]


def test_daily_row_counts_models_and_breakdowns() -> None:
    entries = [
        e("2025-09-08T01:00:00Z", HAIKU, (1, 2, 3, 4), "0.25"),
        e("2025-09-08T02:00:00Z", None, (100, 0, 0, 0), "5"),  # synthetic: totals only
        e("2025-09-08T03:00:00Z", SONNET, (10, 20, 30, 40), "0.25"),
        e("2025-09-08T04:00:00Z", OPUS, (1, 1, 1, 1), "2"),
        e("2025-09-08T05:00:00Z", HAIKU, (1, 0, 0, 0), "0.5"),
    ]
    (row,) = reports.daily(entries, tz="UTC")["daily"]
    assert row["inputTokens"] == 113
    assert row["totalTokens"] == 113 + 23 + 34 + 45
    assert row["totalCost"] == Decimal("8.00")
    assert row["modelsUsed"] == [HAIKU, SONNET, OPUS]  # first seen
    # By cost, descending: opus 2, haiku 0.75, sonnet 0.25.
    assert [b["modelName"] for b in row["modelBreakdowns"]] == [OPUS, HAIKU, SONNET]
    assert row["modelBreakdowns"][1] == {
        "modelName": HAIKU,
        "inputTokens": 2,
        "outputTokens": 2,
        "cacheCreationTokens": 3,
        "cacheReadTokens": 4,
        "cost": Decimal("0.75"),
    }
    assert "project" not in row


def test_equal_costs_keep_first_seen_order() -> None:
    entries = [e("2025-09-08T01:00:00Z", HAIKU), e("2025-09-08T02:00:00Z", SONNET)]
    (row,) = reports.daily(entries, tz="UTC")["daily"]
    assert [b["modelName"] for b in row["modelBreakdowns"]] == [HAIKU, SONNET]


def test_since_until_are_inclusive_and_take_dashes() -> None:
    entries = [e(f"2025-09-{d:02d}T12:00:00Z") for d in (7, 8, 9, 10, 11)]
    report = reports.daily(entries, tz="UTC", since="2025-09-08", until="20250910")
    assert labels(report, "daily", "date") == ["2025-09-08", "2025-09-09", "2025-09-10"]
    assert report["totals"]["totalCost"] == Decimal(3)
    desc = reports.daily(entries, tz="UTC", order="desc", until="20250908")
    assert labels(desc, "daily", "date") == ["2025-09-08", "2025-09-07"]


def test_instances_nest_rows_under_projects() -> None:
    entries = [
        e("2025-09-09T12:00:00Z", project="b"),
        e("2025-09-08T12:00:00Z", project="b"),
        e("2025-09-08T13:00:00Z", project="a", cost="2"),
    ]
    report = reports.daily(entries, tz="UTC", instances=True, order="desc")
    assert list(report) == ["projects", "totals"]
    assert list(report["projects"]) == ["a", "b"]
    assert [r["date"] for r in report["projects"]["b"]] == ["2025-09-09", "2025-09-08"]
    assert report["projects"]["a"][0]["project"] == "a"
    assert report["totals"]["totalCost"] == Decimal(4)
    # Nothing left: the plain shape, as ccusage prints it.
    empty = reports.daily(entries, tz="UTC", instances=True, since="20300101")
    assert empty == {"daily": [], "totals": reports.daily([], tz="UTC")["totals"]}


def test_project_filter_keeps_one_project_and_labels_rows() -> None:
    entries = [e("2025-09-08T12:00:00Z", project="a"), e("2025-09-08T13:00:00Z", project="b")]
    (row,) = reports.daily(entries, tz="UTC", project="b")["daily"]
    assert row["project"] == "b"
    assert row["inputTokens"] == 10


# --- weekly / monthly -------------------------------------------------------------------------


def test_weeks_start_on_the_chosen_day() -> None:
    # 2025-09-07 is a Sunday, 2025-09-08 a Monday.
    entries = [e("2025-09-06T12:00:00Z"), e("2025-09-07T12:00:00Z"), e("2025-09-08T12:00:00Z")]
    sunday = reports.weekly(entries, tz="UTC")
    assert [(r["week"], r["inputTokens"]) for r in sunday["weekly"]] == [
        ("2025-08-31", 10),
        ("2025-09-07", 20),
    ]
    monday = reports.weekly(entries, tz="UTC", start_of_week="monday")
    assert [(r["week"], r["inputTokens"]) for r in monday["weekly"]] == [
        ("2025-09-01", 20),
        ("2025-09-08", 10),
    ]


def test_since_cuts_days_out_of_a_week_that_keeps_its_label() -> None:
    entries = [e(f"2025-09-{d:02d}T12:00:00Z") for d in (7, 8, 9)]
    (row,) = reports.weekly(entries, tz="UTC", since="20250909")["weekly"]
    assert (row["week"], row["inputTokens"]) == ("2025-09-07", 10)


def test_bucket_models_follow_the_day_order() -> None:
    entries = [e("2025-09-08T12:00:00Z", HAIKU), e("2025-09-09T12:00:00Z", SONNET)]
    asc = reports.weekly(entries, tz="UTC")["weekly"][0]
    desc = reports.weekly(entries, tz="UTC", order="desc")["weekly"][0]
    assert asc["modelsUsed"] == [HAIKU, SONNET]
    assert desc["modelsUsed"] == [SONNET, HAIKU]
    # Breakdowns too: equal costs, first seen in (day order) x (each day's cost order).
    assert [b["modelName"] for b in desc["modelBreakdowns"]] == [SONNET, HAIKU]


def test_monthly_labels_and_order() -> None:
    entries = [e("2025-09-30T23:30:00Z"), e("2025-10-01T00:30:00Z", cost="3")]
    utc = reports.monthly(entries, tz="UTC", order="desc")
    assert [(r["month"], r["totalCost"]) for r in utc["monthly"]] == [
        ("2025-10", Decimal(3)),
        ("2025-09", Decimal(1)),
    ]
    ny = reports.monthly(entries, tz="America/New_York")
    assert [(r["month"], r["totalCost"]) for r in ny["monthly"]] == [("2025-09", Decimal(4))]


# --- --last ---------------------------------------------------------------------------------


NOW = ms("2025-09-10T15:00:00Z")  # a Wednesday


@pytest.mark.parametrize(
    ("kind", "kwargs", "expected"),
    [
        ("daily", {"last": 1}, ["2025-09-10", "2025-09-20"]),  # later rows stay: no until
        ("daily", {"last": 4}, ["2025-09-07", "2025-09-10", "2025-09-20"]),
        ("weekly", {"last": 1}, ["2025-09-07", "2025-09-14"]),
        (
            "weekly",
            {"last": 2, "start_of_week": "monday"},
            ["2025-09-01", "2025-09-08", "2025-09-15"],
        ),
        ("monthly", {"last": 1}, ["2025-09"]),
        ("monthly", {"last": 2}, ["2025-08", "2025-09"]),
    ],
)
def test_last_counts_periods_back_from_now(
    kind: str, kwargs: dict[str, object], expected: list[str]
) -> None:
    days = ("2025-07-31", "2025-08-03", "2025-09-02", "2025-09-07", "2025-09-10", "2025-09-20")
    entries = [e(f"{d}T12:00:00Z") for d in days]
    report = getattr(reports, kind)(entries, tz="UTC", now_ms=NOW, **kwargs)
    label = {"daily": "date", "weekly": "week", "monthly": "month"}[kind]
    assert labels(report, kind, label) == expected


def test_last_is_exclusive_of_since_until_and_positive() -> None:
    with pytest.raises(ValueError, match="cannot be combined"):
        reports.daily([], tz="UTC", last=1, since="20250101", now_ms=NOW)
    with pytest.raises(ValueError, match="1 or greater"):
        reports.monthly([], tz="UTC", last=0, now_ms=NOW)


# --- session --------------------------------------------------------------------------------


def test_sessions_sort_by_cost_and_carry_activity() -> None:
    entries = [
        e("2025-09-08T10:00:00.250Z", session="cheap", cost="1"),
        e("2025-09-08T09:00:00Z", session="dear", cost="2", project="q"),
        e("2025-09-09T11:00:00Z", session="dear", cost="2", project="q"),
        e("2025-09-08T07:00:00Z", session="cheap", cost="1"),
        e("2025-09-08T08:00:00Z", session="tie", cost="2"),
        e("2025-09-08T08:00:00Z", session="empty", tokens=(0, 0, 0, 0), cost="0"),
    ]
    report = reports.session(entries, tz="UTC")
    rows = report["sessions"]
    assert [(r["sessionId"], r["totalCost"]) for r in rows] == [
        ("dear", Decimal(4)),
        ("cheap", Decimal(2)),
        ("tie", Decimal(2)),  # equal cost: first-seen order
    ]
    assert rows[0]["projectPath"] == "q"
    assert rows[1]["firstActivity"] == "2025-09-08T07:00:00.000Z"
    assert rows[1]["lastActivity"] == "2025-09-08T10:00:00.250Z"
    assert "versions" not in rows[0]
    assert report["totals"]["totalCost"] == Decimal(8)


def test_session_bounds_filter_entries_before_grouping() -> None:
    entries = [
        e("2025-09-08T12:00:00Z", cost="1"),
        e("2025-09-09T03:00:00Z", cost="2"),  # 2025-09-08 in New York
    ]
    (utc,) = reports.session(entries, tz="UTC", until="20250908")["sessions"]
    assert (utc["totalCost"], utc["lastActivity"]) == (Decimal(1), "2025-09-08T12:00:00.000Z")
    (ny,) = reports.session(entries, tz="America/New_York", until="20250908")["sessions"]
    assert ny["totalCost"] == Decimal(3)
