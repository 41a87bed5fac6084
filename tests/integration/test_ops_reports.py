"""The dashboard's two event reports: ``latency`` (percentiles by hour from the hourly view's
quantile states) and ``alerts`` (budget alerts with their exact amounts)."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from builders import store_events, store_lines, usage_line

from ingestor.clickhouse.engine import ClickHouse
from ingestor.report.build import build, build_many
from ingestor.report.render import render_json, render_table
from ingestor.report.request import ReportRequest
from ingestor.web import DASHBOARD_REPORTS, report_url
from ingestor.wire import TranscriptSource

pytestmark = pytest.mark.integration

# Within the tables' 90-day TTL, so a merge does not delete them mid-test.
DAY = (datetime.now(UTC).date() - timedelta(days=3)).isoformat()


def _event(n: int, at: str, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"e{n}",
        "project_id": "p1",
        "event_type": "prompt_call",
        "timestamp": f"{DAY}T{at}:00Z",
        "model": "claude-sonnet-4-5-20250929",
        **extra,
    }


def _alert(n: int, at: str, threshold: str, actual: str, **extra: Any) -> dict[str, Any]:
    return _event(
        n, at, event_type="cost_threshold_exceeded", model=None, threshold_usd=threshold,
        actual_usd=actual, **extra,
    )  # fmt: skip


def test_latency_percentiles_by_hour_and_overall(clickhouse: ClickHouse) -> None:
    events = [
        _event(1, "10:01", latency_ms=100),
        _event(2, "10:02", latency_ms=300),
        _event(3, "10:03", latency_ms=200, status="error"),
        _event(4, "10:04"),  # not timed: counted as a request, kept out of the percentiles
        _event(5, "11:30", latency_ms=1000),
        _event(6, "12:30"),
        _event(7, "10:05", event_type="tool_call", tool_name="grep", latency_ms=9999),
    ]
    store_events(clickhouse, events[:4], token="a")
    store_events(clickhouse, events[4:], token="b")  # two blocks: states merged, not summed
    report = build(clickhouse, ReportRequest("latency"))
    hours = {h["hour"][11:16]: h for h in report["latency"]}
    assert list(hours) == ["10:00", "11:00", "12:00"]
    ten = hours["10:00"]
    assert (ten["requests"], ten["measured"], ten["avgLatencyMs"]) == (4, 3, Decimal("200.0"))
    assert ten["p50LatencyMs"] == Decimal("200.0")
    assert Decimal("200") < ten["p90LatencyMs"] <= Decimal("300")
    assert hours["11:00"]["p99LatencyMs"] == Decimal("1000.0")
    assert hours["12:00"]["p50LatencyMs"] is None and hours["12:00"]["avgLatencyMs"] is None
    totals = report["totals"]
    assert (totals["requests"], totals["measured"]) == (6, 4)
    assert totals["avgLatencyMs"] == Decimal("400.0")
    assert Decimal("200") <= totals["p50LatencyMs"] <= Decimal("300")
    assert "p99 ms" in render_table(report, breakdown=False, color=False)


def test_alerts_newest_first_with_exact_amounts(clickhouse: ClickHouse) -> None:
    store_events(
        clickhouse,
        [
            _alert(1, "09:00", "20", "20.0000000001", user_id="u1", window="1h"),
            _alert(2, "10:00", "5.5", "7.25", session_id="s1"),
            _event(3, "10:30", tokens_input=5),
        ],
        token="a",
    )
    report = build(clickhouse, ReportRequest("alerts"))
    assert [a["eventId"] for a in report["alerts"]] == ["e2", "e1"]
    first, second = report["alerts"]
    assert (first["thresholdUsd"], first["actualUsd"], first["window"]) == (
        Decimal("5.5"), Decimal("7.25"), "1d",
    )  # fmt: skip
    assert (second["actualUsd"], second["userId"], second["window"]) == (
        Decimal("20.0000000001"), "u1", "1h",
    )  # fmt: skip
    assert report["totals"] == {"alerts": 2}
    assert build(clickhouse, ReportRequest("alerts", limit=1))["totals"] == {"alerts": 1}
    assert build(clickhouse, ReportRequest("alerts", project="p2"))["alerts"] == []
    assert '"actualUsd": 20.0000000001' in render_json(report)
    assert "Budget alerts" in render_table(report, breakdown=False, color=False)


def test_the_dashboards_reports_at_once_equal_each_alone(
    clickhouse: ClickHouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n, project in enumerate(("alpha", "beta")):
        source = TranscriptSource(
            file=f"/p/projects/{project}/s{n}.jsonl", project=project, first_ts=f"{DAY}T08:00:00Z"
        )
        lines = [
            (i * 100, usage_line(ts=f"{DAY}T1{i}:00:00Z", message_id=f"m{n}{i}",
                                 request_id=f"r{n}{i}", inp=1000 * (i + 1), out=10, cr=5))
            for i in range(3)
        ]  # fmt: skip
        store_lines(clickhouse, source, lines)
    store_events(
        clickhouse, [_event(1, "10:01", latency_ms=100), _alert(2, "11:00", "1", "2")], token="a"
    )
    now = int(datetime.now(UTC).timestamp() * 1000)
    alone = {name: build(clickhouse, r, now_ms=now) for name, r in DASHBOARD_REPORTS.items()}

    reads = []
    # The module, not the function ``ingestor.report`` re-exports under the same name.
    build_module = importlib.import_module("ingestor.report.build")
    read = build_module.report_entries
    monkeypatch.setattr(
        build_module, "report_entries", lambda *a, **k: reads.append(a[1].kind) or read(*a, **k)
    )
    together = build_many(clickhouse, DASHBOARD_REPORTS, now_ms=now)
    assert together == alone
    # The winners are kept (store_lines): daily, its projects and machines share one rollup;
    # blocks reads the counted lines.
    assert sorted(reads) == ["blocks", "daily"]
    assert alone["daily"]["totals"]["inputTokens"] == 12_000
    assert list(alone["projects"]["projects"]) == ["alpha", "beta"]
    assert alone["alerts"]["totals"] == {"alerts": 1}
    assert report_url(DASHBOARD_REPORTS["projects"]) == "/report/daily/?instances=1"
    assert report_url(DASHBOARD_REPORTS["daily"]) == "/report/daily/"
