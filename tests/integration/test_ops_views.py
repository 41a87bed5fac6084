"""``/metrics`` and ``/health`` of a running worker, on real parts."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pipeline import Pipeline
from prometheus_client.parser import text_string_to_metric_families

from ingestor.corpus.generate import generate
from ingestor.corpus.reference import Reference
from ingestor.obs.metrics import (
    WatcherCounts,
    watcher_exposition,
    watcher_textfile,
    write_textfile,
)

pytestmark = [pytest.mark.integration]
SECRET = "pw-never-logged-7f3a"


def fetch(p: Pipeline, path: str, host: str | None = None) -> tuple[int, bytes]:
    url = f"http://127.0.0.1:{p.env['INGESTOR_WEB_PORT']}{path}"
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_metrics_and_health_of_a_running_worker(pipeline: Pipeline, tmp_path: Path) -> None:
    corpus = tmp_path / "claude"
    generate(corpus, lines=600, seed=5)
    reference = Reference.load(corpus)
    # What `ingestor watch` writes beside the worker: served after the worker's own metrics.
    stats = SimpleNamespace(lines_read=600, bytes_read=1, bad_lines=0, envelopes_sent=2, files=3)
    write_textfile(
        watcher_textfile(pipeline.settings.data_dir),
        watcher_exposition(WatcherCounts(lambda: stats, lambda: (1, 1))),
    )

    # Logs: JSON lines with one run id, and a broker password (unused on PLAINTEXT) never shown.
    pipeline.env.update(INGESTOR_LOG_FORMAT="json", INGESTOR_KAFKA_SASL_PASSWORD=SECRET)
    pipeline.env.pop("INGESTOR_RUN_ID", None)
    pipeline.start_worker()
    pipeline.send(corpus)
    pipeline.wait_stored(reference)

    status, body = fetch(pipeline, "/metrics")
    assert status == 200
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    names = {name for name, _ in values}
    stored = {
        dict(labels)["table"]: v
        for (n, labels), v in values.items()
        if n == "ingestor_records_stored_total"
    }
    dead = sum(v for (n, _), v in values.items() if n == "ingestor_dead_letters_total")
    assert stored["transcript_lines"] + dead == reference.accounting.lines
    assert dead > 0
    lags = [v for (n, _), v in values.items() if n == "ingestor_consumer_lag"]
    assert lags and all(v == 0 for v in lags)
    assert {"ingestor_batch_rows_bucket", "ingestor_insert_duration_seconds_count"} <= names
    assert values[("ingestor_newest_event_timestamp_seconds", (("source", "transcript"),))] > 0
    assert values[("ingestor_lines_read_total", ())] == 600

    status, body = fetch(pipeline, "/health")
    health = json.loads(body)
    assert status == 200, health
    assert health["status"] == "ok" and health["checks"]["partitions_assigned"] > 0

    assert fetch(pipeline, "/metrics", host="evil.example")[0] == 421
    assert fetch(pipeline, "/health", host="evil.example")[0] == 421

    pipeline.stop_worker()
    log = (tmp_path / "worker.log").read_text()
    assert SECRET not in log
    lines = log.splitlines()
    assert len(lines) > 10  # --loglevel info: Faust's start-up and ours
    assert len({json.loads(line)["run_id"] for line in lines}) == 1


def test_every_dashboard_query_runs_on_the_schema(clickhouse: Any) -> None:
    path = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"
    dashboard = json.loads(path.read_text())
    since = "toDateTime64('2000-01-01 00:00:00', 3, 'UTC')"
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            sql = re.sub(r"\$__timeFilter\((\w+)\)", rf"\1 >= {since}", target["rawSql"])
            assert "$" not in sql
            clickhouse.query(sql)  # raises on an unknown table, column or function
