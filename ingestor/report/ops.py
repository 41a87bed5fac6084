"""An event report the dashboard charts and no seed query answers: ``latency``, prompt-call
latency percentiles by hour.

``latency`` merges the quantile states the ``hourly_metrics`` view keeps (``quantiles(0.5, 0.9,
0.99)``: ClickHouse's reservoir sampling, exact below 8192 values an hour, interpolated between
values), so it costs one read of that view, never of ``events``; the totals merge every hour's
states, so they are percentiles of all calls, not averages of hourly ones. Percentiles are in
milliseconds to 0.1, ``None`` for an hour whose calls carry no latency.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from ingestor.clickhouse.engine import ClickHouse
from ingestor.report.events import _avg, _iso, _where
from ingestor.report.request import ReportRequest
from ingestor.usage.reports_core import Json

__all__ = ["OPS_KINDS", "build_ops_report"]

OPS_KINDS = ("latency",)
_TENTH = Decimal("0.1")
_QUANTILES = "quantilesMerge(0.5, 0.9, 0.99)(latency_quantiles)"


def build_ops_report(ch: ClickHouse, request: ReportRequest) -> Json:
    """``request``'s report (its kind one of ``OPS_KINDS``)."""
    if request.kind == "latency":
        return _latency(ch, request)
    raise ValueError(f"not an ops report: {request.kind!r}")


def _latency(ch: ClickHouse, r: ReportRequest) -> Json:
    where = _where(r, "hour", "event_type = 'prompt_call'")
    rows = ch.query(
        f"SELECT hour, sum(events), sum(latency_count), sum(latency_sum_ms), {_QUANTILES} "
        f"FROM hourly_metrics{where} GROUP BY hour ORDER BY hour"
    )
    hours = [
        {
            "hour": _iso(hour),
            "requests": int(n),
            "measured": int(k),
            **_percentiles(q if k else None),
            "avgLatencyMs": _avg(total, k),
        }
        for hour, n, k, total, q in rows
    ]
    if r.order == "desc":
        hours.reverse()
    ((n, k, total, q),) = ch.query(
        f"SELECT sum(events), sum(latency_count), sum(latency_sum_ms), {_QUANTILES} "
        f"FROM hourly_metrics{where}"
    )
    totals = {
        "requests": int(n or 0),
        "measured": int(k or 0),
        **_percentiles(q if k else None),
        "avgLatencyMs": _avg(total, k),
    }
    return {"report": "latency", "latency": hours, "totals": totals}


def _percentiles(values: Any) -> dict[str, Decimal | None]:
    p50 = p90 = p99 = None
    if values is not None and len(values) == 3:
        p50, p90, p99 = (_ms(v) for v in values)
    return {"p50LatencyMs": p50, "p90LatencyMs": p90, "p99LatencyMs": p99}


def _ms(value: Any) -> Decimal | None:
    number = float(value)
    if math.isnan(number):
        return None
    return Decimal(repr(number)).quantize(_TENTH)
