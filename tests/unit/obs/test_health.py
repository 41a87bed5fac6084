from __future__ import annotations

import json

from ingestor.obs.health import HealthInputs, verdict

NOW = 1_800_000_000.0


def inputs(**changes: object) -> HealthInputs:
    base: dict[str, object] = dict(
        clickhouse_error=None,
        broker_error=None,
        assigned=4,
        rebalancing=False,
        now=NOW,
        newest={"transcript": NOW - 30},
        max_staleness_s=0.0,
        error_ratio=0.01,
        max_error_ratio=0.5,
    )
    base.update(changes)
    return HealthInputs(**base)  # type: ignore[arg-type]


def test_all_checks_passing_is_200() -> None:
    status, body = verdict(inputs())
    assert status == 200
    assert body["status"] == "ok" and body["reasons"] == []
    assert body["checks"]["freshness_age_s"] == {"transcript": 30.0}
    json.dumps(body)


def test_each_failure_is_a_503_with_its_reason() -> None:
    status, body = verdict(
        inputs(
            clickhouse_error="TimeoutError",
            broker_error="127.0.0.1:9: refused",
            assigned=0,
            max_staleness_s=10,
            error_ratio=0.3,
        )
    )
    assert status == 503
    assert body["status"] == "failing"
    text = " | ".join(body["reasons"])
    for part in ("clickhouse unreachable", "broker unreachable", "no partitions assigned"):
        assert part in text
    assert "transcript stale" in text and "recent error rate 30.0%" in text


def test_staleness_is_judged_only_when_configured_and_never_before_a_first_record() -> None:
    assert verdict(inputs(newest={"transcript": NOW - 10_000}))[0] == 200
    assert verdict(inputs(newest={"transcript": 0.0}, max_staleness_s=5))[0] == 200
    assert verdict(inputs(newest={"transcript": NOW - 10}, max_staleness_s=5))[0] == 503


def test_rebalancing_is_not_healthy() -> None:
    status, body = verdict(inputs(rebalancing=True))
    assert status == 503 and body["reasons"] == ["rebalancing"]
