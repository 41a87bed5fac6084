"""Reports over the SDK's events and the billing ledger: seed 003's sample queries, seed 004's
KPIs.

``events`` (recent events), ``costs`` (cost by model), ``errors`` (error rate by hour), ``trace
RUN_ID`` (an agent run's steps and events), ``projects`` (per-project overview), ``ledger``
(gross margin, provider cost breakdown, margin trend, cost distribution) and ``alerts`` (budget
alerts, ``cost_threshold_exceeded`` events, from the worker or an app). Counts, tokens,
latency and provided costs come from the rollups (``hourly_metrics``,
``daily_metrics``) where one answers the question; single events from ``events FINAL``.

**Costs.** An event's cost is the one its producer sent (``cost_provided = 1``), else its tokens
priced now from the price file (``ingestor/usage/prices.json``, ``tokens_cache_write`` at the
5-minute write rate). Calculated costs are never stored, so a new price file re-prices history
and an event is counted once, either way: provided events contribute ``cost_usd`` and nothing
else, the others (whose ``cost_usd`` is 0) their priced tokens. Pricing runs per event (the tiers
above 200k tokens are per request), over distinct token tuples so equal events are priced once.
Every cost is a ``Decimal``; the JSON carries ``costUsd`` split into ``providedCostUsd`` and
``calculatedCostUsd``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ingestor.clickhouse.engine import ClickHouse, quote_string
from ingestor.report.request import EVENT_KINDS, ReportRequest
from ingestor.usage.prices import PriceTable, line_cost, price_table
from ingestor.usage.reports_core import Json

__all__ = ["EVENT_KINDS", "build_event_report", "event_cost"]

_ZERO = Decimal(0)
_RATE = Decimal("0.01")  # error rate in percent, two places


def event_cost(prices: PriceTable, model: str, tokens: tuple[int, int, int, int]) -> Decimal | None:
    """The calculated cost of one event's ``(input, output, cache_read, cache_write)`` tokens,
    or None when ``model`` has no price."""
    inp, out, cache_read, cache_write = tokens
    return line_cost(
        prices, model, input_tokens=inp, output_tokens=out, cache_write_5m=cache_write,
        cache_write_1h=0, cache_read=cache_read, fast=False,
    )  # fmt: skip


def build_event_report(
    ch: ClickHouse, request: ReportRequest, *, prices: PriceTable | None = None
) -> Json:
    """``request``'s report (its kind one of ``EVENT_KINDS``)."""
    table = price_table() if prices is None else prices
    kind = request.kind
    if kind == "events":
        return _events(ch, request, table)
    if kind == "costs":
        return _costs(ch, request, table)
    if kind == "errors":
        return _errors(ch, request)
    if kind == "trace":
        return _trace(ch, request, table)
    if kind == "projects":
        return _projects(ch, request, table)
    if kind == "ledger":
        return _ledger(ch, request)
    if kind == "alerts":
        return _alerts(ch, request)
    raise ValueError(f"not an event report: {kind!r}")


# --------------------------------------------------------------------------- filters


def _bounds(r: ReportRequest) -> tuple[datetime | None, datetime | None]:
    """``--since``/``--until`` (days in ``--timezone``) as UTC instants, the end exclusive."""
    tz = ZoneInfo(r.tz)

    def start(day: str) -> datetime:
        d = date(int(day[:4]), int(day[4:6]), int(day[6:8]))
        return datetime.combine(d, time(), tz)

    lo = start(r.since) if r.since else None
    hi = start(r.until) + timedelta(days=1) if r.until else None
    return lo, hi


def _where(r: ReportRequest, column: str, *extra: str, by_project: bool = True) -> str:
    parts = list(extra)
    if column == "day":  # daily_metrics: UTC days
        if r.since:
            parts.append(f"day >= toDate({quote_string(r.since)})")
        if r.until:
            parts.append(f"day <= toDate({quote_string(r.until)})")
        lo = hi = None
    else:
        lo, hi = _bounds(r)
    if lo is not None:
        parts.append(f"{column} >= {_instant(lo)}")
    if hi is not None:
        parts.append(f"{column} < {_instant(hi)}")
    if by_project and r.project is not None:
        parts.append(f"project_id = {quote_string(r.project)}")
    return " WHERE " + " AND ".join(parts) if parts else ""


def _instant(at: datetime) -> str:
    return f"toDateTime64({at.timestamp():.3f}, 3, 'UTC')"


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- costs


class _Calculated:
    """Calculated costs of the events without a provided cost, by a grouping key."""

    def __init__(self) -> None:
        self.cost: dict[Any, Decimal] = {}
        self.missing: dict[Any, int] = {}  # events with tokens whose model has no price

    @classmethod
    def of(cls, ch: ClickHouse, prices: PriceTable, key_sql: str, where: str) -> _Calculated:
        cond = " AND ".join(c for c in (where.removeprefix(" WHERE "), "cost_provided = 0") if c)
        rows = ch.query(
            f"SELECT {key_sql} AS key, model, tokens_input, tokens_output, tokens_cache_read, "
            f"tokens_cache_write, count() FROM events FINAL WHERE {cond} "
            "GROUP BY key, model, tokens_input, tokens_output, tokens_cache_read, "
            "tokens_cache_write"
        )
        out = cls()
        for key, model, inp, o, cr, cw, n in rows:
            tokens = (int(inp), int(o), int(cr), int(cw))
            cost = event_cost(prices, str(model), tokens)
            if cost is None:
                if any(tokens):
                    out.missing[key] = out.missing.get(key, 0) + int(n)
                continue
            out.cost[key] = out.cost.get(key, _ZERO) + cost * int(n)
        return out


def _money(provided: Decimal, calculated: Decimal) -> dict[str, Decimal]:
    return {
        "costUsd": provided + calculated,
        "providedCostUsd": provided,
        "calculatedCostUsd": calculated,
    }


# --------------------------------------------------------------------------- reports


_EVENT_COLUMNS = (
    "event_id, timestamp, project_id, event_type, model, status, tokens_input, tokens_output, "
    "tokens_cache_read, tokens_cache_write, cost_usd, cost_provided, latency_ms, run_id, "
    "session_id, user_id, error_type"
)


def _event_json(row: tuple[Any, ...], prices: PriceTable) -> dict[str, Any]:
    (eid, ts, project, etype, model, status, inp, out, cr, cw, cost, provided, latency,
     run_id, session, user, error_type) = row  # fmt: skip
    tokens = (int(inp), int(out), int(cr), int(cw))
    if provided:
        value, source = Decimal(cost), "provided"
    elif not any(tokens):
        value, source = _ZERO, "none"
    else:
        calc = event_cost(prices, str(model), tokens)
        value, source = (calc, "calculated") if calc is not None else (_ZERO, "unpriced")
    return {
        "eventId": eid,
        "timestamp": _iso(ts),
        "projectId": project,
        "eventType": etype,
        "model": model,
        "status": status,
        "inputTokens": tokens[0],
        "outputTokens": tokens[1],
        "cacheReadTokens": tokens[2],
        "cacheCreationTokens": tokens[3],
        "costUsd": value,
        "costSource": source,
        "latencyMs": latency,
        "runId": run_id,
        "sessionId": session,
        "userId": user,
        "errorType": error_type,
    }


def _events(ch: ClickHouse, r: ReportRequest, prices: PriceTable) -> Json:
    """Seed 003's "recent events": the newest ``--limit`` events, newest first."""
    rows = ch.query(
        f"SELECT {_EVENT_COLUMNS} FROM events FINAL{_where(r, 'timestamp')} "
        f"ORDER BY timestamp DESC, event_id DESC LIMIT {r.limit}"
    )
    events = [_event_json(row, prices) for row in rows]
    return {"report": "events", "events": events, "totals": {"events": len(events)}}


def _costs(ch: ClickHouse, r: ReportRequest, prices: PriceTable) -> Json:
    """Seed 003's "cost by model" over prompt calls: requests, tokens, cost, average latency."""
    kind = "event_type = 'prompt_call'"
    rows = ch.query(
        "SELECT model, sum(events), sum(failures), sum(tokens_input), sum(tokens_output), "
        "sum(tokens_cache_read), sum(tokens_cache_write), sum(cost_usd), sum(latency_sum_ms), "
        f"sum(latency_count) FROM hourly_metrics{_where(r, 'hour', kind)} GROUP BY model"
    )
    calc = _Calculated.of(ch, prices, "model", _where(r, "timestamp", kind))
    out = []
    for model, n, fails, inp, o, cr, cw, provided, lat_sum, lat_n in rows:
        money = _money(Decimal(provided), calc.cost.get(model, _ZERO))
        out.append(
            {
                "model": model,
                "requests": int(n),
                "failures": int(fails),
                "inputTokens": int(inp),
                "outputTokens": int(o),
                "cacheReadTokens": int(cr),
                "cacheCreationTokens": int(cw),
                **money,
                "avgLatencyMs": _avg(lat_sum, lat_n),
                "unpricedEvents": calc.missing.get(model, 0),
            }
        )
    out.sort(key=lambda row: (-row["costUsd"], row["model"]))
    return {"report": "costs", "costs": out, "totals": _sum_rows(out)}


def _errors(ch: ClickHouse, r: ReportRequest) -> Json:
    """Seed 003's "error rate over time": prompt calls per UTC hour, failures (status other
    than success) and their share in percent."""
    where = _where(r, "hour", "event_type = 'prompt_call'")
    rows = ch.query(
        f"SELECT hour, sum(events), sum(failures) FROM hourly_metrics{where} "
        "GROUP BY hour ORDER BY hour"
    )
    hours: list[dict[str, Any]] = [
        {"hour": _iso(hour), "requests": int(n), "failures": int(f), "errorRatePct": _pct(f, n)}
        for hour, n, f in rows
    ]
    if r.order == "desc":
        hours.reverse()
    n, f = sum(h["requests"] for h in hours), sum(h["failures"] for h in hours)
    totals = {"requests": n, "failures": f, "errorRatePct": _pct(f, n)}
    return {"report": "errors", "errors": hours, "totals": totals}


def _trace(ch: ClickHouse, r: ReportRequest, prices: PriceTable) -> Json:
    """Seed 003's "agent workflow trace": a run's steps in step order, and all its events."""
    run = quote_string(r.run_id or "")
    steps = [
        {
            "stepNumber": int(n),
            "stepName": name,
            "stepType": stype,
            "agentName": agent,
            "model": model,
            "status": status,
            "latencyMs": latency,
            "timestamp": _iso(ts),
        }
        for n, name, stype, agent, model, status, latency, ts in ch.query(
            "SELECT step_number, step_name, step_type, agent_name, model, status, latency_ms, "
            f"timestamp FROM agent_steps FINAL WHERE run_id = {run} "
            "ORDER BY step_number, timestamp, event_id"
        )
    ]
    events = [
        _event_json(row, prices)
        for row in ch.query(
            f"SELECT {_EVENT_COLUMNS} FROM events FINAL WHERE run_id = {run} "
            "ORDER BY timestamp, event_id"
        )
    ]
    cost = sum((e["costUsd"] for e in events), _ZERO)
    failures = sum(1 for e in events if e["status"] != "success")
    totals = {"steps": len(steps), "events": len(events), "failures": failures, "costUsd": cost}
    return {"report": "trace", "runId": r.run_id, "trace": steps, "events": events,
            "totals": totals}  # fmt: skip


def _projects(ch: ClickHouse, r: ReportRequest, prices: PriceTable) -> Json:
    """Per project: events, failures, error events, tokens, cost, latency, models, first/last."""
    rows = ch.query(
        "SELECT project_id, sum(events), sum(failures), sumIf(events, event_type = 'error'), "
        "sum(tokens_input) + sum(tokens_output), sum(cost_usd), sum(latency_sum_ms), "
        "sum(latency_count), arraySort(groupUniqArrayIf(model, model != '')), min(first_seen), "
        f"max(last_seen) FROM daily_metrics{_where(r, 'day')} GROUP BY project_id "
        "ORDER BY project_id"
    )
    calc = _Calculated.of(ch, prices, "project_id", _where(r, "timestamp"))
    out = [
        {
            "projectId": project,
            "events": int(n),
            "failures": int(fails),
            "errorEvents": int(errors),
            "totalTokens": int(tokens),
            **_money(Decimal(provided), calc.cost.get(project, _ZERO)),
            "avgLatencyMs": _avg(lat_sum, lat_n),
            "models": list(models),
            "firstEvent": _iso(first),
            "lastEvent": _iso(last),
        }
        for project, n, fails, errors, tokens, provided, lat_sum, lat_n, models, first, last in rows
    ]
    return {"report": "projects", "projects": out, "totals": _sum_rows(out)}


def _ledger(ch: ClickHouse, r: ReportRequest) -> Json:
    """Seed 004's KPIs over successful requests: gross margin, provider cost breakdown, margin
    trend by day, cost distribution by decade of vendor cost per request."""
    where = _where(r, "created_at", "status = 'success'", by_project=False)
    src = f"(SELECT * FROM token_usage_ledger FINAL{where})"
    ((n, cost, margin, credits, inp, out),) = ch.query(
        "SELECT count(), sum(vendor_cost), sum(gross_margin_usd), sum(credits_deducted), "
        f"sum(input_tokens), sum(output_tokens) FROM {src}"
    )
    gross = {
        "requests": int(n),
        **_margin(cost, margin),
        "creditsDeducted": int(credits),
        "inputTokens": int(inp),
        "outputTokens": int(out),
    }
    providers = [
        {"providerId": p, "modelId": m, "requests": int(k), **_margin(c, g)}
        for p, m, k, c, g in ch.query(
            "SELECT provider_id, model_id, count(), sum(vendor_cost), sum(gross_margin_usd) "
            f"FROM {src} GROUP BY provider_id, model_id "
            "ORDER BY sum(vendor_cost) DESC, provider_id, model_id"
        )
    ]
    trend = [
        {"date": d.isoformat(), "requests": int(k), **_margin(c, g)}
        for d, k, c, g in ch.query(
            f"SELECT toDate(created_at, {quote_string(r.tz)}) AS day, count(), sum(vendor_cost), "
            f"sum(gross_margin_usd) FROM {src} GROUP BY day ORDER BY day"
        )
    ]
    distribution = [
        {"bucketUsd": Decimal(b), "requests": int(k), "vendorCostUsd": Decimal(c)}
        for b, k, c in ch.query(
            "SELECT multiIf(vendor_cost < 0.0001, '0', vendor_cost < 0.001, '0.0001', "
            "vendor_cost < 0.01, '0.001', vendor_cost < 0.1, '0.01', vendor_cost < 1, '0.1', '1') "
            f"AS bucket, count(), sum(vendor_cost) FROM {src} GROUP BY bucket "
            "ORDER BY toDecimal64(bucket, 8)"
        )
    ]
    return {
        "report": "ledger",
        "grossMargin": gross,
        "providers": providers,
        "trend": trend,
        "distribution": distribution,
    }


def _alerts(ch: ClickHouse, r: ReportRequest) -> Json:
    """The newest ``--limit`` budget alerts, newest first: which budget, whose spend, the window
    and what was spent when it went above the limit (``ingestor/alerts/``)."""
    where = _where(r, "timestamp", "event_type = 'cost_threshold_exceeded'")
    rows = ch.query(
        "SELECT timestamp, attributes['scope'], attributes['subject'], attributes['window'], "
        "attributes['window_start'], attributes['threshold_usd'], attributes['actual_usd'], "
        "attributes['budget'], project_id, user_id, session_id, event_id "
        f"FROM events FINAL{where} ORDER BY timestamp DESC, event_id DESC LIMIT {r.limit}"
    )
    alerts = [
        {
            "timestamp": _iso(ts),
            "scope": scope,
            "subject": subject,
            "window": window,
            "windowStart": start.replace(" ", "T").replace("+00:00", "Z"),
            "thresholdUsd": Decimal(threshold or 0),
            "actualUsd": Decimal(actual or 0),
            "budget": budget,
            "projectId": project,
            "userId": user,
            "sessionId": session,
            "eventId": eid,
        }
        for (ts, scope, subject, window, start, threshold, actual, budget, project, user, session,
             eid) in rows
    ]  # fmt: skip
    return {"report": "alerts", "alerts": alerts, "totals": {"alerts": len(alerts)}}


# --------------------------------------------------------------------------- helpers


def _margin(cost: Any, margin: Any) -> dict[str, Any]:
    vendor, gross = Decimal(cost or 0), Decimal(margin or 0)
    revenue = vendor + gross
    ratio = None if revenue == 0 else (gross / revenue).quantize(Decimal("0.0001"))
    return {
        "vendorCostUsd": vendor,
        "grossMarginUsd": gross,
        "revenueUsd": revenue,
        "marginRatio": ratio,
    }


def _avg(total: Any, count: Any) -> Decimal | None:
    return None if not count else (Decimal(int(total)) / int(count)).quantize(Decimal("0.1"))


def _pct(part: Any, whole: Any) -> Decimal:
    if not whole:
        return _ZERO
    return (Decimal(int(part)) * 100 / int(whole)).quantize(_RATE)


def _sum_rows(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Totals of a report's rows: every int and Decimal column summed (not averages)."""
    totals: dict[str, Any] = {}
    for row in rows:
        for key, value in row.items():
            if key.startswith("avg") or isinstance(value, bool):
                continue
            if isinstance(value, (int, Decimal)):
                totals[key] = totals.get(key, 0) + value
    return totals
