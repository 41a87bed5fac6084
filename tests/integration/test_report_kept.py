"""``ingestor report`` with no worker running, on the real engine: its answer is kept on disk
and given again while the stored data is the same, without the engine; a store builds it again
(``report/kept.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from builders import store_lines, usage_line
from pipeline import stack_env

from ingestor.clickhouse.engine import open_clickhouse
from ingestor.clickhouse.migrations import apply_schema
from ingestor.plain_settings import ClickHouseTarget
from ingestor.report import ReportRequest
from ingestor.report.build import build_json
from ingestor.wire import TranscriptSource

pytestmark = pytest.mark.integration

A = TranscriptSource(file="/p/projects/alpha/s1.jsonl", project="alpha", first_ts="2025-01-31")
B = TranscriptSource(file="/p/projects/beta/s2.jsonl", project="beta", first_ts="2025-02-01")
DAILY = ReportRequest("daily", tz="UTC")


def _store(data: Path, source: TranscriptSource, message_id: str, tokens: int) -> bytes:
    """Store one usage line in the embedded engine under ``data``; the daily report built then."""
    target = ClickHouseTarget(kind="chdb", database="ingestor", path=data / "clickhouse")
    ch = open_clickhouse(target)
    try:
        apply_schema(ch)
        line = usage_line(ts=source.first_ts + "T10:00:00Z", message_id=message_id, inp=tokens)
        store_lines(ch, source, [(0, line)])
        return build_json(ch, DAILY)
    finally:
        ch.close()


def _report(data: Path, tmp_path: Path, *flags: str) -> bytes:
    done = subprocess.run(
        [sys.executable, "-m", "ingestor.cli.main", "report", "daily", "-z", "UTC", *flags],
        env=stack_env(data),
        cwd=tmp_path,  # no settings file there: the plain case
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _kept_file(data: Path) -> Path:
    [path] = (data / "answers").iterdir()
    return path


def test_an_answer_is_kept_until_a_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    built = _store(data, A, "m1", 10)
    assert _report(data, tmp_path, "--json") == built + b"\n"

    # Given again from the kept file: what the file says is what is printed, engine unasked.
    path = _kept_file(data)
    head, answer = path.read_bytes().split(b"\n", 1)
    planted = orjson.loads(answer)
    planted["totals"]["inputTokens"] = 424242
    path.write_bytes(head + b"\n" + orjson.dumps(planted))
    assert orjson.loads(_report(data, tmp_path, "--json"))["totals"]["inputTokens"] == 424242
    assert "424,242" in _report(data, tmp_path).decode()  # the table is printed from it too

    built = _store(data, B, "m2", 20)
    again = _report(data, tmp_path, "--json")
    assert again == built + b"\n"
    assert orjson.loads(again)["totals"]["inputTokens"] == 30
    assert _kept_file(data).read_bytes().endswith(built)


def test_a_report_that_reads_the_clock_is_not_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _store(data, A, "m1", 10)
    _report(data, tmp_path, "--json", "--last", "3")
    assert not (data / "answers").exists()
