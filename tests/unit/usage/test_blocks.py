"""Billing windows on hand-made entries with a fixed "now"; expectations worked out by hand."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from usage_helpers import HAIKU, OPUS, SONNET, e, ms

from ingestor.usage.reports import blocks

# Window 1: 10:00-15:00 (entries 10:20, 11:20); a silence over 5h;
# window 2: 17:00-22:00, active at 18:00.
ENTRIES = [
    e("2025-09-08T17:30:00Z", OPUS, (60, 30, 90, 0), "0.6"),  # load order is not time order
    e("2025-09-08T10:20:00Z", SONNET, (100, 50, 0, 0), "1"),
    e("2025-09-08T11:20:00Z", HAIKU, (200, 100, 30, 20), "2"),
    e("2025-09-08T17:00:00Z", SONNET, (300, 0, 0, 0), "0.3"),
]
NOW = ms("2025-09-08T18:00:00Z")


def test_windows_gaps_and_the_active_block() -> None:
    first, gap, current = blocks(ENTRIES, tz="UTC", now_ms=NOW)["blocks"]
    assert first == {
        "id": "2025-09-08T10:00:00.000Z",
        "startTime": "2025-09-08T10:00:00.000Z",
        "endTime": "2025-09-08T15:00:00.000Z",
        "actualEndTime": "2025-09-08T11:20:00.000Z",
        "isActive": False,
        "isGap": False,
        "entries": 2,
        "tokenCounts": {
            "inputTokens": 300,
            "outputTokens": 150,
            "cacheCreationInputTokens": 30,
            "cacheReadInputTokens": 20,
        },
        "totalTokens": 500,
        "costUSD": Decimal(3),
        "models": [SONNET, HAIKU],
        "burnRate": None,
        "projection": None,
    }
    assert gap["id"] == "gap-2025-09-08T16:20:00.000Z"
    assert (gap["startTime"], gap["endTime"]) == (
        "2025-09-08T16:20:00.000Z",
        "2025-09-08T17:00:00.000Z",
    )
    assert (gap["isGap"], gap["actualEndTime"], gap["entries"], gap["models"]) == (
        True,
        None,
        0,
        [],
    )
    assert current["isActive"] is True
    assert current["models"] == [SONNET, OPUS]
    # 480 tokens over 30 minutes; 390 of them input/output; $0.90 in half an hour.
    assert current["burnRate"] == {
        "tokensPerMinute": 16.0,
        "tokensPerMinuteForIndicator": 13.0,
        "costPerHour": Decimal("1.8"),
    }
    # 240 minutes left at that rate.
    assert current["projection"] == {
        "totalTokens": 480 + 16 * 240,
        "totalCost": Decimal("8.10"),
        "remainingMinutes": 240,
    }
    assert "tokenLimitStatus" not in current


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("10000", {"limit": 10000, "percentUsed": 43.2, "status": "ok"}),
        ("5000", {"limit": 5000, "percentUsed": 86.4, "status": "warning"}),
        (4000, {"limit": 4000, "percentUsed": 108.0, "status": "exceeds"}),
        ("max", {"limit": 500, "percentUsed": 864.0, "status": "exceeds"}),  # finished blocks' max
    ],
)
def test_token_limit_status_on_the_active_block(
    limit: str | int, expected: dict[str, object]
) -> None:
    current = blocks(ENTRIES, tz="UTC", now_ms=NOW, token_limit=limit)["blocks"][-1]
    status = current["tokenLimitStatus"]
    assert status == {
        **expected,
        "projectedUsage": 4320,
        "percentUsed": pytest.approx(expected["percentUsed"]),
    }


def test_token_limit_is_silent_without_a_usable_limit() -> None:
    only_active = blocks(ENTRIES, tz="UTC", now_ms=NOW, active=True, token_limit="max")["blocks"]
    assert len(only_active) == 1  # no finished block left to take a max from
    assert "tokenLimitStatus" not in only_active[0]
    garbage = blocks(ENTRIES, tz="UTC", now_ms=NOW, token_limit="lots")["blocks"][-1]
    assert "tokenLimitStatus" not in garbage


def test_nothing_is_active_long_after() -> None:
    later = ms("2025-09-09T00:00:00Z")
    found = blocks(ENTRIES, tz="UTC", now_ms=later)["blocks"]
    assert [b["isActive"] for b in found] == [False, False, False]
    assert found[-1]["burnRate"] is None
    assert blocks(ENTRIES, tz="UTC", now_ms=later, active=True) == {"blocks": []}


def test_recent_keeps_three_days_and_the_active_block() -> None:
    three_days_on = ms("2025-09-11T12:00:00Z")  # cutoff 2025-09-08T12:00
    found = blocks(ENTRIES, tz="UTC", now_ms=three_days_on, recent=True)["blocks"]
    assert [b["id"] for b in found] == ["gap-2025-09-08T16:20:00.000Z", "2025-09-08T17:00:00.000Z"]


def test_since_until_compare_the_start_day_in_the_zone() -> None:
    # In Tokyo the gap (16:20Z) and the second window (17:00Z) start on 2025-09-09.
    tokyo = blocks(ENTRIES, tz="Asia/Tokyo", now_ms=NOW, since="2025-09-09")["blocks"]
    assert [b["startTime"] for b in tokyo] == [
        "2025-09-08T16:20:00.000Z",
        "2025-09-08T17:00:00.000Z",
    ]
    assert blocks(ENTRIES, tz="UTC", now_ms=NOW, since="20250909") == {"blocks": []}


def test_a_window_can_start_before_the_gap_that_precedes_it() -> None:
    entries = [e("2025-09-08T10:30:00Z"), e("2025-09-08T15:54:00Z")]
    asc = [b["id"] for b in blocks(entries, tz="UTC", now_ms=NOW)["blocks"]]
    # The gap starts 5h after 10:30; the next window at 15:54 floored to the hour.
    assert asc == [
        "2025-09-08T10:00:00.000Z",
        "2025-09-08T15:00:00.000Z",
        "gap-2025-09-08T15:30:00.000Z",
    ]
    desc = [b["id"] for b in blocks(entries, tz="UTC", now_ms=NOW, order="desc")["blocks"]]
    assert desc == asc[::-1]


def test_session_length_sets_the_window() -> None:
    entries = [e("2025-09-08T10:00:00Z"), e("2025-09-08T11:00:00Z"), e("2025-09-08T11:31:00Z")]
    found = blocks(entries, tz="UTC", now_ms=NOW, session_length=1.5)["blocks"]
    assert [(b["startTime"], b["endTime"]) for b in found] == [
        ("2025-09-08T10:00:00.000Z", "2025-09-08T11:30:00.000Z"),
        ("2025-09-08T11:00:00.000Z", "2025-09-08T12:30:00.000Z"),
    ]  # 91 minutes after the start: a new window; 31 after the last entry: no gap
    with pytest.raises(ValueError, match="positive"):
        blocks(entries, tz="UTC", now_ms=NOW, session_length=0)


def test_usage_limit_reset_is_the_first_in_the_block() -> None:
    reset = ms("2025-09-08T14:00:00Z")
    entries = [
        e("2025-09-08T10:00:00Z"),
        replace(e("2025-09-08T10:10:00Z", None, (0, 0, 0, 0), "0"), usage_limit_reset_ms=reset),
        replace(e("2025-09-08T10:20:00Z"), usage_limit_reset_ms=reset + 1),
    ]
    (block,) = blocks(entries, tz="UTC", now_ms=NOW)["blocks"]
    assert block["usageLimitResetTime"] == "2025-09-08T14:00:00.000Z"
    assert block["models"] == [SONNET]
    assert "usageLimitResetTime" not in blocks(entries[:1], tz="UTC", now_ms=NOW)["blocks"][0]


def test_no_entries_no_blocks() -> None:
    assert blocks([], tz="UTC", now_ms=NOW) == {"blocks": []}
