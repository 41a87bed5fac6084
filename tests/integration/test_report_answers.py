"""The worker's kept report answers: the same bytes as a fresh build, kept while nothing is
stored, built again after any store (``report/answers.py``)."""

from __future__ import annotations

import pytest
from builders import store_lines, usage_line

from ingestor.clickhouse.engine import ClickHouse
from ingestor.models import TranscriptLine
from ingestor.report import ReportRequest, build
from ingestor.report.answers import Answers
from ingestor.report.build import build_json
from ingestor.report.render import render_json
from ingestor.wire import TranscriptSource

pytestmark = pytest.mark.integration

A = TranscriptSource(file="/p/projects/alpha/s1.jsonl", project="alpha", first_ts="2025-01-31")
B = TranscriptSource(file="/p/projects/beta/s2.jsonl", project="beta", first_ts="2025-02-01")


def _line(ts: str, message_id: str, tokens: int) -> TranscriptLine:
    return usage_line(ts=ts, message_id=message_id, request_id=message_id, inp=tokens)


def test_an_answer_is_kept_until_a_store(clickhouse: ClickHouse) -> None:
    builds: list[ReportRequest] = []

    def counted_build(ch: ClickHouse, request: ReportRequest) -> bytes:
        builds.append(request)
        return build_json(ch, request)

    answers = Answers(counted_build)
    session, daily = ReportRequest("session"), ReportRequest("daily", tz="Asia/Kathmandu")
    store_lines(clickhouse, A, [(0, _line("2025-01-31T10:00:00Z", "m1", 10))])
    for request in (session, daily):
        first = answers.get(clickhouse, request)
        assert first == render_json(build(clickhouse, request)).encode()
        assert answers.get(clickhouse, request) is first
    assert builds == [session, daily]

    store_lines(clickhouse, B, [(0, _line("2025-02-01T09:00:00Z", "m2", 20))])
    again = answers.get(clickhouse, session)
    assert builds == [session, daily, session]
    assert again == render_json(build(clickhouse, session)).encode()
    assert b"s2" in again


def test_reports_that_read_the_clock_are_built_each_time(clickhouse: ClickHouse) -> None:
    builds: list[ReportRequest] = []

    def counted_build(ch: ClickHouse, request: ReportRequest) -> bytes:
        builds.append(request)
        return b"{}"

    answers = Answers(counted_build)
    for request in (ReportRequest("blocks"), ReportRequest("daily", last=3)) * 2:
        answers.get(clickhouse, request)
    assert len(builds) == 4
