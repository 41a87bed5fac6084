"""A report request: validated once, and the same after a trip through the worker's query."""

from __future__ import annotations

import pytest

from ingestor.errors import ConfigError
from ingestor.report.request import ReportRequest
from ingestor.usage.prices import CostMode


def test_round_trip_through_a_query_string() -> None:
    request = ReportRequest(
        "blocks",
        since="2025-09-01",
        until="20250930",
        tz="America/New_York",
        mode=CostMode.CALCULATE,
        order="desc",
        token_limit="max",
        session_length=3.5,
        recent=True,
        machines=True,
    )
    assert request.since == "20250901"
    query = request.to_query()
    assert query["mode"] == "calculate" and query["recent"] == "1"
    assert ReportRequest.from_query("blocks", query) == request


def test_defaults_travel_as_nothing() -> None:
    assert ReportRequest("daily").to_query() == {}


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"kind": "hourly"}, "hourly"),
        ({"since": "2025-13-01"}, "--since"),
        ({"since": "yesterday"}, "--since"),
        ({"since": "20250902", "until": "20250901"}, "after --until"),
        ({"tz": "Mars/Olympus"}, "Mars/Olympus"),
        ({"tz": "../etc"}, "time zone"),
        ({"mode": "cheap"}, "--mode"),
        ({"order": "up"}, "--order"),
        ({"start_of_week": "funday"}, "--start-of-week"),
        ({"last": 0}, "--last"),
        ({"token_limit": "lots"}, "--token-limit"),
        ({"session_length": 0.0}, "--session-length"),
        ({"kind": "events", "limit": 0}, "--limit"),
        ({"kind": "trace"}, "RUN_ID"),
        ({"kind": "events", "run_id": "r1"}, "RUN_ID"),
    ],
)
def test_bad_values_are_named(options: dict[str, object], named: str) -> None:
    kind = str(options.pop("kind", "daily"))
    with pytest.raises(ConfigError, match=named.replace("-", r"\-")):
        ReportRequest(kind, **options)  # type: ignore[arg-type]


def test_unknown_or_mistyped_query_parameters_are_named() -> None:
    with pytest.raises(ConfigError, match="unknown parameter 'colour'"):
        ReportRequest.from_query("daily", {"colour": "red"})
    with pytest.raises(ConfigError, match="last"):
        ReportRequest.from_query("daily", {"last": "many"})
    with pytest.raises(ConfigError, match="active"):
        ReportRequest.from_query("blocks", {"active": "yes"})


def test_event_report_options_travel_as_a_query() -> None:
    request = ReportRequest("trace", run_id="run-1", limit=7, project="p")
    assert request.to_query() == {"run_id": "run-1", "limit": "7", "project": "p"}
    assert ReportRequest.from_query("trace", request.to_query()) == request
