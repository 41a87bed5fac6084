"""``ingestor up [DIR...]``: the main job — everything needed to go from transcripts to reports.

1. start the embedded Tansu broker unless ``INGESTOR_KAFKA_BOOTSTRAP`` names one;
2. apply the ClickHouse schema (chdb under the data dir unless ``INGESTOR_CLICKHOUSE_URL``);
3. on a fresh embedded broker (its memory is gone after any restart) recover from what ClickHouse
   durably holds: the watcher resumes each file after the last line stored, and the Faust session
   table is re-seeded;
4. create the topics, run the worker and the watcher as child processes (two cores, two
   processes), show progress, and stop everything cleanly on Ctrl-C.

A worker that exits because ClickHouse stayed unavailable is restarted: its batch is re-delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingestor.settings import Settings, default_watch_dirs, load_settings
from ingestor.worker.app import RESTARTABLE

__all__ = ["register"]

WATCH_STATS = "watch-stats.json"


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "up", help="run the whole pipeline on the embedded stack (or configured servers)"
    )
    p.add_argument("dirs", nargs="*", type=Path, help="directories to watch (default: Claude's)")
    p.add_argument("--once", action="store_true", help="stop once every existing line is stored")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    dirs = [d.expanduser().resolve() for d in (args.dirs or default_watch_dirs())]
    with contextlib.ExitStack() as stack:
        fresh = settings.uses_local_broker
        if fresh:
            from ingestor.local.tansu import TansuBroker

            broker = stack.enter_context(TansuBroker.from_settings(settings))
            bootstrap = broker.bootstrap
        else:
            assert settings.kafka_bootstrap is not None
            bootstrap = settings.kafka_bootstrap
        kind = " (embedded Tansu)" if fresh else ""
        _say(f"broker {bootstrap}{kind}; clickhouse {settings.clickhouse}")
        for d in dirs:
            _say(f"watching {d}" + ("" if d.is_dir() else " (does not exist yet)"))
        run = RunRecord(mode="once" if args.once else "follow")
        _prepare(settings, bootstrap, fresh, run)
        status = _supervise(settings, bootstrap, fresh, dirs, once=args.once, run=run)
        _finish(settings, run, status)
        return status


@dataclass
class RunRecord:
    """One row of ``ingest_runs`` (seed 000's run metadata), rewritten as the run ends."""

    mode: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    progress: dict[str, int] = field(default_factory=dict)

    def row(self, status: str, finished: bool = False, error: str = "") -> dict[str, Any]:
        from importlib.metadata import version

        return {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": datetime.now(UTC) if finished else None,
            "host": socket.gethostname(),
            "version": version("ingestor"),
            "mode": self.mode,
            "status": status,
            "files_scanned": self.progress.get("files", 0),
            "lines_read": self.progress.get("lines_read", 0),
            "records_stored": self.progress.get("rows_stored", 0),
            "dead_letters": self.progress.get("dead_letters", 0),
            "error": error,
            "updated_at": datetime.now(UTC),
        }


def _finish(settings: Settings, run: RunRecord, status: int) -> None:
    from ingestor.sink.engine import open_clickhouse

    # The worker has stopped, so this process may open the embedded engine again.
    with open_clickhouse(settings.clickhouse) as ch:
        error = "" if status == 0 else f"exit status {status}"
        ch.insert("ingest_runs", [run.row("ok" if status == 0 else "failed", True, error)])


def _prepare(settings: Settings, bootstrap: str, fresh: bool, run: RunRecord) -> None:
    from ingestor.kafka.topics import create_topics
    from ingestor.producer.checkpoint import Checkpoint, default_checkpoint_path
    from ingestor.sink.engine import open_clickhouse
    from ingestor.sink.migrations import apply_schema
    from ingestor.sink.positions import file_positions
    from ingestor.worker.restore import session_seeds
    from ingestor.worker.seed import seed_sessions

    # chdb allows one process per data dir: this one closes it before the worker opens it.
    ch = open_clickhouse(settings.clickhouse)
    try:
        applied = apply_schema(ch)
        if applied:
            _say(f"schema: applied {', '.join(applied)}")
        ch.insert("ingest_runs", [run.row("running")])
        positions = file_positions(ch) if fresh else None
        seeds = session_seeds(ch) if fresh else []
        if seeds:
            # A crash can leave summary rows behind the lines stored: rewrite them from the truth.
            version = time.time_ns()
            ch.insert("session_summaries", [agg.summary_row(version) for _, agg in seeds])
    finally:
        ch.close()
    asyncio.run(create_topics(settings, bootstrap))
    if seeds:
        asyncio.run(seed_sessions(settings, bootstrap, seeds))
    if positions is not None:
        checkpoint = Checkpoint.load(default_checkpoint_path(settings))
        checkpoint.override(positions)
        checkpoint.save()
        _say(f"resuming from ClickHouse: {len(positions)} file(s), {len(seeds)} session(s)")


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    from ingestor.local.tansu import die_with_parent_hook

    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "ingestor.cli.main", *args],
            preexec_fn=die_with_parent_hook(),
            env=os.environ.copy(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _supervise(
    settings: Settings, bootstrap: str, fresh: bool, dirs: list[Path], *, once: bool, run: RunRecord
) -> int:
    worker_args = ["worker", "--bootstrap", bootstrap, "--loglevel", "info"]
    worker_args += ["--tansu"] if fresh else []
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    _say(f"logs in {logs}/; worker HTTP on http://{settings.web_host}:{settings.web_port}/")
    watch_args = [
        "watch",
        "--bootstrap",
        bootstrap,
        "--stats",
        str(settings.data_dir / WATCH_STATS),
    ]
    watch_args += [str(d) for d in dirs]
    worker = _spawn(worker_args, logs / "worker.log")
    # The watcher starts once the worker consumes: a Faust group that starts on data already
    # waiting can skip records (the worker guards against it, but only by restarting).
    _wait_ready(settings, worker)
    watcher = _spawn(watch_args, logs / "watch.log")
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    restarts = 0
    last_print = 0.0
    status = 0
    try:
        while not stopping:
            time.sleep(0.5)
            if stopping:  # Ctrl-C reaches the children too: their exit is expected then
                break
            if worker.poll() is not None:
                if worker.returncode in RESTARTABLE and restarts < 5:
                    restarts += 1
                    _say(
                        f"worker exited ({worker.returncode}) for re-delivery; restart {restarts}/5"
                    )
                    time.sleep(min(30, 2**restarts))
                    worker = _spawn(worker_args, logs / "worker.log")
                    continue
                _say(f"worker exited with {worker.returncode}")
                status = worker.returncode or 1
                break
            if watcher.poll() is not None:
                _say(f"watcher exited with {watcher.returncode}")
                status = watcher.returncode or 1
                break
            now = time.monotonic()
            if now - last_print >= (1.0 if sys.stdout.isatty() else 5.0):
                last_print = now
                line, done = _progress(settings, run.progress)
                _say(line, overwrite=sys.stdout.isatty())
                if once and done:
                    break
    finally:
        for child in (watcher, worker):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in (watcher, worker):
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        print()
    return status


def _wait_ready(
    settings: Settings, worker: subprocess.Popen[bytes], timeout_s: float = 180
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and worker.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            url = f"http://{settings.web_host}:{settings.web_port}/stats/"
            with urllib.request.urlopen(url, timeout=1) as reply:
                if json.loads(reply.read()).get("ready"):
                    return
        time.sleep(0.3)


def _progress(settings: Settings, progress: dict[str, int]) -> tuple[str, bool]:
    watch: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        watch = json.loads((settings.data_dir / WATCH_STATS).read_text())
    stats: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        url = f"http://{settings.web_host}:{settings.web_port}/stats/"
        with urllib.request.urlopen(url, timeout=1) as reply:
            stats = json.loads(reply.read())
    counts = stats.get("counts", {})
    read = int(watch.get("lines_read", 0))
    processed = sum(int(counts.get(k, 0)) for k in _LINE_OUTCOMES)
    stored = int(counts.get("rows_stored", 0))
    dead = int(counts.get("dead_letter", 0))
    lag = max(0, read - processed)
    pending = int(stats.get("pending_rows", 0))
    progress.update(
        files=int(watch.get("files", 0)), lines_read=read, rows_stored=stored, dead_letters=dead
    )
    line = (
        f"files {watch.get('files', 0)}  lines read {read}  processed {processed}  "
        f"rows stored {stored}  dead letters {dead}  lag {lag}"
    )
    idle = bool(watch.get("idle")) and processed >= read
    done = idle and bool(stats) and pending == 0 and not stats.get("pending_messages")
    return line, done


_LINE_OUTCOMES = ("counted", "replaced", "duplicate", "replay", "no_usage", "dead_letter")


def _say(text: str, *, overwrite: bool = False) -> None:
    if overwrite:
        sys.stdout.write("\r\033[K" + text)
        sys.stdout.flush()
    else:
        print(text, flush=True)
