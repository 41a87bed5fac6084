from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from ingestor.clickhouse.write import write_batch
from ingestor.errors import TransientStorageError
from ingestor.obs.metrics import (
    WatcherCounts,
    WorkerMetrics,
    all_metric_names,
    rule_of,
    watcher_exposition,
    watcher_textfile,
    write_textfile,
)

T1 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
T2 = datetime(2026, 1, 2, 3, 5, 0, tzinfo=UTC)


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_freshness_of_columns_is_that_of_their_datetimes() -> None:
    """Rows kept as columns are read in epoch ms: the same seconds as their datetimes'."""
    import random

    from ingestor.rows.columns import RowColumns

    pick = random.Random(3)
    for _ in range(200):
        stamps = [
            datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=pick.randrange(1, 10**13))
            for _ in range(pick.randint(1, 5))
        ]
        dicts = [{"timestamp": t, "n": 1} for t in stamps]
        columns = RowColumns(["timestamp", "n"], times=("timestamp",))
        columns.extend(dicts)
        by_dicts, by_columns = WorkerMetrics(), WorkerMetrics()
        by_dicts.stored({"transcript_lines": dicts}, 0.1)
        by_columns.stored({"transcript_lines": columns}, 0.1)
        assert by_columns.newest_seconds() == by_dicts.newest_seconds()
        assert by_columns.newest_seconds()["transcript"] == max(stamps).timestamp()


def test_envelopes_and_batches_show_in_the_exposition() -> None:
    lag = {("t.transcripts", 0): 7, ("t.transcripts", 1): 0}
    m = WorkerMetrics(scrape=lambda: (lag, 12))
    m.envelope("transcript", ["usage line skipped (version_not_semver): 'x'", "not_json: bad"])
    m.envelope("transcript", [])
    m.envelope("event", [])
    rows: dict[str, list[dict[str, Any]]] = {
        "transcript_lines": [{"timestamp": T1}, {"timestamp": T2}],
        "events": [{"timestamp": T1}],
        "dead_letters": [{}, {}],
        "tool_calls": [],
    }
    m.stored(rows, 0.3)
    # An older replay never moves freshness back.
    m.stored({"transcript_lines": [{"timestamp": T1}]}, 0.01)

    got = samples(m.exposition())
    assert got[("ingestor_messages_total", (("kind", "transcript"),))] == 2
    assert got[("ingestor_messages_total", (("kind", "event"),))] == 1
    dead = (("kind", "transcript"), ("reason", "version_not_semver"))
    assert got[("ingestor_dead_letters_total", dead)] == 1
    assert got[("ingestor_dead_letters_total", (("kind", "transcript"), ("reason", "not_json")))]
    assert got[("ingestor_records_stored_total", (("table", "transcript_lines"),))] == 3
    assert got[("ingestor_records_stored_total", (("table", "dead_letters"),))] == 2
    assert ("ingestor_records_stored_total", (("table", "tool_calls"),)) not in got
    fresh = ("ingestor_newest_event_timestamp_seconds", (("source", "transcript"),))
    assert got[fresh] == T2.timestamp()
    assert m.newest_seconds() == {"transcript": T2.timestamp(), "event": T1.timestamp()}
    assert got[("ingestor_batch_rows_count", ())] == 2
    assert got[("ingestor_batch_rows_sum", ())] == 6
    assert got[("ingestor_insert_duration_seconds_sum", ())] == 0.31
    assert got[("ingestor_insert_duration_seconds_bucket", (("le", "0.5"),))] == 2
    assert got[("ingestor_flushes_total", ())] == 2
    part0 = (("partition", "0"), ("topic", "t.transcripts"))
    assert got[("ingestor_consumer_lag", part0)] == 7
    assert got[("ingestor_pending_rows", ())] == 12


class FlakyClickHouse:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.inserted: list[str] = []

    def insert(self, table: str, rows: list[dict[str, Any]], *, token: str) -> None:
        if self.failures:
            self.failures -= 1
            raise TransientStorageError("connection reset")
        self.inserted.append(table)

    def query(self, sql: str) -> list[Any]:
        return []

    def execute(self, sql: str) -> None:  # the events rollups
        pass


def test_clickhouse_retries_are_counted() -> None:
    m = WorkerMetrics()
    ch = FlakyClickHouse(failures=2)
    rows = {"events": [{"event_id": "e1", "timestamp": T1}]}
    stored = write_batch(
        ch,  # type: ignore[arg-type]
        rows,
        token="t",
        retries=3,
        backoff_s=0.001,
        sleep=lambda _: None,
        on_retry=m.retries.inc,
    )
    assert stored == 1
    assert m.registry.get_sample_value("ingestor_clickhouse_retries_total") == 2


def test_rule_of_names_the_rule_as_the_skipped_report_does() -> None:
    assert rule_of("usage line skipped by ccusage (null_field): costUSD") == "null_field"
    assert rule_of("value out of range (out_of_range): tokens") == "out_of_range"
    assert rule_of("not_json: Expecting value") == "not_json"
    assert rule_of("blank line") == "blank line"


def test_watcher_textfile_is_served_after_the_worker_metrics(tmp_path: Path) -> None:
    stats = SimpleNamespace(lines_read=41, bytes_read=9000, bad_lines=2, envelopes_sent=3, files=5)
    body = watcher_exposition(WatcherCounts(lambda: stats, lambda: (9000, 10000)))
    path = watcher_textfile(tmp_path)
    write_textfile(path, body)
    got = samples(WorkerMetrics().exposition() + path.read_bytes())
    assert got[("ingestor_lines_read_total", ())] == 41
    assert got[("ingestor_read_bytes_total", ())] == 9000
    assert got[("ingestor_watched_files", ())] == 5
    assert got[("ingestor_watch_backlog_bytes", ())] == 1000
    assert not list(path.parent.glob("*.tmp"))


def test_every_name_follows_the_conventions() -> None:
    names = all_metric_names()
    assert {"ingestor_lines_read_total", "ingestor_consumer_lag"} <= names
    assert "ingestor_insert_duration_seconds_bucket" in names
    for name in names:
        assert name.startswith("ingestor_")
        assert "_total_" not in name and not name.endswith("_total_total")


def test_sdk_counters_for_an_apps_own_registry() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from ingestor.obs.metrics import SdkCollector
    from ingestor.sdk import Stats

    stats = Stats(queued=10, sent=7, dropped=1, failed=1, retried=2, pending=2)
    registry = CollectorRegistry()
    registry.register(SdkCollector(SimpleNamespace(stats=lambda: stats)))
    got = samples(generate_latest(registry))
    assert got[("ingestor_sdk_events_sent_total", ())] == 7
    assert got[("ingestor_sdk_events_dropped_total", ())] == 1
    assert got[("ingestor_sdk_envelopes_retried_total", ())] == 2
    assert got[("ingestor_sdk_events_pending", ())] == 2
    assert "ingestor_sdk_events_queued_total" in all_metric_names()
