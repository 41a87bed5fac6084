"""The fault-injection harness: ``ingestor up`` (follow mode) on a generated corpus that arrives
in chunks, SDK events from a ``Tracker`` in this process, and faults at seeded random points.

Each fault is one of ``SCENARIOS``; ``Chaos.run`` prints the seed, every fault it injected (when,
what, what it saw) and the outcome, so a failure is replayed with the same seed. The truth is the
corpus oracle (``ingestor.corpus.reference``) for transcripts and what the SDK reports as
acknowledged for events; ``check_exact`` holds every table and materialized view to it, and
checks clickhouse-kafka-connect #771's invariant, ``count() == uniqExact(key)``, per table.

Faults that wipe the embedded broker's memory (``kill_tree``, ``restart_broker``) first let the
SDK's acknowledged events reach ClickHouse: transcripts are re-read from the files, but an event
lives only in the broker until stored, so losing one there is the cost measured separately
(``test_faults.py``, the in-flight test), not an inexactness of the pipeline.

The broker is a parameter (``BrokerUnderTest``): the embedded Tansu started by ``up`` today; a
real Kafka cluster plugs in with its own ``env`` and ``restart``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from pipeline import (
    calm_look,
    child_pid,
    daily_totals,
    free_port,
    report_totals,
    session_totals,
    wait_for,
)

from ingestor.clickhouse.engine import ClickHouse, open_clickhouse
from ingestor.corpus.generate import generate
from ingestor.corpus.reference import Reference
from ingestor.local.kafka import KafkaCluster
from ingestor.local.stack import worker_stats
from ingestor.plain_settings import ClickHouseTarget
from ingestor.report import ReportRequest, build
from ingestor.sdk import Tracker

FAULTS_DIR = Path(__file__).parent / "faults"  # sitecustomize.py, loaded by every child
SCENARIOS = (
    "kill_watcher",
    "kill_worker",
    "kill_tree",
    "restart_broker",
    "refuse_inserts",
    "disk_full",
)
SLOW_SCENARIOS = ("kill_tree", "restart_broker")
GUARD_SIGNS = ("never reached the agent", "below its high-watermark", "delivered nothing")
BATCH_MAX_ROWS = 1000
ENVELOPE_MAX = 500  # settings.envelope_max_records' default: one message's records
UNITS_EVENTS = 3  # one SDK unit: an agent step holding a prompt call and a tool call


# ---------------------------------------------------------------------- processes


def _brief(stats: dict[str, Any]) -> dict[str, Any]:
    """What ``quiet`` waits on, out of the worker's /stats."""
    keep = ("ready", "run_id", "behind", "pending_rows", "pending_messages", "counts")
    return {k: stats.get(k) for k in keep} if stats else {}


def rss_mb(pid: int) -> float:
    from ingestor.local.tansu import rss_bytes

    return (rss_bytes(pid) or 0) / 2**20


# ---------------------------------------------------------------------- brokers


class BrokerUnderTest(Protocol):
    """The broker a fault run uses. ``env``: what ``up`` needs to use it (nothing: ``up`` starts
    the embedded one); ``restart``: crash it mid-stream (``up`` is the running supervisor)."""

    name: str
    loses_memory: bool  # a restart wipes what it held (embedded Tansu: memory storage)

    def env(self) -> dict[str, str]: ...

    def restart(self, up: subprocess.Popen[bytes]) -> str: ...


class EmbeddedTansu:
    name = "tansu"
    loses_memory = True

    def env(self) -> dict[str, str]:
        return {}

    def restart(self, up: subprocess.Popen[bytes]) -> str:
        pid = child_pid(up.pid, "tansu")
        mb = rss_mb(pid)
        os.kill(pid, signal.SIGKILL)
        return f"kill -9 tansu pid {pid} ({mb:.0f} MB)"


class ApacheKafka:
    """One Apache Kafka broker (KRaft) of the test's own: ``up`` uses it as a configured broker
    (no embedded one, nothing restarted by ``up``); a restart is ``kill -9`` of the broker and a
    start on the same log, which keeps everything acknowledged."""

    name = "kafka"
    loses_memory = False

    def __init__(self, cluster: KafkaCluster) -> None:
        self.cluster = cluster

    def env(self) -> dict[str, str]:
        return {"INGESTOR_KAFKA_BOOTSTRAP": self.cluster.bootstrap}

    def restart(self, up: subprocess.Popen[bytes]) -> str:
        pid = self.cluster.pid(1)
        self.cluster.restart(1)
        return f"kill -9 kafka pid {pid}, started again on its log"


# ---------------------------------------------------------------------- SDK events


class EventPump(threading.Thread):
    """Tracks SDK "units" (a step with a prompt call and a tool call) until stopped; pausable
    between units."""

    def __init__(self, tracker: Tracker, *, per_s: float = 20.0, paused: bool = False) -> None:
        super().__init__(daemon=True)
        self.tracker, self.period = tracker, 1.0 / per_s
        self.units = 0
        self._halt = threading.Event()
        self._go = threading.Event()
        if not paused:
            self._go.set()
        self._idle = threading.Event()
        self._idle.set()

    def run(self) -> None:
        t = self.tracker
        while not self._halt.is_set():
            if not self._go.is_set():
                self._idle.set()
                self._go.wait(0.1)
                continue
            self._idle.clear()
            if not self._go.is_set():
                continue
            with t.step(f"step {self.units}"):
                with t.prompt("claude-sonnet-4-5", prompt="q") as call:
                    call.response("a", tokens_input=10, tokens_output=5, cost_usd=0.001)
                with t.tool("search"):
                    pass
            self.units += 1
            time.sleep(self.period)
        self._idle.set()

    def pause(self) -> None:
        self._go.clear()
        self._idle.wait(30)

    def resume(self) -> None:
        self._go.set()

    def finish(self) -> None:
        self._halt.set()
        self._go.set()
        self.join(30)


# ---------------------------------------------------------------------- the run


@dataclass
class Chaos:
    tmp: Path
    broker: BrokerUnderTest
    seed: int
    points: int
    lines: int = 12_000
    data_dir: Path | None = None  # a small tmpfs where the disk can really be filled
    scenarios: tuple[str, ...] = SCENARIOS
    log: list[str] = field(default_factory=list)
    pending_max: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        staging = self.tmp / "staging"
        generate(staging, lines=self.lines, seed=self.seed, odd_rate=0.01)
        self.reference = Reference.load(staging)
        self.staging = staging / "projects"
        self.files = sorted(self.staging.rglob("*.jsonl"))
        self.watch = self.tmp / "claude" / "projects"
        self.watch.mkdir(parents=True)
        data = self.data_dir or self.tmp / "data"
        self.refuse, self.enospc = self.tmp / "refuse-inserts", self.tmp / "disk-full"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("INGESTOR_")}
        self.env = {
            **clean,
            "INGESTOR_DATA_DIR": str(data),
            "INGESTOR_WEB_PORT": str(free_port()),
            "INGESTOR_BATCH_MAX_ROWS": str(BATCH_MAX_ROWS),
            "INGESTOR_BATCH_MAX_AGE_S": "0.3",
            "INGESTOR_BROKER_SESSION_TIMEOUT_S": "6",
            # A worker retries ~3 s before exit 75: outages of 2-5 s meet both its back-off
            # (consumption must pause, holding a bounded batch) and its restart.
            "INGESTOR_INSERT_RETRIES": "4",
            "INGESTOR_INSERT_BACKOFF_S": "0.2",
            "INGESTOR_RESTART_BACKOFF_S": "0.2",
            "INGESTOR_RESTART_BACKOFF_MAX_S": "2",
            "INGESTOR_RESTART_LIMIT": "1000",
            "PYTHONPATH": os.pathsep.join(
                [str(FAULTS_DIR), *filter(None, [clean.get("PYTHONPATH")])]
            ),
            "FAULT_REFUSE_WHILE": str(self.refuse),
            **({} if self.data_dir else {"FAULT_ENOSPC_WHILE": str(self.enospc)}),
            **self.broker.env(),
            # Faust pauses a partition whose stream buffer fills and resumes it as it drains:
            # a small buffer (INGESTOR_FAULT_STREAM_BUFFER) makes that happen all the time.
            "INGESTOR_WORKER_STREAM_BUFFER": os.environ.get("INGESTOR_FAULT_STREAM_BUFFER", "4096"),
        }
        self.up: subprocess.Popen[bytes] | None = None
        self.broker_restarts = 0

    @property
    def data(self) -> Path:
        return Path(self.env["INGESTOR_DATA_DIR"])

    def say(self, line: str) -> None:
        self.log.append(line)
        print(line, flush=True)

    # -------------------------------------------------------------- processes

    def start_up(self, *extra: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / "up.log", "ab")  # noqa: SIM115 - lives as long as the child
        return subprocess.Popen(
            [sys.executable, "-m", "ingestor.cli.main", "up", str(self.watch), *extra],
            env=self.env,
            cwd=self.tmp,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill_tree kills it whole
        )

    def stats(self) -> dict[str, Any]:
        return worker_stats("127.0.0.1", self.env["INGESTOR_WEB_PORT"], timeout_s=5)

    def watcher_done(self) -> bool:
        """The watcher's stats file says it is idle with every file of the corpus read."""
        try:
            stats = json.loads((self.data / "watch-stats.json").read_text())
        except (OSError, ValueError):
            return False
        done = stats.get("bytes_done") == stats.get("bytes_total")
        return bool(stats.get("idle")) and done and stats.get("files") == len(self.files)

    def events_stored(self) -> int | None:
        """Events ClickHouse holds for the pump's project, asked of the running worker."""
        url = f"http://127.0.0.1:{self.env['INGESTOR_WEB_PORT']}/report/projects/"
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                body = json.loads(reply.read())
        except (OSError, ValueError):
            return None
        return sum(int(p["events"]) for p in body.get("projects", []) if p["projectId"] == "chaos")

    def quiet(self, events: int | None = None, timeout_s: float = 180) -> None:
        """Until the worker has stored everything the broker holds: ``events`` SDK events stored
        (when given), behind nothing, nothing pending, and the same message count on two looks a
        second apart. (``behind`` alone can read 0 before a new worker fetched a partition.)"""
        previous: list[Any] = [None]
        seen: dict[str, Any] = {}  # the last look, for the failure message

        def settled() -> bool:
            s = self.stats()
            calm = calm_look(s, previous)
            seen.update(stats=_brief(s), events_wanted=events)
            if calm and events is not None:
                seen["events_stored"] = stored = self.events_stored()
                calm = stored == events
            if not calm:
                time.sleep(0.8)
            return bool(calm)

        try:
            wait_for(settled, timeout_s=timeout_s, what="the worker to store what the broker holds")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last look: {seen}\n{self.log_tails()}") from None

    def log_tails(self, lines: int = 25) -> str:
        """The end of each process's log, and every warning or error in it: what a failure in CI
        (whose data dir is gone) is diagnosed from."""
        out = []
        for log in (self.tmp / "up.log", *sorted((self.data / "logs").glob("*.log"))):
            try:
                text = log.read_text(errors="replace").splitlines()
            except OSError:
                continue
            # Ours (aiokafka's connection errors while a broker restarts would drown them).
            loud = [x for x in text if re.search(r" (WARNING|ERROR|CRITICAL) (ingestor|mode)", x)]
            out.append(f"--- {log.name}: {len(loud)} warnings/errors (last 15), then its end")
            out += [*loud[-15:], "  ...", *text[-lines:]]
        return "\n".join(out)

    # -------------------------------------------------------------- faults

    def feed(self, upto: int) -> None:
        """Move the first ``upto`` files (of those not moved yet) into the watched tree, whole."""
        for src in self.files[:upto]:
            if src.exists():
                dst = self.watch / src.relative_to(self.staging)
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)

    def plan(self) -> list[str]:
        """The faults, in order: with ``points`` at least the number of scenarios each one at
        least once (a short run still meets all of them), the rest drawn at random (in a short
        run from those that cost no restart of ``up`` or the broker, ~15 s each)."""
        chosen = list(self.scenarios) if self.points >= len(self.scenarios) else []
        pool = self.scenarios
        if self.points < 2 * len(self.scenarios):  # a short run: the rest from the quick ones
            pool = tuple(x for x in pool if x not in SLOW_SCENARIOS) or pool
        chosen += [self.rng.choice(pool) for _ in range(self.points - len(chosen))]
        self.rng.shuffle(chosen)
        return chosen

    def inject(self, what: str, pump: EventPump, tracker: Tracker) -> str:
        assert self.up is not None
        if what == "kill_watcher":
            pid = child_pid(self.up.pid, "watch")
            os.kill(pid, signal.SIGKILL)
            return f"kill -9 watcher pid {pid}"
        if what == "kill_worker":
            pid = child_pid(self.up.pid, "worker")
            os.kill(pid, signal.SIGKILL)
            return f"kill -9 worker pid {pid}"
        if what in ("kill_tree", "restart_broker"):
            # The broker's memory goes: let acknowledged SDK events reach ClickHouse first.
            pump.pause()
            try:
                assert tracker.flush(60), tracker.stats()
                self.quiet(events=tracker.stats().sent)
                if what == "kill_tree":
                    os.killpg(self.up.pid, signal.SIGKILL)
                    self.up.wait()
                    self.up = self.start_up()
                    return "kill -9 the whole up tree, then up again"
                done = self.broker.restart(self.up)
                self.broker_restarts += 1
                return done
            finally:
                pump.resume()
        if what in ("refuse_inserts", "disk_full"):
            return self._storage_outage(what)
        raise AssertionError(what)

    def _storage_outage(self, what: str) -> str:
        hold = self.rng.uniform(1.5, 4.0)
        ballast = self.data / "ballast"
        if what == "refuse_inserts":
            self.refuse.touch()
            how = "ClickHouse refuses inserts"
        elif self.data_dir is not None:
            free = shutil.disk_usage(self.data).free
            with open(ballast, "wb") as f, contextlib.suppress(OSError):
                os.posix_fallocate(f.fileno(), 0, free)
            how = f"data dir's tmpfs filled ({free // 2**20} MB ballast)"
        else:
            self.enospc.touch()
            how = "ENOSPC injected"
        pending = 0
        try:
            end = time.monotonic() + hold
            while time.monotonic() < end:
                pending = max(pending, int(self.stats().get("pending_rows") or 0))
                time.sleep(0.2)
        finally:
            for flag in (self.refuse, self.enospc, ballast):
                flag.unlink(missing_ok=True)
        self.pending_max = max(self.pending_max, pending)
        return f"{how} for {hold:.1f}s (pending rows at most {pending})"

    # -------------------------------------------------------------- the run

    def run(self) -> tuple[int, int]:
        """The whole scenario; returns (SDK units tracked, events acknowledged)."""
        self.say(
            f"fault run: broker={self.broker.name} seed={self.seed} points={self.points} "
            f"lines={self.lines} files={len(self.files)} scenarios={','.join(self.scenarios)}"
        )
        os.environ["INGESTOR_DATA_DIR"] = self.env["INGESTOR_DATA_DIR"]  # the SDK finds up here
        tracker = Tracker(
            project_id="chaos", user_id="u1", session_id="s1", linger_s=0.05,
            backoff_min_s=0.1, backoff_max_s=1.0, request_timeout_s=5, topic="ingestor.events",
        )  # fmt: skip
        pump = EventPump(tracker)
        self.up = self.start_up()
        started = time.monotonic()
        try:
            wait_for(lambda: self.stats().get("ready"), timeout_s=120, what="the worker ready")
            pump.start()
            chunk = -(-len(self.files) // (self.points + 1))
            plan = self.plan()
            for point, what in enumerate(plan):
                self.feed(chunk * (point + 1))
                time.sleep(self.rng.uniform(0.2, 2.0))
                at = time.monotonic() - started
                stored = self.stats().get("counts", {}).get("rows_stored", "?")
                done = self.inject(what, pump, tracker)
                self.say(f"  #{point + 1:02d} t={at:5.1f}s stored={stored}: {what}: {done}")
            self.feed(len(self.files))
            pump.finish()
            finishing = time.monotonic()
            assert tracker.flush(120), tracker.stats()
            # What `up --once` waits for: the watcher idle over every file, then the worker
            # caught up with everything it sent.
            wait_for(self.watcher_done, timeout_s=180, what="the watcher to read every file")
            self.quiet(events=tracker.stats().sent)
            self.up.send_signal(signal.SIGTERM)
            assert self.up.wait(timeout=60) == 0
            self.say(f"  finish: {time.monotonic() - finishing:.0f}s to store and stop")
        finally:
            pump.finish()
            if self.up is not None and self.up.poll() is None:
                os.killpg(self.up.pid, signal.SIGKILL)
                self.up.wait()
            tracker.close(5)
            os.environ.pop("INGESTOR_DATA_DIR", None)
        stats = tracker.stats()
        assert (stats.dropped, stats.failed) == (0, 0), stats
        assert stats.sent == pump.units * UNITS_EVENTS, (stats, pump.units)
        try:
            log = (self.data / "logs" / "worker.log").read_text(errors="replace")
        except OSError:
            log = ""
        # The worker's guard against Faust's skipped records (restarts in place): each one is a
        # hole that would have been lost without it.
        guarded = sum(log.count(sign) for sign in GUARD_SIGNS)
        self.say(
            f"fault run done in {time.monotonic() - started:.0f}s: {pump.units} SDK units "
            f"({stats.sent} events acknowledged, {stats.retried} envelopes retried), "
            f"{self.broker_restarts} broker restarts, pending rows at most {self.pending_max}, "
            f"{guarded} Faust skips caught by the worker's guard"
        )
        return pump.units, stats.sent

    def clickhouse(self) -> ClickHouse:
        return open_clickhouse(
            ClickHouseTarget(kind="chdb", database="ingestor", path=self.data / "clickhouse")
        )


# ---------------------------------------------------------------------- the truth


def check_exact(ch: ClickHouse, reference: Reference, units: int) -> list[str]:
    """What differs from the truth in every table and materialized view ([] when exact)."""
    wrong: list[str] = []

    def expect(what: str, got: Any, want: Any) -> None:
        if got != want:
            wrong.append(f"{what}: {got!r} != {want!r}")

    def one(sql: str) -> Any:
        [row] = ch.query(sql)
        return row if len(row) > 1 else row[0]

    acc = reference.accounting
    daily = report_totals(build(ch, ReportRequest("daily")))
    expect("daily report", daily, daily_totals(reference))
    line_key = "(source_file, source_generation, source_offset)"
    dead_key = (
        "(kind, source_file, source_generation, source_offset, topic, partition, offset, idx)"
    )
    for table, key, want in (
        ("transcript_lines", line_key, acc.valid),
        ("dead_letters", dead_key, acc.invalid),
    ):
        # Replacing tables: a replayed row replaces itself, so FINAL is the count; #771's check is
        # that it equals the distinct keys, and both equal the truth.
        got = one(f"SELECT (SELECT count() FROM {table} FINAL), uniqExact({key}) FROM {table}")
        expect(f"{table} count FINAL, uniqExact(key)", tuple(got), (want, want))
    summaries = {
        row[0]: tuple(row[1:])
        for row in ch.query(
            "SELECT session_id, input_tokens, output_tokens, cache_creation_tokens, "
            "cache_read_tokens, cost_usd, messages FROM session_summaries FINAL WHERE messages > 0"
        )
    }
    expect("session_summaries", summaries, session_totals(reference))
    # Event tables: the sink drops ids already stored, so even without FINAL no id is twice.
    for table, want in (
        ("events", units * UNITS_EVENTS),
        ("tool_calls", units),
        ("agent_steps", units),
    ):
        got = one(f"SELECT count(), uniqExact(event_id) FROM {table}")
        expect(f"{table} count(), uniqExact(event_id)", tuple(got), (want, want))
    by_type = dict(ch.query("SELECT event_type, count() FROM events GROUP BY event_type"))
    for view in ("hourly_metrics", "daily_metrics"):
        got = dict(ch.query(f"SELECT event_type, sum(events) FROM {view} GROUP BY event_type"))
        expect(f"{view} events by type", got, by_type)
        tokens = one(f"SELECT sum(tokens_input), sum(cost_usd) FROM {view}")
        expect(f"{view} tokens, cost", tuple(tokens), (units * 10, Decimal("0.001") * units))
    for period in ("daily", "weekly", "monthly", "yearly"):
        got = one(f"SELECT sum(prompt_calls), sum(tokens_input) FROM user_usage_{period}")
        expect(f"user_usage_{period}", tuple(got), (units, units * 10))
    return wrong


def tmpfs(path: Path, size_mb: int) -> Callable[[], None] | None:
    """Mount a tmpfs of ``size_mb`` at ``path`` (root only); returns the unmount, or None."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return None
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    return lambda: subprocess.run(["umount", "-l", str(path)], check=False)
