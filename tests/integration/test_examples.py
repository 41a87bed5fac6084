"""``examples/sdk_app.py`` as a user runs it, against a running worker: everything it sent is in
``ingestor report events`` once, and its spend crosses the user's budget once, in
``ingestor report alerts`` (both asked of the worker over HTTP, as while ``make run`` runs)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest
from pipeline import REPO, Pipeline, wait_for

pytestmark = [pytest.mark.integration]


def _report(pipeline: Pipeline, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "ingestor.cli.main", "report", *args, "--json", "-z", "UTC"],
        env=pipeline.env, cwd=pipeline.tmp, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout, parse_float=Decimal)


def test_the_sdk_example_shows_in_the_event_and_alert_reports(pipeline: Pipeline) -> None:
    pipeline.env["INGESTOR_BUDGETS"] = "user:1h:0.10"
    pipeline.start_worker()
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "sdk_app.py")],
        env=pipeline.env, cwd=pipeline.tmp, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    sent = re.search(r"sent (\d+) events, 0 still queued, 0 dropped, 0 failed", done.stdout)
    assert sent is not None, done.stdout

    def stored() -> Any:
        s = pipeline.stats() or {}
        return s.get("pending_rows") == 0 and s.get("counts", {}).get("alerts", 0) >= 1

    wait_for(stored, timeout_s=60, what="the example's events stored")
    events = _report(pipeline, "events", "--limit", "1000")["events"]
    mine = [e for e in events if e["projectId"] == "support-bot"]
    kinds = {e["eventType"] for e in mine}
    assert {"prompt_call", "tool_call", "agent_step", "error"} <= kinds
    alerts_in_events = [e for e in mine if e["eventType"] == "cost_threshold_exceeded"]
    assert len(mine) - len(alerts_in_events) == int(sent.group(1))  # each event once
    assert len(alerts_in_events) == 1
    [alert] = _report(pipeline, "alerts")["alerts"]
    assert (alert["scope"], alert["subject"], alert["window"]) == ("user", "user-7", "1h")
    assert alert["thresholdUsd"] == Decimal("0.10") < alert["actualUsd"]
