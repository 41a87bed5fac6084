"""Budget alerts on the real pipeline (Tansu, the Faust worker, chdb): a stream that crosses a
session's budget in two hours gives exactly two alerts per session, for SDK events and for a
Claude Code transcript alike, and still exactly two after the whole input is re-processed by a
fresh consumer group (an empty window table: every crossing is found again, with the same ids).
A worker restarted with a window part-way to its limit recovers the window's total (the table's
changelog), so the spend after the restart crosses it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pipeline import Pipeline, wait_for

from ingestor.report import ReportRequest, build
from ingestor.wire import encode_envelope

pytestmark = [pytest.mark.integration]

BUDGET = "session:1h:20"
# Two days ago, on the hour: inside every TTL, and whole hours for the windows.
H0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)


def _at(minutes: int) -> str:
    return (
        (H0 + timedelta(minutes=minutes)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _events() -> list[list[dict[str, Any]]]:
    """Envelopes of one app session: $8 x 3 in hour 0 (crosses at the third), $12 x 2 in hour 1,
    and $15 in hour 2 (below the budget)."""

    def event(n: int, minute: int, cost: str) -> dict[str, Any]:
        return {
            "event_id": f"ev{n}", "event_type": "prompt_call", "project_id": "shop",
            "user_id": "u1", "session_id": "app-s", "timestamp": _at(minute),
            "model": "claude-sonnet-4-20250514", "cost_usd": cost, "tokens_input": 10,
        }  # fmt: skip

    return [
        [event(1, 5, "8"), event(2, 10, "8")],
        [event(3, 15, "8"), event(4, 40, "1")],
        [event(5, 65, "12"), event(6, 70, "12")],
        [event(7, 125, "15")],
    ]


def _transcript(root: Path) -> str:
    """A Claude Code session file: $8 x 3 in hour 0, $8 x 3 in hour 1, and in hour 2 one $15
    line with its streaming copy (same message and request: counted once, so no alert)."""
    session = str(uuid.UUID(int=7))
    lines = []

    def usage(n: int, minute: int, cost: str, message: str | None = None) -> None:
        lines.append({
            "type": "assistant", "sessionId": session, "version": "1.0.88",
            "uuid": str(uuid.UUID(int=1000 + len(lines))), "timestamp": _at(minute),
            "requestId": f"req{message or n}", "isSidechain": False, "costUSD": float(cost),
            "message": {"id": f"msg{message or n}", "model": "claude-sonnet-4-20250514",
                        "usage": {"input_tokens": 10, "output_tokens": 5}},
        })  # fmt: skip

    for n, minute in enumerate((1, 20, 50, 61, 62, 63)):
        usage(n, minute, "8")
    usage(10, 130, "15", message="x")
    usage(11, 131, "15", message="x")
    path = root / "projects" / "-home-dev-shop" / f"{session}.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return session


def _produce(pipeline: Pipeline, envelopes: list[list[dict[str, Any]]]) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap)
        await producer.start()
        try:
            for records in envelopes:
                value = encode_envelope("event", records)
                await producer.send_and_wait(pipeline.settings.topic("events"), value, key=b"s")
        finally:
            await producer.stop()

    asyncio.run(run())


def _handled(pipeline: Pipeline, messages: int) -> Any:
    stats = pipeline.stats() or {}
    counts = stats.get("counts", {})
    return counts.get("messages", 0) >= messages and stats.get("pending_rows") == 0 and counts


def test_two_crossings_two_alerts_also_after_reprocessing(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.env["INGESTOR_BUDGETS"] = BUDGET
    session = _transcript(tmp_path / "claude")
    events = _events()
    pipeline.start_worker()
    _produce(pipeline, events)
    _produce(pipeline, events[3:])  # a producer's retry the broker had stored: counted once
    assert pipeline.send(tmp_path / "claude") == 8
    counts = wait_for(
        lambda: _handled(pipeline, len(events) + 2), timeout_s=90, what="the input handled"
    )
    assert counts["alerts"] == 4
    live = pipeline.get("/report/alerts/")
    assert live is not None and live["totals"] == {"alerts": 4}

    # Stopped with another session's window at $15 of $20; after the restart $6 more crosses it.
    # (A clean stop: a killed member would hold its partitions for the session timeout.)
    def other(n: int, minute: int, cost: str) -> dict[str, Any]:
        return {**events[0][0], "event_id": f"other{n}", "session_id": "app-s2",
                "timestamp": _at(minute), "cost_usd": cost}  # fmt: skip

    _produce(pipeline, [[other(1, 5, "15")]])
    wait_for(lambda: _handled(pipeline, len(events) + 3), timeout_s=60, what="$15 handled")
    pipeline.stop_worker()
    pipeline.start_worker()
    _produce(pipeline, [[other(2, 30, "6")]])
    counts = wait_for(
        lambda: _handled(pipeline, 1) and (pipeline.stats() or {})["counts"].get("alerts"),
        timeout_s=90, what="the crossing after the restart",
    )  # fmt: skip
    assert counts == 1

    # Re-process everything: a fresh consumer group and an empty window table.
    pipeline.stop_worker()
    pipeline.env["INGESTOR_APP_ID"] += "-again"
    pipeline.start_worker()
    counts = wait_for(
        lambda: _handled(pipeline, len(events) + 4), timeout_s=90, what="the input re-processed"
    )
    assert counts["alerts"] == 3  # the events' crossings found again (same ids, not stored)
    pipeline.stop_worker()

    with pipeline.clickhouse() as ch:
        report = build(ch, ReportRequest("alerts", order="asc"))
        found = sorted((a["subject"], a["windowStart"], a["timestamp"], a["actualUsd"])
                       for a in report["alerts"])  # fmt: skip
        hour = [_at(0).replace(".000", ""), _at(60).replace(".000", "")]
        assert found == sorted([
            ("app-s", hour[0], _at(15).replace(".000", ""), 24),
            ("app-s", hour[1], _at(70).replace(".000", ""), 24),
            (session, hour[0], _at(50).replace(".000", ""), 24),
            (session, hour[1], _at(63).replace(".000", ""), 24),
            ("app-s2", hour[0], _at(30).replace(".000", ""), 21),
        ])  # fmt: skip
        [(rows, ids)] = ch.query(
            "SELECT count(), uniqExact(event_id) FROM events "
            "WHERE event_type = 'cost_threshold_exceeded'"
        )
        assert (rows, ids) == (5, 5)  # no row twice, not even before a merge
        [(alert_events,)] = ch.query(
            "SELECT sum(events) FROM daily_metrics WHERE event_type = 'cost_threshold_exceeded'"
        )
        assert alert_events == 5  # the views counted each alert once
        events_report = build(ch, ReportRequest("events", limit=100))["events"]
        assert sum(e["eventType"] == "cost_threshold_exceeded" for e in events_report) == 5


def test_windows_reseeded_from_clickhouse_after_the_broker_lost_the_changelog(
    pipeline: Pipeline,
) -> None:
    """What ``ingestor up`` does on a fresh embedded broker: the windows ClickHouse holds spend
    for are written to the new changelog, so spend after the restart completes them."""
    from builders import store_events, store_lines, usage_line

    from ingestor.alerts.budgets import parse_budgets
    from ingestor.usage.prices import price_table
    from ingestor.wire import TranscriptSource
    from ingestor.worker.restore import budget_seeds
    from ingestor.worker.seed import seed_budgets

    pipeline.env["INGESTOR_BUDGETS"] = BUDGET
    source = TranscriptSource("/h/.claude/projects/-shop/sess-9.jsonl", "-shop", 0, _at(0))
    event = _events()[0][0]
    with pipeline.clickhouse() as ch:
        # Hour 0: $10 of transcript and $5 of events; hour 1: $25, crossed (its alert was stored).
        store_lines(ch, source, [
            (0, usage_line(ts=_at(1), message_id="m1", request_id="r1", cost="10")),
            (100, usage_line(ts=_at(61), message_id="m2", request_id="r2", cost="25")),
        ])  # fmt: skip
        store_events(ch, [{**event, "session_id": "sess-9", "cost_usd": "5"}], token="t")
        windows = budget_seeds(
            ch, parse_budgets(BUDGET), since_ms=int(H0.timestamp() * 1000) - 1,
            prices=price_table(),
        )  # fmt: skip
    assert sorted((w.total, w.alert is not None) for w in windows.values()) == [
        (15, False),
        (25, True),
    ]
    asyncio.run(seed_budgets(pipeline.settings, pipeline.bootstrap, windows))
    pipeline.start_worker()
    _produce(pipeline, [[
        {**event, "event_id": "late1", "session_id": "sess-9", "timestamp": _at(30),
         "cost_usd": "6"},
        {**event, "event_id": "late2", "session_id": "sess-9", "timestamp": _at(90),
         "cost_usd": "1"},
    ]])  # fmt: skip
    wait_for(lambda: _handled(pipeline, 1), timeout_s=60, what="the late spend handled")
    [alert] = pipeline.get("/report/alerts/")["alerts"]
    assert (alert["subject"], alert["windowStart"], alert["actualUsd"]) == (
        "sess-9", _at(0).replace(".000", ""), 21,
    )  # fmt: skip
