"""The event and ledger reports (seed 003's sample queries, seed 004's KPIs) against
hand-computed values; costs priced at query time, never twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from builders import store_events

from ingestor.clickhouse.engine import ClickHouse
from ingestor.clickhouse.write import write_batch
from ingestor.models import validate_event, validate_ledger
from ingestor.report.build import build
from ingestor.report.events import build_event_report
from ingestor.report.render import render_json, render_table
from ingestor.report.request import ReportRequest
from ingestor.rows.records import event_rows, ledger_row
from ingestor.usage.prices import PriceTable, parse_price_file, price_table

pytestmark = pytest.mark.integration

SONNET = "claude-sonnet-4-5-20250929"
# Within the tables' 90-day TTL, so a merge does not delete them mid-test.
_DAY = datetime.now(UTC).date() - timedelta(days=10)
DAY = _DAY.isoformat()
NEXT_DAY = (_DAY + timedelta(days=1)).strftime("%Y%m%d")


def _event(n: int, at: str, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"e{n}",
        "project_id": "p1",
        "event_type": "prompt_call",
        "timestamp": f"{DAY}T{at}:00Z",
        "model": SONNET,
        **extra,
    }


EVENTS = [
    # provided cost: its tokens are not priced on top
    _event(1, "10:15", tokens_input=1000, tokens_output=100, cost_usd="0.01", latency_ms=100),
    # no cost: 2000*3 + 200*15 + 1000*0.3 + 400*3.75 = 10,800 micro-dollars
    _event(
        2,
        "10:45",
        status="error",
        tokens_input=2000,
        tokens_output=200,
        tokens_cache_read=1000,
        tokens_cache_write=400,
        latency_ms=300,
    ),  # fmt: skip
    _event(3, "11:05", project_id="p2", model="no-such-model", tokens_input=50),
    _event(4, "11:10"),
    _event(
        5,
        "10:20",
        event_type="agent_step",
        run_id="run1",
        step_number=1,
        step_name="plan",
        step_type="plan",
        cost_usd="0.002",
        latency_ms=50,
        model=None,
    ),  # fmt: skip
    _event(
        6,
        "10:25",
        event_type="agent_step",
        run_id="run1",
        step_number=2,
        step_name="act",
        status="error",
        model=None,
    ),  # fmt: skip
    _event(7, "10:22", event_type="tool_call", run_id="run1", tool_name="grep", model=None),
    _event(8, "10:50", event_type="error", error_type="Boom", status="error", model=None),
]
CALCULATED = Decimal("0.0108")


@pytest.fixture
def events(clickhouse: ClickHouse) -> ClickHouse:
    store_events(clickhouse, EVENTS, token="b1")
    store_events(clickhouse, EVENTS, token="b1")  # a retried flush
    return clickhouse


def _report(ch: ClickHouse, kind: str, **options: Any) -> dict[str, Any]:
    report = build(ch, ReportRequest(kind, **options))
    render_json(report)
    for width in (80, 140):  # every report prints as a table too, lines within the width
        assert all(len(line) <= width for line in render_table(report, width=width).splitlines())
    return report


def test_recent_events(events: ClickHouse) -> None:
    report = _report(events, "events", limit=3)
    assert [e["eventId"] for e in report["events"]] == ["e4", "e3", "e8"]
    e4, e3, _ = report["events"]
    assert (e4["costUsd"], e4["costSource"]) == (0, "none")
    assert (e3["costUsd"], e3["costSource"]) == (0, "unpriced")
    all_events = _report(events, "events", project="p1")["events"]
    by_id = {e["eventId"]: e for e in all_events}
    assert len(all_events) == 7
    assert (by_id["e1"]["costUsd"], by_id["e1"]["costSource"]) == (Decimal("0.01"), "provided")
    assert (by_id["e2"]["costUsd"], by_id["e2"]["costSource"]) == (CALCULATED, "calculated")


def test_cost_by_model(events: ClickHouse) -> None:
    report = _report(events, "costs")
    assert report["costs"] == [
        {
            "model": SONNET, "requests": 3, "failures": 1, "inputTokens": 3000,
            "outputTokens": 300, "cacheReadTokens": 1000, "cacheCreationTokens": 400,
            "costUsd": Decimal("0.01") + CALCULATED, "providedCostUsd": Decimal("0.01"),
            "calculatedCostUsd": CALCULATED, "avgLatencyMs": Decimal("200.0"),
            "unpricedEvents": 0,
        },
        {
            "model": "no-such-model", "requests": 1, "failures": 0, "inputTokens": 50,
            "outputTokens": 0, "cacheReadTokens": 0, "cacheCreationTokens": 0,
            "costUsd": 0, "providedCostUsd": 0, "calculatedCostUsd": 0, "avgLatencyMs": None,
            "unpricedEvents": 1,
        },
    ]  # fmt: skip
    assert report["totals"]["costUsd"] == Decimal("0.0208")
    assert _report(events, "costs", project="p2")["totals"]["requests"] == 1
    assert _report(events, "costs", since=NEXT_DAY)["costs"] == []


def test_error_rate_by_hour(events: ClickHouse) -> None:
    report = _report(events, "errors")
    assert report["errors"] == [
        {"hour": f"{DAY}T10:00:00Z", "requests": 2, "failures": 1, "errorRatePct": 50},
        {"hour": f"{DAY}T11:00:00Z", "requests": 2, "failures": 0, "errorRatePct": 0},
    ]
    assert report["totals"] == {"requests": 4, "failures": 1, "errorRatePct": 25}


def test_trace_of_a_run(events: ClickHouse) -> None:
    report = _report(events, "trace", run_id="run1")
    assert [(s["stepNumber"], s["stepName"], s["status"]) for s in report["trace"]] == [
        (1, "plan", "success"),
        (2, "act", "error"),
    ]
    assert [e["eventId"] for e in report["events"]] == ["e5", "e7", "e6"]
    assert report["totals"] == {"steps": 2, "events": 3, "failures": 1, "costUsd": Decimal("0.002")}
    assert _report(events, "trace", run_id="nope")["totals"]["events"] == 0


def test_projects(events: ClickHouse) -> None:
    rows = {p["projectId"]: p for p in _report(events, "projects")["projects"]}
    p1, p2 = rows["p1"], rows["p2"]
    assert (p1["events"], p1["failures"], p1["errorEvents"], p1["totalTokens"]) == (7, 3, 1, 3300)
    assert (p1["costUsd"], p1["providedCostUsd"]) == (
        Decimal("0.012") + CALCULATED,
        Decimal("0.012"),
    )
    assert p1["models"] == [SONNET]
    assert (p2["events"], p2["totalTokens"], p2["costUsd"]) == (1, 50, 0)


def _prices(scale_input: int) -> PriceTable:
    base = price_table()
    doc: dict[str, Any] = {
        "source": "test", "taken": "today", "tier_threshold_tokens": base.threshold,
        "models": {
            SONNET: {
                "input": str(3 * scale_input), "output": "15", "cache_write_5m": "3.75",
                "cache_write_1h": "6", "cache_read": "0.3",
            }
        },
    }  # fmt: skip
    return parse_price_file(doc)


def test_a_price_change_reprices_history_once(events: ClickHouse) -> None:
    request = ReportRequest("costs")
    same = build_event_report(events, request, prices=_prices(1))
    assert same["totals"]["calculatedCostUsd"] == CALCULATED
    doubled = build_event_report(events, request, prices=_prices(2))
    # only e2's 2000 input tokens are repriced (+6000 micro-dollars); e1's cost was provided
    assert doubled["totals"]["calculatedCostUsd"] == CALCULATED + Decimal("0.006")
    assert doubled["totals"]["providedCostUsd"] == Decimal("0.01")
    assert doubled["totals"]["costUsd"] == Decimal("0.0268")
    stored = events.query("SELECT sum(cost_usd), sum(cost_provided) FROM events FINAL")
    assert stored == [(Decimal("0.012"), 2)]  # nothing calculated was frozen at ingest


def test_ledger_kpis(clickhouse: ClickHouse) -> None:
    def entry(n: int, cost: str, margin: str, **extra: Any) -> dict[str, Any]:
        return ledger_row(
            validate_ledger(
                {
                    "request_id": f"r{n}", "user_id": "u1", "provider_id": "anthropic",
                    "model_id": "m1", "created_at": "2025-02-01T12:00:00Z", "vendor_cost": cost,
                    "credits_deducted": 10, "margin_multiplier": "1.50",
                    "gross_margin_usd": margin, "status": "success", "input_tokens": 5,
                    "output_tokens": 6, **extra,
                }
            )
        )  # fmt: skip

    day2 = "2025-02-02T12:00:00Z"
    rows = [
        entry(1, "0.00005", "0.000025"),
        entry(2, "0.02", "0.01", created_at=day2),
        entry(3, "0.5", "0.25", provider_id="openai", created_at=day2),
        entry(4, "9", "1", status="failed"),
    ]
    clickhouse.insert("token_usage_ledger", rows, token="l1")
    clickhouse.insert("token_usage_ledger", rows[:1], token="l2")  # a replayed request
    report = _report(clickhouse, "ledger")
    gross = report["grossMargin"]
    assert gross["requests"] == 3
    assert gross["vendorCostUsd"] == Decimal("0.52005")
    assert gross["grossMarginUsd"] == Decimal("0.260025")
    assert gross["revenueUsd"] == Decimal("0.780075")
    assert gross["marginRatio"] == Decimal("0.3333")
    assert (gross["creditsDeducted"], gross["inputTokens"]) == (30, 15)
    assert [(p["providerId"], p["requests"], p["vendorCostUsd"]) for p in report["providers"]] == [
        ("openai", 1, Decimal("0.5")),
        ("anthropic", 2, Decimal("0.02005")),
    ]
    assert [(t["date"], t["requests"], t["grossMarginUsd"]) for t in report["trend"]] == [
        ("2025-02-01", 1, Decimal("0.000025")),
        ("2025-02-02", 2, Decimal("0.26")),
    ]
    assert [(d["bucketUsd"], d["requests"]) for d in report["distribution"]] == [
        (Decimal("0"), 1),
        (Decimal("0.01"), 1),
        (Decimal("0.1"), 1),
    ]
    assert _report(clickhouse, "ledger", since="20250202")["grossMargin"]["requests"] == 2


def test_alerts_report_and_an_alert_costs_nothing(events: ClickHouse) -> None:
    from ingestor.alerts.budgets import parse_budgets
    from ingestor.alerts.windows import Spend, apply_spends

    at = int(datetime.fromisoformat(f"{DAY}T10:30:00+00:00").timestamp() * 1000)
    store: dict[bytes, bytes] = {}
    _, alerts = apply_spends(
        store.get, parse_budgets("session:1h:0.5,user=u:1d:1"),
        [Spend(at, Decimal("0.75"), project="p1", user="u", session="s"),
         Spend(at + 60_000, Decimal("0.5"), project="p1", user="u", session="s")],
        source="t:0", offset=0,
    )  # fmt: skip
    before = _report(events, "projects")["totals"]
    rows: dict[str, list[dict[str, Any]]] = {}
    for alert in alerts:
        for table, new in event_rows(validate_event(alert)).items():
            rows.setdefault(table, []).extend(new)
    # Emitted again (a replay, another batch): the sink drops the ids it holds.
    for token in ("b2", "b3"):
        write_batch(events, rows, token=token, retries=0, backoff_s=0.1)
    report = _report(events, "alerts")
    assert [(a["scope"], a["subject"], a["window"]) for a in report["alerts"]] == [
        ("user", "u", "1d"), ("session", "s", "1h"),
    ]  # fmt: skip
    user, session = report["alerts"]
    assert (session["timestamp"], session["windowStart"]) == (
        f"{DAY}T10:30:00Z",
        f"{DAY}T10:00:00Z",
    )
    assert (session["thresholdUsd"], session["actualUsd"]) == (Decimal("0.5"), Decimal("0.75"))
    assert (user["thresholdUsd"], user["actualUsd"]) == (Decimal(1), Decimal("1.25"))
    assert (user["projectId"], user["userId"], user["sessionId"]) == ("p1", "u", "s")
    assert report["totals"] == {"alerts": 2}
    assert _report(events, "alerts", project="p2")["alerts"] == []
    # They are events too, and add nothing to any cost.
    types = [e["eventType"] for e in _report(events, "events", limit=100)["events"]]
    assert types.count("cost_threshold_exceeded") == 2
    after = _report(events, "projects")["totals"]
    assert (after["events"], after["costUsd"]) == (before["events"] + 2, before["costUsd"])
