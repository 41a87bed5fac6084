"""``ingestor up [DIR...]``: the main job — everything needed to go from transcripts to reports.

1. start the embedded Tansu broker unless ``INGESTOR_KAFKA_BOOTSTRAP`` names one;
2. apply the ClickHouse schema (chdb under the data dir unless ``INGESTOR_CLICKHOUSE_URL``);
3. on a fresh embedded broker (its memory is gone after any restart) recover from what ClickHouse
   durably holds: the watcher resumes each file after the last line stored, and the Faust session
   table is re-seeded;
4. create the topics, run the worker and the watcher as child processes (two cores, two
   processes), show progress, and stop everything cleanly on Ctrl-C.

A worker or watcher that dies, for whatever reason, is restarted with backoff
(``local/restarts.py``); the worker's dead-letter limit (exit 65) is final. Everything that opens
ClickHouse runs in a child process, so this supervisor stays small (no chdb, no Faust). SIGTERM
or Ctrl-C stops the tree within ``STOP_GRACE_S`` (the worker bounds its own stop:
``worker/stop.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingestor.local.restarts import RestartPolicy
from ingestor.settings import Settings, default_watch_dirs, load_settings
from ingestor.worker.exits import FINAL

__all__ = ["register"]

WATCH_STATS = "watch-stats.json"
STOP_GRACE_S = 4.0  # SIGTERM to SIGKILL for the children; the whole stop stays under 5 s


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
        stack.callback(_publish_bootstrap(settings.data_dir, bootstrap))
        kind = " (embedded Tansu)" if fresh else ""
        _say(f"broker {bootstrap}{kind}; clickhouse {settings.clickhouse}")
        for d in dirs:
            _say(f"watching {d}" + ("" if d.is_dir() else " (does not exist yet)"))
        run = RunRecord(mode="once" if args.once else "follow")
        if _in_child(_prepare, bootstrap, fresh, run) != 0:
            _say("could not prepare ClickHouse and the topics (see above)")
            return 1
        status = _supervise(settings, bootstrap, fresh, dirs, once=args.once, run=run)
        if _in_child(_finish, run, status) != 0:
            _say("could not record the run in ingest_runs (see above)")
        return status


def _publish_bootstrap(data_dir: Path, bootstrap: str) -> Any:
    """Write the broker's address where ``ingestor.sdk`` looks for it while ``up`` runs; returns
    the clean-up (which leaves a newer ``up``'s file alone)."""
    from ingestor.sdk import BOOTSTRAP_FILE

    path = data_dir / BOOTSTRAP_FILE
    tmp = path.with_name(f".{BOOTSTRAP_FILE}.{os.getpid()}")
    tmp.write_text(bootstrap + "\n")
    os.replace(tmp, path)

    def remove() -> None:
        with contextlib.suppress(OSError):
            if path.read_text().strip() == bootstrap:
                path.unlink()

    return remove


def _in_child(target: Any, *args: Any) -> int | None:
    """``target(*args)`` in a fresh interpreter: chdb and its memory go away with it."""
    child = multiprocessing.get_context("spawn").Process(target=target, args=args)
    child.start()
    child.join()
    return child.exitcode


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


def _finish(run: RunRecord, status: int) -> None:
    from ingestor.sink.engine import open_clickhouse

    settings = load_settings()
    # The worker has stopped, so this process may open the embedded engine again.
    with open_clickhouse(settings.clickhouse) as ch:
        error = "" if status == 0 else f"exit status {status}"
        ch.insert("ingest_runs", [run.row("ok" if status == 0 else "failed", True, error)])


def _prepare(bootstrap: str, fresh: bool, run: RunRecord) -> None:
    from ingestor.kafka.topics import create_topics
    from ingestor.producer.checkpoint import Checkpoint, default_checkpoint_path
    from ingestor.sink.engine import open_clickhouse
    from ingestor.sink.migrations import apply_schema
    from ingestor.sink.positions import file_positions
    from ingestor.worker.restore import session_seeds
    from ingestor.worker.seed import seed_sessions

    settings = load_settings()
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


class _Child:
    """A worker or watcher process, restarted by ``_supervise`` under its ``RestartPolicy``."""

    def __init__(self, name: str, args: list[str], log: Path, policy: RestartPolicy) -> None:
        self.name, self.args, self.log, self.policy = name, args, log, policy
        self.proc = self._spawn()
        self.restart_at: float | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.policy.started()
        self.started_at = time.time()
        return _spawn(self.args, self.log)

    def restart(self) -> None:
        self.proc, self.restart_at = self._spawn(), None


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
    stop = threading.Event()

    def on_signal(*_: Any) -> None:
        stop.set()  # Ctrl-C reaches the children too: their exit is expected then

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def policy() -> RestartPolicy:
        return RestartPolicy(
            limit=settings.restart_limit,
            base_s=settings.restart_backoff_s,
            max_s=settings.restart_backoff_max_s,
            clock=time.monotonic,
        )

    children: list[_Child] = []
    status = 0
    try:
        worker = _Child("worker", worker_args, logs / "worker.log", policy())
        children.append(worker)
        # The watcher starts once the worker consumes: a Faust group that starts on data already
        # waiting can skip records (the worker guards against it, but only by restarting).
        _wait_ready(settings, worker.proc, stop)
        if not stop.is_set():
            children.append(_Child("watcher", watch_args, logs / "watch.log", policy()))
        last_print = 0.0
        was_done: int | None = None
        while not stop.wait(0.5):
            verdict = _tend(children)
            if verdict is not None:
                status = verdict
                break
            now = time.monotonic()
            if now - last_print >= (1.0 if sys.stdout.isatty() else 5.0):
                last_print = now
                watcher = children[-1]
                line, done = _progress(settings, run.progress, since=watcher.started_at)
                _say(line, overwrite=sys.stdout.isatty())
                # Twice in a row, nothing new in between: a high-watermark seen by the worker
                # may be older than the watcher's last send.
                if once and done is not None and done == was_done:
                    break
                was_done = done
    finally:
        _stop_children([c.proc for c in reversed(children)])
        print()
    return status


def _tend(children: list[_Child]) -> int | None:
    """Restart children that died and are due; an exit status for up when it must give up."""
    now = time.monotonic()
    for child in children:
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.restart()
            continue
        code = child.proc.poll()
        if code is None:
            continue
        what = f"{child.name} exited with {_describe(code)}"
        if child.name == "worker" and code in FINAL:
            _say(f"{what}: the input needs a look (see {child.log}); stopping")
            return code
        delay = child.policy.next_delay()
        if delay is None:
            _say(
                f"{what}, {child.policy.failures} restarts in a row did not help; giving up "
                f"(see {child.log})"
            )
            return code or 1
        _say(f"{what}; restart {child.policy.failures}/{child.policy.limit} in {delay:.0f}s")
        child.restart_at = now + delay
    return None


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"status {code}"


def _stop_children(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, then SIGKILL after ``STOP_GRACE_S``; returns once every child is gone."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()  # reaped: the embedded ClickHouse is free for _finish


def _wait_ready(
    settings: Settings,
    worker: subprocess.Popen[bytes],
    stop: threading.Event,
    timeout_s: float = 180,
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and worker.poll() is None and not stop.is_set():
        with contextlib.suppress(OSError, ValueError):
            url = f"http://{settings.web_host}:{settings.web_port}/stats/"
            with urllib.request.urlopen(url, timeout=1) as reply:
                if json.loads(reply.read()).get("ready"):
                    return
        stop.wait(0.3)


def _progress(
    settings: Settings, progress: dict[str, int], *, since: float
) -> tuple[str, int | None]:
    """The progress line, and when everything present is stored the worker's message count
    (else None). ``since``: when the current watcher started; older stats are a dead one's."""
    watch: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        path = settings.data_dir / WATCH_STATS
        if path.stat().st_mtime >= since:
            watch = json.loads(path.read_text())
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
    # Counters restart with their process, so after a restart "processed" can stay below "read":
    # what is present is stored when the watcher is idle and the worker is behind nothing.
    idle = bool(watch.get("idle")) and stats.get("behind") == 0
    done = idle and pending == 0 and not stats.get("pending_messages")
    return line, (int(counts.get("messages", 0)) if done else None)


_LINE_OUTCOMES = ("counted", "replaced", "duplicate", "replay", "no_usage", "dead_letter")


def _say(text: str, *, overwrite: bool = False) -> None:
    if overwrite:
        sys.stdout.write("\r\033[K" + text)
        sys.stdout.flush()
    else:
        print(text, flush=True)
