"""The dashboard page in a real headless Chromium, on the real pipeline (Tansu, chdb, the Faust
worker): it loads with no console error, refreshes live while a corpus is ingested, and every
chart, KPI and table holds the values of the ``/report/...`` (or ``/sessions/``) JSON it comes
from, recomputed here from that JSON. A screenshot is written to ``$INGESTOR_ARTIFACTS`` (else
the test's tmp dir) and its path printed.

Chromium: ``$INGESTOR_CHROMIUM``, else ``chromium`` on the PATH (Debian's package; ``.ci/run``
installs it), driven by Playwright without its own browser download. Skipped when either is
missing.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import store_events
from pipeline import Pipeline

from ingestor.corpus.generate import generate
from ingestor.corpus.reference import Reference
from ingestor.models import validate_ledger
from ingestor.rows.records import ledger_row

pytestmark = [pytest.mark.integration]

DAYS, BLOCKS, HOURS, SESSIONS = 90, 48, 72, 12  # dashboard.js's LAST
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def chromium() -> str:
    """The browser's path; asked for first, so a machine without it skips before any set-up."""
    path = os.environ.get("INGESTOR_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.skip("no Chromium (apt-get install chromium, or set INGESTOR_CHROMIUM)")
    pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    return path


@pytest.fixture
def browser(chromium: str) -> Iterator[Any]:
    """Playwright's sync API runs an event loop in this thread from here on: asked for after
    the pipeline, whose set-up runs ``asyncio.run``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium)
        try:
            yield b
        finally:
            b.close()


def _at(hours_ago: int, minute: int = 0) -> str:
    return (NOW - timedelta(hours=hours_ago, minutes=-minute)).isoformat().replace("+00:00", "Z")


def _events() -> list[dict[str, Any]]:
    def call(n: int, hours_ago: int, latency: int, **extra: Any) -> dict[str, Any]:
        return {
            "event_id": f"e{n}", "project_id": "bot", "event_type": "prompt_call",
            "timestamp": _at(hours_ago, n % 60), "model": "claude-sonnet-4-5-20250929",
            "tokens_input": 100 * n, "tokens_output": 10 * n, "latency_ms": latency, **extra,
        }  # fmt: skip

    calls = [call(n, 30 - n % 3, 80 + 37 * n, status="error" if n % 4 == 0 else "success")
             for n in range(1, 25)]  # fmt: skip
    alert = {
        "project_id": "bot", "event_type": "cost_threshold_exceeded", "user_id": "u7",
        "threshold_usd": "20", "window": "1h",
    }  # fmt: skip
    return [
        *calls,
        {**alert, "event_id": "a1", "timestamp": _at(29), "actual_usd": "21.5"},
        {**alert, "event_id": "a2", "timestamp": _at(27), "actual_usd": "20.0000000001"},
    ]


def _ledger() -> list[dict[str, Any]]:
    def entry(n: int, provider: str, cost: str, margin: str, hours_ago: int) -> dict[str, Any]:
        return ledger_row(
            validate_ledger(
                {
                    "request_id": f"r{n}", "user_id": "u1", "provider_id": provider,
                    "model_id": "m1", "created_at": _at(hours_ago), "vendor_cost": cost,
                    "credits_deducted": 10, "margin_multiplier": "1.50",
                    "gross_margin_usd": margin, "status": "success", "input_tokens": 5,
                    "output_tokens": 6,
                }
            )
        )  # fmt: skip

    return [
        entry(1, "anthropic", "0.02", "0.01", 50),
        entry(2, "anthropic", "0.5", "0.25", 26),
        entry(3, "openai", "0.125", "0.04", 26),
    ]


def _get(p: Pipeline, path: str, host: str | None = None) -> tuple[int, bytes]:
    url = f"http://127.0.0.1:{p.env['INGESTOR_WEB_PORT']}{path}"
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _json(p: Pipeline, path: str) -> Any:
    status, body = _get(p, path)
    assert status == 200, (path, body[:200])
    return json.loads(body)  # floats, as the browser's JSON.parse reads them


# --------------------------------------------------------------------------- expected charts


def _by_model(rows: list[dict[str, Any]], value: Any, total: str) -> dict[str, list[Any]]:
    series: dict[str, list[Any]] = {}
    for i, row in enumerate(rows):
        for b in row["modelBreakdowns"]:
            series.setdefault(b["modelName"], [0] * len(rows))[i] = value(b)
    series["total"] = [row[total] for row in rows]
    return series


def _tokens(b: dict[str, Any]) -> int:
    return int(
        b["inputTokens"] + b["outputTokens"] + b["cacheCreationTokens"] + b["cacheReadTokens"]
    )


def expected_charts(p: Pipeline) -> dict[str, dict[str, Any]]:
    """Each chart's labels and series, from the JSON the page reads, by the page's rules."""
    daily = _json(p, "/report/daily/")["daily"][-DAYS:]
    groups = _json(p, "/report/daily/?instances=1").get("projects", {})
    dates = sorted({r["date"] for rows in groups.values() for r in rows})[-DAYS:]
    machines = _json(p, "/report/daily/?machines=1").get("machines", [])
    blocks = [b for b in _json(p, "/report/blocks/")["blocks"] if not b["isGap"]][-BLOCKS:]
    errors = _json(p, "/report/errors/")["errors"][-HOURS:]
    latency = _json(p, "/report/latency/")["latency"][-HOURS:]
    ledger = _json(p, "/report/ledger/")
    trend = ledger["trend"][-DAYS:]
    return {
        "chart-daily-cost": {
            "labels": [r["date"] for r in daily],
            "series": _by_model(daily, lambda b: b["cost"], "totalCost"),
        },
        "chart-daily-tokens": {
            "labels": [r["date"] for r in daily],
            "series": _by_model(daily, _tokens, "totalTokens"),
        },
        "chart-projects": {
            "labels": dates,
            "series": {
                name: [next((r["totalCost"] for r in rows if r["date"] == d), 0) for d in dates]
                for name, rows in groups.items()
            },
        },
        "chart-machines": {
            "labels": [m["machine"] for m in machines],
            "series": {"cost": [m["totals"]["totalCost"] for m in machines]},
        },
        "chart-blocks": {
            "labels": [b["startTime"] for b in blocks],
            "series": {
                "cost": [b["costUSD"] for b in blocks],
                "tokens": [b["totalTokens"] for b in blocks],
            },
        },
        "chart-errors": {
            "labels": [h["hour"] for h in errors],
            "series": {
                "error rate %": [h["errorRatePct"] for h in errors],
                "requests": [h["requests"] for h in errors],
            },
        },
        "chart-latency": {
            "labels": [h["hour"] for h in latency],
            "series": {q: [h[f"{q}LatencyMs"] for h in latency] for q in ("p50", "p90", "p99")},
        },
        "chart-ledger-trend": {
            "labels": [t["date"] for t in trend],
            "series": {
                "vendor cost": [t["vendorCostUsd"] for t in trend],
                "gross margin": [t["grossMarginUsd"] for t in trend],
                "margin ratio": [t["marginRatio"] for t in trend],
            },
        },
        "chart-ledger-providers": {
            "labels": [f"{r['providerId']} · {r['modelId']}" for r in ledger["providers"]],
            "series": {
                "vendor cost": [r["vendorCostUsd"] for r in ledger["providers"]],
                "gross margin": [r["grossMarginUsd"] for r in ledger["providers"]],
            },
        },
    }


def expected_kpis(p: Pipeline) -> dict[str, Any]:
    daily = _json(p, "/report/daily/")["totals"]
    return {
        "totalCost": daily["totalCost"],
        "totalTokens": daily["totalTokens"],
        "sessions": len(_json(p, "/sessions/")["sessions"]),
        "errorRate": _json(p, "/report/errors/")["totals"]["errorRatePct"],
        "p99": _json(p, "/report/latency/")["totals"]["p99LatencyMs"],
        "margin": _json(p, "/report/ledger/")["grossMargin"]["grossMarginUsd"],
        "alerts": _json(p, "/report/alerts/?limit=20")["totals"]["alerts"],
    }


# --------------------------------------------------------------------------- the test


def test_dashboard_in_chromium_shows_the_reports_live(
    chromium: str, pipeline: Pipeline, browser: Any, tmp_path: Path
) -> None:
    corpus = tmp_path / "claude"
    start = NOW - timedelta(days=4)
    generate(corpus, lines=1500, seed=12, start=start, days=3)
    reference = Reference.load(corpus)
    with pipeline.clickhouse() as ch:  # before the worker holds the embedded engine
        store_events(ch, _events(), token="dash")
        ch.insert("token_usage_ledger", _ledger(), token="dash-ledger")
    pipeline.start_worker()

    page = browser.new_page(viewport={"width": 1500, "height": 1250})
    page.set_default_timeout(90_000)  # a loaded CI machine: conditions, not timings
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("requestfailed", lambda r: problems.append(f"{r.url}: {r.failure}"))
    base = f"http://127.0.0.1:{pipeline.env['INGESTOR_WEB_PORT']}"
    page.goto(f"{base}/dashboard/?refresh=1")
    page.wait_for_function("() => window.dashboard && window.dashboard.refreshes >= 1")
    assert page.evaluate("window.dashboard.kpis.totalCost") == 0  # nothing ingested yet
    assert page.evaluate("window.dashboard.kpis.alerts") == 2

    # Playwright's sync API runs an event loop in this thread; the watcher pass needs its own.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(pipeline.send, corpus).result()
    pipeline.wait_stored(reference)
    # Live refresh: a whole refresh that started after the corpus was stored.
    seen = page.evaluate("window.dashboard.refreshes")
    page.wait_for_function(f"() => window.dashboard.refreshes >= {seen + 2}")
    state = page.evaluate("({charts: dashboard.charts, kpis: dashboard.kpis, "
                          "tables: dashboard.tables, errors: dashboard.errors})")  # fmt: skip

    assert state["errors"] == {}
    # The page's one request for its reports answers what each /report/ view answers alone.
    data = _json(pipeline, "/dashboard/data")
    assert data["sources"] == {
        "daily": "/report/daily/", "projects": "/report/daily/?instances=1",
        "machines": "/report/daily/?machines=1", "blocks": "/report/blocks/",
        "errors": "/report/errors/", "latency": "/report/latency/", "ledger": "/report/ledger/",
        "alerts": "/report/alerts/?limit=20",
    }  # fmt: skip
    for name, url in data["sources"].items():
        if name != "blocks":  # blocks depend on "now" (the active one): held by their chart
            assert data["reports"][name] == _json(pipeline, url), name
    expected = expected_charts(pipeline)
    assert set(state["charts"]) == set(expected)
    for name, chart in expected.items():
        assert state["charts"][name] == chart, name
    assert state["charts"]["chart-daily-cost"]["labels"], "the corpus's days are charted"
    assert len(state["charts"]["chart-latency"]["labels"]) == 3
    assert state["charts"]["chart-ledger-providers"]["labels"] == ["anthropic · m1", "openai · m1"]

    kpis = state["kpis"]
    assert {k: kpis[k] for k in expected_kpis(pipeline)} == expected_kpis(pipeline)
    assert kpis["totalCost"] > 0 and kpis["alerts"] == 2
    sessions = _json(pipeline, "/sessions/")["sessions"][:SESSIONS]
    assert state["tables"]["sessions"] == [
        {k: s[k] for k in ("sessionId", "totalTokens", "totalCost", "messages")} for s in sessions
    ]
    assert [a["eventId"] for a in state["tables"]["alerts"]] == ["a2", "a1"]
    assert state["tables"]["alerts"][1]["actualUsd"] == 21.5
    # The numbers shown are the JSON's, formatted.
    assert page.inner_text('[data-kpi="alerts"] b') == "2"
    assert page.inner_text('[data-kpi="margin"] b') == "$0.30"
    assert page.locator("#table-sessions tbody tr").count() == len(sessions)
    spent = page.locator("#table-alerts tbody tr td:last-child").all_inner_texts()
    assert spent == ["$20.0000000001", "$21.50"]

    out_dir = Path(os.environ.get("INGESTOR_ARTIFACTS") or tmp_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    shot = out_dir / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"dashboard screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    assert problems == []

    # Served like the other views: the Host check, no stray parameters, no path outside static/.
    for path in ("/", "/dashboard/"):
        status, body = _get(pipeline, path)
        assert status == 200 and b'<canvas id="chart-daily-cost">' in body, path
    assert _get(pipeline, "/dashboard/", host="evil.example")[0] == 421
    assert _get(pipeline, "/dashboard/static/dashboard.js", host="evil.example")[0] == 421
    assert _get(pipeline, "/dashboard/?nope=1")[0] == 400
    assert _get(pipeline, "/dashboard/static/__init__.py")[0] == 404
    assert _get(pipeline, "/dashboard/static/..%2F__init__.py")[0] == 404
