"""The ``/health`` verdict, from what the worker observed. Pure: the view gathers the inputs.

Healthy (200) when ClickHouse answered ``SELECT 1``, a broker accepted a connection, partitions
are assigned (and no rebalance is running), no source is staler than ``max_staleness_s`` (when
set), and the recent invalid-record ratio is below half the limit at which the worker stops
(``INGESTOR_DLQ_MAX_INVALID_RATIO``): a warning before the stop. Otherwise 503, with a reason for
each failed check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HealthInputs", "verdict"]


@dataclass(frozen=True, slots=True)
class HealthInputs:
    clickhouse_error: str | None  # None: SELECT 1 answered
    broker_error: str | None  # None: a bootstrap server accepted a connection
    assigned: int  # input partitions assigned to this worker
    rebalancing: bool
    now: float  # Unix seconds
    newest: Mapping[str, float] = field(default_factory=dict)  # source -> newest event time
    max_staleness_s: float = 0.0  # 0: freshness is reported, not judged
    error_ratio: float | None = None  # invalid share of the recent window
    max_error_ratio: float = 0.5  # the dead-letter limit at which the worker stops


def verdict(i: HealthInputs) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): ``{"status": "ok"|"failing", "reasons": [...], "checks": {...}}``."""
    reasons: list[str] = []
    if i.clickhouse_error is not None:
        reasons.append(f"clickhouse unreachable: {i.clickhouse_error}")
    if i.broker_error is not None:
        reasons.append(f"broker unreachable: {i.broker_error}")
    if not i.assigned:
        reasons.append("no partitions assigned")
    elif i.rebalancing:
        reasons.append("rebalancing")
    ages = {source: round(i.now - t, 3) for source, t in sorted(i.newest.items()) if t > 0}
    if i.max_staleness_s > 0:
        reasons.extend(
            f"{source} stale: newest record {age:.0f}s old (limit {i.max_staleness_s:.0f}s)"
            for source, age in ages.items()
            if age > i.max_staleness_s
        )
    warn_at = i.max_error_ratio / 2
    if i.error_ratio is not None and i.error_ratio > warn_at:
        reasons.append(
            f"recent error rate {i.error_ratio:.1%} above {warn_at:.1%} "
            f"(the worker stops at {i.max_error_ratio:.0%})"
        )
    body = {
        "status": "failing" if reasons else "ok",
        "reasons": reasons,
        "checks": {
            "clickhouse": i.clickhouse_error is None,
            "broker": i.broker_error is None,
            "partitions_assigned": i.assigned,
            "rebalancing": i.rebalancing,
            "freshness_age_s": ages,
            "error_ratio": i.error_ratio,
        },
    }
    return (503 if reasons else 200), body
