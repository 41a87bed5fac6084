"""A harness that runs the real pipeline: worker as a child process, watcher in-process.

Real parts only: the session's broker (Tansu, or Kafka when configured), chdb in ``tmp_path``
(or the configured ClickHouse server), the real Faust worker. Each harness gets its own topic
prefix, app id (consumer group, changelog) and HTTP port, so tests share one broker safely.
Waiting is on conditions (bounded), never on sleeps or timings. The worker is started, awaited
and stopped as ``ingestor up`` does it (``ingestor.local.stack``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ingestor.clickhouse.engine import ClickHouse, open_clickhouse
from ingestor.corpus.reference import Reference, Totals
from ingestor.local.stack import free_port, prepare, spawn_ingestor, stop_processes, wait_ready
from ingestor.producer.checkpoint import Checkpoint, default_checkpoint_path
from ingestor.producer.sender import KafkaSender
from ingestor.producer.watch import Watcher
from ingestor.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def stack_env(data: Path, **settings: str) -> dict[str, str]:
    """The environment for an ``ingestor`` child on its own data dir and web port: ours minus
    every ``INGESTOR_`` setting, plus ``settings`` (``batch_max_age_s="0.3"`` sets
    ``INGESTOR_BATCH_MAX_AGE_S``)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INGESTOR_")}
    return {
        **clean,
        "INGESTOR_DATA_DIR": str(data),
        "INGESTOR_WEB_PORT": str(free_port()),
        **{f"INGESTOR_{k.upper()}": v for k, v in settings.items()},
    }


def wait_for(condition: Callable[[], Any], *, timeout_s: float, what: str) -> Any:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after the bound."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what} after {timeout_s}s (last: {last!r})")


def calm_look(stats: dict[str, Any] | None, previous: list[Any]) -> bool:
    """One look at a worker's ``/stats/`` toward "it has handled everything the broker holds":
    ready, behind nothing, nothing pending, and the same message count (and run) as at the
    previous look (``previous``, updated). ``behind`` alone can read 0 before a worker fetched a
    partition it was just given: a failover survivor stopped then has not yet handled the dead
    worker's unacked batch, whose summary rows it would write."""
    s = stats or {}
    now = (s.get("counts", {}).get("messages"), s.get("run_id"))
    calm = bool(s.get("ready")) and s.get("behind") == 0 and not s.get("pending_rows")
    calm = calm and not s.get("pending_messages") and now == previous[0]
    previous[0] = now
    return calm


def pids_by_parent(ppid: int) -> Iterator[tuple[int, list[bytes]]]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == ppid:
            yield int(entry.name), argv


def child_pid(parent: int, word: str, *, timeout_s: float = 120) -> int:
    """The pid of ``parent``'s child running ``word``: an argument (``worker``, ``watch``) or the
    executable's name (``tansu``)."""

    def find() -> int | None:
        for pid, argv in pids_by_parent(parent):
            if word.encode() in argv or Path(os.fsdecode(argv[0])).name == word:
                return pid
        return None

    pid: int = wait_for(find, timeout_s=timeout_s, what=f"the {word} child of {parent}")
    return pid


@dataclass
class Pipeline:
    bootstrap: str
    tmp: Path
    clickhouse_url: str
    # Whether the broker is Tansu (its workarounds on); None: unless INGESTOR_TEST_KAFKA_BOOTSTRAP.
    tansu: bool | None = None

    def __post_init__(self) -> None:
        tag = uuid.uuid4().hex[:10]
        self.env = {
            **os.environ,
            "INGESTOR_DATA_DIR": str(self.tmp / "data"),
            "INGESTOR_KAFKA_BOOTSTRAP": self.bootstrap,
            "INGESTOR_CLICKHOUSE_URL": self.clickhouse_url,
            "INGESTOR_TOPIC_PREFIX": f"t{tag}.",
            "INGESTOR_APP_ID": f"ingestor-{tag}",
            "INGESTOR_WEB_PORT": str(free_port()),
            "INGESTOR_BATCH_MAX_AGE_S": "0.2",
            "INGESTOR_BROKER_SESSION_TIMEOUT_S": "6",
        }
        self.worker: subprocess.Popen[bytes] | None = None

    @property
    def settings(self) -> Settings:
        keys = {
            k[len("INGESTOR_") :].lower(): v
            for k, v in self.env.items()
            if k.startswith("INGESTOR_")
        }
        keys.pop("test_kafka_bootstrap", None)
        keys.pop("test_clickhouse_url", None)
        return Settings(**keys)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ set-up

    def prepare(self) -> None:
        prepare(self.settings, self.bootstrap)

    def worker_args(self) -> list[str]:
        """``ingestor worker``'s arguments for this broker."""
        on_tansu = (
            self.tansu
            if self.tansu is not None
            else not os.environ.get("INGESTOR_TEST_KAFKA_BOOTSTRAP")
        )
        return [*(["--tansu"] if on_tansu else []), "--loglevel", "info"]

    def start_worker(self) -> None:
        log = self.tmp / "worker.log"
        args = ["worker", *self.worker_args()]
        self.worker = spawn_ingestor(args, log, env=self.env, cwd=self.tmp)
        port = self.env["INGESTOR_WEB_PORT"]
        if not wait_ready("127.0.0.1", port, self.worker, timeout_s=90, poll_s=0.2, ready=bool):
            tail = log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"gave up waiting for the worker's HTTP views after 90s:\n{tail}")

    def stop_worker(self, *, kill: bool = False) -> None:
        if self.worker is not None:
            stop_processes([self.worker], 60, sig=signal.SIGKILL if kill else signal.SIGTERM)
        self.worker = None

    def send(self, root: Path) -> int:
        """One watcher pass over ``root/projects``; returns the lines sent."""

        async def once() -> int:
            checkpoint = Checkpoint.load(default_checkpoint_path(self.settings))
            async with KafkaSender.from_settings(self.settings, self.bootstrap) as sender:
                return await Watcher(
                    self.settings, [root / "projects"], sender, checkpoint
                ).run_once()

        return asyncio.run(once())

    # ------------------------------------------------------------------ observation

    def get(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.env['INGESTOR_WEB_PORT']}{path}"
        try:
            with urllib.request.urlopen(url, timeout=30) as reply:
                return json.loads(reply.read(), parse_float=Decimal)
        except OSError:
            return None

    def stats(self) -> dict[str, Any] | None:
        body = self.get("/stats/")
        return body if isinstance(body, dict) else None

    def wait_stored(self, reference: Reference, *, timeout_s: float = 180) -> None:
        """Until the worker's daily report equals the reference's (then the batch is durable)."""
        expected = daily_totals(reference)

        def matches() -> bool:
            report = self.get("/report/daily/")
            stats = self.stats()
            return (
                report is not None
                and stats is not None
                and stats["pending_rows"] == 0
                and report_totals(report) == expected
            )

        wait_for(
            matches, timeout_s=timeout_s, what="ClickHouse to hold exactly the reference totals"
        )

    def wait_settled(self, *, timeout_s: float = 120) -> None:
        """Until the worker has handled everything the broker holds (``calm_look``, looks 1 s
        apart)."""
        previous: list[Any] = [None]

        def settled() -> bool:
            calm = calm_look(self.stats(), previous)
            if not calm:
                time.sleep(1.0)
            return calm

        wait_for(settled, timeout_s=timeout_s, what="the worker to handle what the broker holds")

    def clickhouse(self) -> ClickHouse:
        """The engine, opened here: only once the worker stopped (chdb admits one process)."""
        return open_clickhouse(self.settings.clickhouse)


def _key(t: Totals) -> tuple[int, int, int, int, Decimal]:
    return (t.input_tokens, t.output_tokens, t.cache_creation_tokens, t.cache_read_tokens, t.cost)


def daily_totals(reference: Reference) -> dict[str, tuple[int, int, int, int, Decimal]]:
    return {day: _key(t) for day, t in reference.daily().items()}


def report_totals(report: dict[str, Any]) -> dict[str, tuple[int, int, int, int, Decimal]]:
    rows = report.get("daily") or report.get("monthly") or []
    return {
        row.get("date") or row.get("month"): (
            row["inputTokens"],
            row["outputTokens"],
            row["cacheCreationTokens"],
            row["cacheReadTokens"],
            Decimal(str(row["totalCost"])),
        )
        for row in rows
    }


def session_totals(reference: Reference) -> dict[str, tuple[int, int, int, int, Decimal, int]]:
    return {s: (*_key(t), t.entries) for s, t in reference.sessions().items()}


def live_session_totals(body: dict[str, Any]) -> dict[str, tuple[int, int, int, int, Decimal, int]]:
    return {
        s["sessionId"]: (
            s["inputTokens"],
            s["outputTokens"],
            s["cacheCreationTokens"],
            s["cacheReadTokens"],
            Decimal(str(s["totalCost"])),
            s["messages"],
        )
        for s in body["sessions"]
        if s["messages"]
    }
