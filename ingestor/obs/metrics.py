"""Prometheus metrics: every name the ingestor exports is defined here, once.

The worker keeps a ``WorkerMetrics`` (its own ``CollectorRegistry``, so tests and in-place
restarts never share state) and serves it at ``/metrics``. Counters move once per envelope or per
batch, never per line: the per-line hot path stays untouched. Values that exist only at scrape
time (consumer lag, rows pending) are read then, through a callback.

The watcher has no HTTP server of its own: ``watcher_exposition`` renders its counters, the
``ingestor watch`` loop writes them to ``$INGESTOR_DATA_DIR/metrics/watcher.prom`` every second
(atomically), and the worker's ``/metrics`` appends that file. One port, one ``Host`` check, one
scrape target; when the watcher runs on another machine, point node_exporter's textfile collector
at its data dir instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ingestor.rows.columns import RowColumns, column_of

__all__ = [
    "CONTENT_TYPE",
    "RECORD_SOURCES",
    "ScrapeState",
    "SdkCollector",
    "WatcherCounts",
    "WorkerMetrics",
    "all_metric_names",
    "watcher_exposition",
    "watcher_textfile",
    "write_textfile",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Tables holding input records, the source they come from, and their event-time column.
RECORD_SOURCES: Mapping[str, tuple[str, str]] = {
    "transcript_lines": ("transcript", "timestamp"),
    "events": ("event", "timestamp"),
    "token_usage_ledger": ("ledger", "created_at"),
}

_RULE = re.compile(r"\(([a-z_]+)\):")
_BATCH_ROWS = (1, 10, 100, 1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000)
_INSERT_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# (topic, partition) -> records behind; rows waiting for ClickHouse.
ScrapeState = Callable[[], tuple[Mapping[tuple[str, int], int], int]]


class WorkerMetrics:
    """The worker's metrics. Thread-safe (prometheus-client's own locks): the insert thread
    updates them too."""

    def __init__(self, scrape: ScrapeState | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages = Counter(
            "ingestor_messages", "Kafka messages (envelopes) handled", ["kind"], registry=r
        )
        self.records_stored = Counter(
            "ingestor_records_stored",
            "Rows ClickHouse confirmed, by table (input records and the rows derived from them)",
            ["table"],
            registry=r,
        )
        self.dead_letters = Counter(
            "ingestor_dead_letters",
            "Records kept out of the counts, by kind and rule (as `ingestor report skipped`)",
            ["kind", "reason"],
            registry=r,
        )
        self.batch_rows = Histogram(
            "ingestor_batch_rows",
            "Rows a flush sends to ClickHouse",
            buckets=_BATCH_ROWS,
            registry=r,
        )
        self.insert_seconds = Histogram(
            "ingestor_insert_duration_seconds",
            "Time to store one batch in ClickHouse, retries included",
            buckets=_INSERT_S,
            registry=r,
        )
        self.retries = Counter(
            "ingestor_clickhouse_retries",
            "ClickHouse calls retried after a transient failure",
            registry=r,
        )
        self.newest = Gauge(
            "ingestor_newest_event_timestamp_seconds",
            "Event time of the newest record stored, by source (Unix seconds; freshness)",
            ["source"],
            registry=r,
        )
        self.flushes = Counter("ingestor_flushes", "Batches stored in ClickHouse", registry=r)
        self._newest: dict[str, float] = {}
        if scrape is not None:
            r.register(_ScrapeCollector(scrape))

    def envelope(self, kind: str, dead_reasons: Iterable[str]) -> None:
        """One Kafka message handled; ``dead_reasons`` of its dead letters (usually none)."""
        self.messages.labels(kind).inc()
        for reason in dead_reasons:
            self.dead_letters.labels(kind, rule_of(reason)).inc()

    def stored(self, rows: Mapping[str, Sequence[Mapping[str, Any]]], seconds: float) -> None:
        """A batch ClickHouse confirmed, ``seconds`` after it was started. Runs once a batch."""
        total = 0
        for table, batch in rows.items():
            if not batch:
                continue
            total += len(batch)
            self.records_stored.labels(table).inc(len(batch))
            source = RECORD_SOURCES.get(table)
            if source is not None:
                newest = _newest(batch, source[1])
                # Only ever forward: a batch may hold an old replay.
                if newest > self._newest.get(source[0], 0.0):
                    self._newest[source[0]] = newest
                    self.newest.labels(source[0]).set(newest)
        self.flushes.inc()
        self.batch_rows.observe(total)
        self.insert_seconds.observe(seconds)

    def newest_seconds(self) -> dict[str, float]:
        """The freshness gauge's values (source -> Unix seconds), for ``/health``."""
        return dict(self._newest)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def rule_of(reason: str) -> str:
    """The rule a dead letter's reason names: a ccusage rule or ``out_of_range`` in parentheses,
    else the reason's text before its first colon (``not_json``, ``blank``, …)."""
    match = _RULE.search(reason)
    return match.group(1) if match else reason.split(":", 1)[0]


def _newest(rows: Sequence[Mapping[str, Any]], column: str) -> float:
    """The latest ``column`` of ``rows`` in Unix seconds; a time column of ``RowColumns`` read
    in its epoch milliseconds (not a datetime a value: a tenth of a second a 20k-row batch)."""
    if isinstance(rows, RowColumns) and column in rows.times:
        return max(_ms_seconds(value) for value in rows.raw(column))
    return max(map(_seconds, column_of(rows, column)))


def _ms_seconds(value: Any) -> float:
    # What RowColumns.column would show a value, in seconds: the same float as its datetime's.
    return value / 1000 if type(value) is int else _seconds(value)


def _seconds(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return 0.0


class _ScrapeCollector(Collector):
    def __init__(self, scrape: ScrapeState) -> None:
        self._scrape = scrape

    def collect(self) -> Iterable[Metric]:
        lag, pending = self._scrape()
        family = GaugeMetricFamily(
            "ingestor_consumer_lag",
            "Records in an input partition not yet handled (high-watermark minus position)",
            labels=["topic", "partition"],
        )
        for (topic, partition), behind in sorted(lag.items()):
            family.add_metric([topic, str(partition)], behind)
        yield family
        yield GaugeMetricFamily(
            "ingestor_pending_rows", "Rows handled and not yet confirmed by ClickHouse", pending
        )

    def describe(self) -> Iterable[Metric]:
        # Names only, without calling back into a worker that may not have started.
        yield GaugeMetricFamily("ingestor_consumer_lag", "", labels=["topic", "partition"])
        yield GaugeMetricFamily("ingestor_pending_rows", "")


class WatcherCounts(Collector):
    """What the watcher exports, read from its ``WatchStats`` and backlog at each write."""

    def __init__(self, stats: Callable[[], Any], backlog: Callable[[], tuple[int, int]]) -> None:
        self._stats = stats
        self._backlog = backlog

    def collect(self) -> Iterable[Metric]:
        s = self._stats()
        done, total = self._backlog()
        yield CounterMetricFamily(
            "ingestor_lines_read", "Transcript lines the broker acknowledged", s.lines_read
        )
        yield CounterMetricFamily(
            "ingestor_read_bytes", "Transcript bytes read past (acknowledged)", s.bytes_read
        )
        yield CounterMetricFamily(
            "ingestor_bad_lines_sent", "Lines sent as bad records (dead letters to be)", s.bad_lines
        )
        yield CounterMetricFamily(
            "ingestor_envelopes_sent", "Envelopes the broker acknowledged", s.envelopes_sent
        )
        yield GaugeMetricFamily("ingestor_watched_files", "Transcript files followed", s.files)
        yield GaugeMetricFamily(
            "ingestor_watch_backlog_bytes", "Bytes of the watched files not read yet", total - done
        )


class SdkCollector(Collector):
    """The SDK's counters for an LLM app's own Prometheus registry, read at scrape time::

        prometheus_client.REGISTRY.register(SdkCollector(tracker))

    ``tracker`` is anything with ``stats()`` returning ``ingestor.sdk.Stats``.
    """

    def __init__(self, tracker: Any) -> None:
        self._tracker = tracker

    def collect(self) -> Iterable[Metric]:
        s = self._tracker.stats()
        for name, value, doc in (
            ("ingestor_sdk_events_queued", s.queued, "Events the SDK accepted"),
            ("ingestor_sdk_events_sent", s.sent, "Events the broker acknowledged"),
            ("ingestor_sdk_events_dropped", s.dropped, "Events never accepted (queue full, …)"),
            ("ingestor_sdk_events_failed", s.failed, "Events refused for good or undelivered"),
            ("ingestor_sdk_envelopes_retried", s.retried, "Envelopes sent again"),
        ):
            yield CounterMetricFamily(name, doc, value)
        yield GaugeMetricFamily(
            "ingestor_sdk_events_pending", "Events accepted and not yet sent or failed", s.pending
        )


def watcher_exposition(counts: WatcherCounts) -> bytes:
    registry = CollectorRegistry(auto_describe=False)  # a fresh one a write: nothing kept
    registry.register(counts)
    return generate_latest(registry)


def watcher_textfile(data_dir: Path) -> Path:
    """Where the watcher writes its metrics and the worker reads them."""
    return data_dir / "metrics" / "watcher.prom"


def write_textfile(path: Path, body: bytes) -> None:
    """Replace ``path`` with ``body`` atomically (a scrape never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(body)
    os.replace(tmp, path)


def all_metric_names() -> set[str]:
    """Every series name the ingestor exports, as scraped (counters' ``_total``, histograms'
    ``_bucket``/``_sum``/``_count``): what the alert rules and dashboard may name."""
    from types import SimpleNamespace

    stats = SimpleNamespace(lines_read=0, bytes_read=0, bad_lines=0, envelopes_sent=0, files=0)
    watcher = CollectorRegistry(auto_describe=False)
    watcher.register(WatcherCounts(lambda: stats, lambda: (0, 0)))
    sdk = SimpleNamespace(queued=0, sent=0, dropped=0, failed=0, retried=0, pending=0)
    watcher.register(SdkCollector(SimpleNamespace(stats=lambda: sdk)))
    names: set[str] = set()
    for registry in (WorkerMetrics(scrape=lambda: ({}, 0)).registry, watcher):
        for family in registry.collect():
            if family.type == "counter":
                names.add(family.name + "_total")
            elif family.type == "histogram":
                names.update(family.name + s for s in ("_bucket", "_sum", "_count"))
            else:
                names.add(family.name)
    return names
