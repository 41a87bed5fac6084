"""ccusage-shaped reports: exact shapes and sums over deduplicated usage."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from builders import store_lines, usage_line

from ingestor.clickhouse.engine import ClickHouse
from ingestor.report import ReportRequest, build
from ingestor.report.render import render_json, render_table
from ingestor.wire import TranscriptSource

pytestmark = pytest.mark.integration

SONNET = "claude-sonnet-4-5-20250929"
OPUS = "claude-opus-4-1-20250805"
A = TranscriptSource(
    file="/p/projects/alpha/s1.jsonl", project="alpha", first_ts="2025-01-31T10:00:00Z"
)
B = TranscriptSource(
    file="/p/projects/beta/s2.jsonl", project="beta", first_ts="2025-02-01T09:00:00Z"
)


def _report(kind: str) -> Any:
    def run(ch: ClickHouse, **options: Any) -> dict[str, Any]:
        return build(ch, ReportRequest(kind, **options))

    return run


daily, monthly, session, models = (_report(k) for k in ("daily", "monthly", "session", "models"))


def _store(ch: ClickHouse) -> None:
    store_lines(
        ch,
        A,
        [
            # 1M input on sonnet 4.5 = 200k at $3/M + 800k at the >200k tier's $6/M = $5.40;
            # the streaming partial before it is a duplicate
            (
                0,
                usage_line(
                    ts="2025-01-31T10:00:00Z", message_id="m1", request_id="r1", inp=1, model=SONNET
                ),
            ),
            (
                100,
                usage_line(
                    ts="2025-01-31T10:00:01Z",
                    message_id="m1",
                    request_id="r1",
                    inp=1_000_000,
                    model=SONNET,
                ),
            ),
            # costUSD given: used as is
            (
                200,
                usage_line(
                    ts="2025-01-31T23:30:00Z",
                    message_id="m2",
                    request_id="r2",
                    out=10,
                    cr=5,
                    model=OPUS,
                    cost="0.125",
                ),
            ),
            (300, usage_line(ts="2025-01-31T23:40:00Z", inp=7, model="<synthetic>")),
        ],
    )
    store_lines(
        ch,
        B,
        [
            # 1M cache writes on opus 4.1 = $18.75
            (
                0,
                usage_line(
                    ts="2025-02-01T09:00:00Z",
                    message_id="m3",
                    request_id="r3",
                    cc=1_000_000,
                    model=OPUS,
                    session="s2",
                ),
            ),
        ],
    )


def test_daily(clickhouse: ClickHouse) -> None:
    _store(clickhouse)
    report = daily(clickhouse)
    assert report == {
        "daily": [
            {
                "date": "2025-01-31", "inputTokens": 1_000_007, "outputTokens": 10,
                "cacheCreationTokens": 0, "cacheReadTokens": 5, "totalTokens": 1_000_022,
                "totalCost": Decimal("5.525"), "modelsUsed": [SONNET, OPUS],
                "modelBreakdowns": [
                    {"modelName": SONNET, "inputTokens": 1_000_000, "outputTokens": 0,
                     "cacheCreationTokens": 0, "cacheReadTokens": 0, "cost": Decimal("5.4")},
                    {"modelName": OPUS, "inputTokens": 0, "outputTokens": 10,
                     "cacheCreationTokens": 0, "cacheReadTokens": 5, "cost": Decimal("0.125")},
                ],
            },
            {
                "date": "2025-02-01", "inputTokens": 0, "outputTokens": 0,
                "cacheCreationTokens": 1_000_000, "cacheReadTokens": 0, "totalTokens": 1_000_000,
                "totalCost": Decimal("18.75"), "modelsUsed": [OPUS],
                "modelBreakdowns": [
                    {"modelName": OPUS, "inputTokens": 0, "outputTokens": 0,
                     "cacheCreationTokens": 1_000_000, "cacheReadTokens": 0,
                     "cost": Decimal("18.75")},
                ],
            },
        ],
        "totals": {"inputTokens": 1_000_007, "outputTokens": 10, "cacheCreationTokens": 1_000_000,
                   "cacheReadTokens": 5, "totalTokens": 2_000_022, "totalCost": Decimal("24.275")},
    }  # fmt: skip


def test_daily_in_another_zone_and_range(clickhouse: ClickHouse) -> None:
    _store(clickhouse)
    # In Tokyo (UTC+9) 23:30 on Jan 31 is already Feb 1.
    report = daily(clickhouse, tz="Asia/Tokyo", since="20250201", until="20250201")
    assert [(d["date"], d["totalCost"]) for d in report["daily"]] == [
        ("2025-02-01", Decimal("18.875"))
    ]
    assert report["totals"]["inputTokens"] == 7


def test_monthly(clickhouse: ClickHouse) -> None:
    _store(clickhouse)
    report = monthly(clickhouse)
    assert [(m["month"], m["totalTokens"], m["totalCost"], m["modelsUsed"])
            for m in report["monthly"]] == [
        ("2025-01", 1_000_022, Decimal("5.525"), [SONNET, OPUS]),
        ("2025-02", 1_000_000, Decimal("18.75"), [OPUS]),
    ]  # fmt: skip
    assert report["totals"]["totalCost"] == Decimal("24.275")


def test_session(clickhouse: ClickHouse) -> None:
    _store(clickhouse)
    report = session(clickhouse)
    assert [(s["sessionId"], s["projectPath"], s["lastActivity"], s["totalCost"],
             s["modelsUsed"]) for s in report["sessions"]] == [
        ("s2", "beta", "2025-02-01T09:00:00.000Z", Decimal("18.75"), [OPUS]),
        ("s1", "alpha", "2025-01-31T23:40:00.000Z", Decimal("5.525"), [SONNET, OPUS]),
    ]  # fmt: skip
    first = report["sessions"][0]
    assert set(first) == {
        "sessionId", "projectPath", "inputTokens", "outputTokens", "cacheCreationTokens",
        "cacheReadTokens", "totalTokens", "totalCost", "firstActivity", "lastActivity",
        "modelsUsed", "modelBreakdowns",
    }  # fmt: skip


def test_models(clickhouse: ClickHouse) -> None:
    _store(clickhouse)
    report = models(clickhouse)
    assert [(m["modelName"], m["totalTokens"], m["cost"]) for m in report["models"]] == [
        (OPUS, 1_000_015, Decimal("18.875")),
        (SONNET, 1_000_000, Decimal("5.4")),
    ]
    assert report["totals"]["inputTokens"] == 1_000_007  # <synthetic> counts in totals


def test_empty_reports(clickhouse: ClickHouse) -> None:
    assert daily(clickhouse)["daily"] == []
    assert models(clickhouse) == {
        "models": [],
        "totals": {"inputTokens": 0, "outputTokens": 0, "cacheCreationTokens": 0,
                   "cacheReadTokens": 0, "totalTokens": 0, "totalCost": Decimal(0)},
    }  # fmt: skip


def test_render_json_writes_exact_numbers_and_table_renders(clickhouse: ClickHouse) -> None:
    _store(clickhouse)
    report = daily(clickhouse)
    text = render_json(report)
    assert '"totalCost": 24.275' in text
    parsed = json.loads(text, parse_float=Decimal)
    assert parsed["daily"][1]["modelBreakdowns"][0]["cost"] == Decimal("18.75")
    table = render_table(report)
    assert "2025-01-31" in table and "$24.28" in table and "Total" in table
