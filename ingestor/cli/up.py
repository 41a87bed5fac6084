"""``ingestor up [DIR...]``: the main job — everything needed to go from transcripts to reports.

1. start the embedded Tansu broker unless ``INGESTOR_KAFKA_BOOTSTRAP`` names one;
2. apply the ClickHouse schema (chdb under the data dir unless ``INGESTOR_CLICKHOUSE_URL``);
3. on a fresh embedded broker (its memory is gone after any restart) recover from what ClickHouse
   durably holds: the watcher resumes each file after the last line stored, and the Faust session
   table and the budget windows are re-seeded;
4. create the topics (on a fresh embedded broker, form the worker's group too: its join is then
   answered at once, ``local/compat.py``), run the worker and the watcher as child processes
   (two cores, two processes), show progress, and stop everything cleanly on Ctrl-C.

Steps 2-3 run in one child, the keeper, which stays to record the run once it ended; the worker
and the watcher load their modules meanwhile, held until ClickHouse is ready (worker) and the
worker consumes (watcher).

A worker or watcher that dies, for whatever reason, is restarted with backoff
(``local/restarts.py``); the worker's dead-letter limit (exit 65) is final. The children are
spawned, awaited and stopped as the test harness and the benchmarks do it (``local/stack.py``).
Everything that opens ClickHouse runs in a child process, so this supervisor stays small (no
chdb, no Faust). SIGTERM or Ctrl-C stops the tree within ``STOP_GRACE_S`` (the worker bounds
its own stop: ``worker/stop.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingestor.cli.checks import check_data_dir, check_port, check_watch_dirs
from ingestor.cli.common import exit_at_once
from ingestor.cli.display import Display
from ingestor.cli.progress import Rate, Snapshot, Tally, eta
from ingestor.local.pidlock import PidLock
from ingestor.local.recycle import BrokerAction, BrokerRecycle
from ingestor.local.restarts import RestartPolicy
from ingestor.local.stack import release, spawn_ingestor, stop_processes, wait_ready, worker_stats
from ingestor.settings import Settings, default_watch_dirs, load_settings
from ingestor.worker.exits import FINAL

if TYPE_CHECKING:
    from ingestor.local.tansu import TansuBroker

__all__ = ["register"]

WATCH_STATS = "watch-stats.json"
STOP_GRACE_S = 4.0  # SIGTERM to SIGKILL for the children; the whole stop stays under 5 s
TICK_S = 0.1  # the supervisor's loop: children's exits, signals
LOOK_S = 0.25  # progress shown and `--once`'s end judged (twice in a row: two looks)
# `--once`'s second look: a tick later, the time the worker's idle fetch waits on the embedded
# broker (compat.TANSU_FETCH_MAX_WAIT_MS), so its view of the end offsets is renewed.
CONFIRM_S = TICK_S
READY_POLL_S = 0.05  # the worker's /stats/ asked whether it is ready (the watcher waits on it)
READY_TIMEOUT_S = 180.0  # then the watcher starts anyway


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "up",
        help="the main job: ingest transcripts into ClickHouse and keep following them",
        description="Start the embedded Kafka broker (Tansu) unless INGESTOR_KAFKA_BOOTSTRAP names "
        "one, apply the ClickHouse schema, then run the worker and the file watcher, showing "
        "progress. Data goes to the data dir (INGESTOR_DATA_DIR; default the platform's user data "
        "dir, ~/.local/share/ingestor on Linux): the embedded ClickHouse, the watcher's checkpoint "
        "and logs/. The worker's HTTP views (the dashboard at /) listen on "
        "INGESTOR_WEB_HOST:INGESTOR_WEB_PORT (default 127.0.0.1:6066). Stop with Ctrl-C (or "
        "SIGTERM); run `ingestor up` again to resume where it stopped. While it runs, "
        "`ingestor report daily` answers from it.",
    )
    p.add_argument(
        "dirs",
        nargs="*",
        type=Path,
        help="directories to watch (default: ~/.claude/projects, or each projects/ under "
        "$CLAUDE_CONFIG_DIR)",
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="stop once every line present is stored (default: keep following new lines)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    dirs = [d.expanduser().resolve() for d in (args.dirs or default_watch_dirs())]
    status, _ = run_stack(dirs, once=args.once)
    return status


@dataclass(frozen=True)
class Window:
    """A date-filtered backfill (``cli/backfill.py``): line times ``since_ms``..``until_ms``."""

    since_ms: int | None
    until_ms: int | None


def run_stack(
    dirs: list[Path], *, once: bool, mode: str | None = None, window: Window | None = None
) -> tuple[int, RunRecord]:
    """The embedded stack over ``dirs`` until stopped (or, ``once``, until all is stored).

    With ``window``, only lines in it are sent, the watcher keeps its positions in a checkpoint
    of its own (``BACKFILL_CHECKPOINT``, started from the live one at offset 0) and the worker
    writes no ``file_positions``: the live watcher's resume points stay what they were.
    """
    settings = load_settings()
    check_data_dir(settings.data_dir)
    warnings = check_watch_dirs(dirs, once=once)
    run = RunRecord(mode=mode or ("once" if once else "follow"))
    with contextlib.ExitStack() as stack:
        stack.enter_context(PidLock(settings.data_dir))
        check_port(settings.web_host, settings.web_port)
        display = stack.enter_context(Display())
        say = display.say
        fresh = settings.uses_local_broker
        broker: TansuBroker | None = None
        if fresh:
            from ingestor.local.tansu import TansuBroker

            broker = stack.enter_context(TansuBroker.from_settings(settings))
            bootstrap = broker.bootstrap
        else:
            assert settings.kafka_bootstrap is not None
            bootstrap = settings.kafka_bootstrap
        kind = " (embedded Tansu)" if fresh else ""
        say(f"broker {bootstrap}{kind}; clickhouse {settings.clickhouse}")
        for d in dirs:
            say(f"watching {d}")
        for warning in warnings:
            say(warning)
        extra_worker = ["--no-positions"] if window is not None else []
        # First: preparing ClickHouse is the longest way to a ready worker.
        keeper: _Keeper | None = stack.enter_context(_Keeper(bootstrap, fresh, run))
        # The worker loads its modules while the schema is prepared, and waits to open ClickHouse
        # (one process at a time) until told: a second of the fixed cost.
        early = _Child(
            "worker", _worker_args(bootstrap, fresh, extra_worker), _logs(settings) / "worker.log"
        )
        # The watcher too: held until the worker is ready, it reads nothing before then.
        early_watcher = _Child(
            "watcher", _watch_args(settings, bootstrap, dirs, window), _logs(settings) / "watch.log"
        )
        # When up stops before supervising them.
        stack.callback(_stop_children, [early_watcher.proc, early.proc])

        def prepare() -> bool:
            nonlocal keeper
            if keeper is None:  # the last one could not
                keeper = stack.enter_context(_Keeper(bootstrap, fresh, run))
            if keeper.prepared():
                return True
            keeper = None
            return False

        if not _prepare_retrying(settings, say, threading.Event(), prepare):
            say("could not prepare ClickHouse and the topics (see above)")
            return 1, run
        assert keeper is not None
        finisher = keeper
        # Published once the topics exist: Tansu would acknowledge, and lose, a record sent to a
        # topic it does not have yet (see TansuBroker.restart).
        published = _Broker(broker, bootstrap)
        published.publish(settings.data_dir)
        stack.callback(lambda: published.unpublish())
        status, stopped = _supervise(
            settings,
            published,
            dirs,
            once=once,
            run=run,
            display=display,
            early=early,
            early_watcher=early_watcher,
            window=window,
            extra_worker=extra_worker,
        )
        display.close()
        if finisher.finish(run, status, stopped) != 0:
            print("could not record the run in ingest_runs (see above)", flush=True)
        return status, run


BACKFILL_CHECKPOINT = "backfill-checkpoint.json"


def _backfill_checkpoint(settings: Settings) -> None:
    """Write a filtered backfill's own checkpoint: the live one's files and generations at
    offset 0 (so its lines are stored under the generation the live watcher knows). The live
    checkpoint is not touched."""
    from ingestor.producer.checkpoint import Checkpoint, default_checkpoint_path

    live = Checkpoint.load(default_checkpoint_path(settings))
    path = settings.data_dir / BACKFILL_CHECKPOINT
    own = Checkpoint(path)
    for file in live:
        position = live.get(file)
        assert position is not None
        own.set(file, dataclasses.replace(position, offset=0))
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    own.save()


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


class _Keeper:
    """``_prepare``, then ``_finish`` once the run ended, in one fresh interpreter: chdb and the
    report code load once, while the worker and the watcher load theirs, and the run's end
    follows at once. It closes ClickHouse before it says it prepared (the worker opens it
    next) and opens it again only once told to finish, after the worker stopped. One that
    could not prepare exits with its status; one never told (up failed) exits at the end of
    the ``with``."""

    def __init__(self, bootstrap: str, fresh: bool, run: RunRecord) -> None:
        context = multiprocessing.get_context("spawn")
        receive, self._send = context.Pipe(duplex=False)
        self._ready, ready = context.Pipe(duplex=False)
        self._child = context.Process(target=_keep, args=(bootstrap, fresh, run, receive, ready))
        # Started with Ctrl-C ignored (kept across exec): a Ctrl-C stops the run, which this
        # child must still record.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self._child.start()
        finally:
            signal.signal(signal.SIGINT, previous)
        # The child's now: their ends of file are given by the child's exit and our close.
        receive.close()
        ready.close()

    def prepared(self) -> bool:
        """Blocks until it prepared (True) or exited trying (False: it said why)."""
        try:
            return bool(self._ready.recv())
        except EOFError:
            self._child.join()
            return False

    def finish(self, run: RunRecord, status: int, stopped: bool) -> int | None:
        """Record the run and print its summary; the child's exit status."""
        with contextlib.suppress(OSError):  # it died: see below
            self._send.send((run, status, stopped))
        self._send.close()
        self._child.join()
        code = self._child.exitcode
        if code is not None and code < 0:
            # Killed by a signal meant for the whole process group (a SIGTERM to it): the run
            # is recorded by a fresh child, as up is still there to do it (the row is keyed by
            # the run, so a second write replaces the first).
            return _in_child(_finish, run, status, stopped)
        return code

    def __enter__(self) -> _Keeper:
        return self

    def __exit__(self, *_: object) -> None:
        self._send.close()
        self._ready.close()
        self._child.join()


def _keep(bootstrap: str, fresh: bool, run: RunRecord, receive: Any, ready: Any) -> None:
    _prepare(bootstrap, fresh, run)  # raises: the exit status says it failed
    with contextlib.suppress(OSError):  # up went away meanwhile
        ready.send(True)
    ready.close()
    import ingestor.report.build  # noqa: F401 - _finish's, loaded while the run goes on

    try:
        run, status, stopped = receive.recv()
    except EOFError:
        return  # up stopped without a run to record
    _finish(run, status, stopped)
    exit_at_once(0)  # up waits for this process to end


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
            "records_stored": self.progress.get("records_stored", 0),
            "dead_letters": self.progress.get("dead_letters", 0),
            "error": error,
            "updated_at": datetime.now(UTC),
        }


def _finish(run: RunRecord, status: int, stopped: bool) -> None:
    from ingestor.cli.progress import summary_lines
    from ingestor.clickhouse.engine import open_clickhouse
    from ingestor.report.build import skipped

    settings = load_settings()
    # The worker has stopped, so this process may open the embedded engine again.
    with open_clickhouse(settings.clickhouse) as ch:
        error = "" if status == 0 else f"exit status {status}"
        ch.insert("ingest_runs", [run.row("ok" if status == 0 else "failed", True, error)])
        [(stored,)] = ch.query("SELECT count() FROM transcript_lines FINAL")
        rules = skipped(ch)["skipped"]
    lines = summary_lines(
        run=run.progress,
        stored=int(stored),
        skipped=rules,
        data_dir=settings.data_dir,
        stopped=stopped or status != 0,
    )
    print("\n".join(lines), flush=True)


def _prepare(bootstrap: str, fresh: bool, run: RunRecord) -> None:
    from ingestor.clickhouse.engine import open_clickhouse
    from ingestor.clickhouse.migrations import apply_schema
    from ingestor.clickhouse.positions import file_positions
    from ingestor.clickhouse.usage_rollup import ensure_usage_rollup
    from ingestor.clickhouse.winners import ensure_winners
    from ingestor.producer.checkpoint import Checkpoint, default_checkpoint_path
    from ingestor.worker.restore import session_seeds
    from ingestor.worker.seed import seed_budgets, seed_sessions

    settings = load_settings()
    # chdb allows one process per data dir: this one closes it before the worker opens it.
    ch = open_clickhouse(settings.clickhouse)
    try:
        applied = apply_schema(ch)
        if applied:
            print(f"schema: applied {', '.join(applied)}", flush=True)
        ch.insert("ingest_runs", [run.row("running")])
        positions = file_positions(ch) if fresh else None
        if fresh:  # the seeds read the winners: complete them first (a data dir from before)
            ensure_winners(ch)
            ensure_usage_rollup(ch)
        seeds = session_seeds(ch) if fresh else []
        windows = _budget_windows(ch, settings) if fresh else {}
        if seeds:
            # A crash can leave summary rows behind the lines stored: rewrite them from the truth.
            version = time.time_ns()
            ch.insert("session_summaries", [agg.summary_row(version) for _, agg in seeds])
    finally:
        ch.close()
    asyncio.run(_topics(settings, bootstrap, fresh))
    if seeds:
        asyncio.run(seed_sessions(settings, bootstrap, seeds))
    if windows:
        asyncio.run(seed_budgets(settings, bootstrap, windows))
    if positions is not None:
        checkpoint = Checkpoint.load(default_checkpoint_path(settings))
        checkpoint.override(positions)
        checkpoint.save()
        print(
            f"resuming from ClickHouse: {len(positions)} file(s), {len(seeds)} session(s), "
            f"{len(windows)} budget window(s)",
            flush=True,
        )


async def _topics(settings: Settings, bootstrap: str, fresh: bool) -> None:
    """Create the topics; on a fresh embedded broker, form the worker's group too, so that its
    join is answered at once instead of after a second (``local/compat.py``, ``claim_group``):
    no worker has started on this broker yet, so the group has no member."""
    from aiokafka.client import AIOKafkaClient

    from ingestor.kafka.config import client_kwargs
    from ingestor.kafka.topics import create_topics
    from ingestor.local.compat import FAUST_ASSIGNOR, claim_group

    await create_topics(settings, bootstrap)
    if not fresh:
        return
    client = AIOKafkaClient(**client_kwargs(settings, bootstrap))
    try:
        await client.bootstrap()
        await claim_group(client, settings.app_id, FAUST_ASSIGNOR)
    finally:
        await client.close()


def _prepare_retrying(
    settings: Settings,
    say: Callable[[str], None],
    stop: threading.Event,
    prepare: Callable[[], bool],
) -> bool:
    """``prepare()`` until it succeeds, with the children's backoff and limit: ClickHouse may be
    refusing inserts for a while (a server restarting, a full disk) when ``up`` starts or must
    resume after a broker restart, and that is a reason to wait, not to stop."""
    policy = RestartPolicy(
        limit=settings.restart_limit,
        base_s=settings.restart_backoff_s,
        max_s=settings.restart_backoff_max_s,
        clock=time.monotonic,
    )
    while not prepare():
        delay = policy.next_delay()
        if delay is None or stop.is_set():
            return False
        say(f"could not prepare ClickHouse and the topics; trying again in {delay:.0f}s")
        if stop.wait(delay):
            return False
    return True


def _budget_windows(ch: Any, settings: Any) -> dict[bytes, Any]:
    """The recent budget windows from ClickHouse, for the new broker's empty changelog."""
    from ingestor.alerts.windows import KEEP_MS
    from ingestor.usage.prices import price_table
    from ingestor.worker.restore import budget_seeds

    since = int(time.time() * 1000) - KEEP_MS
    return budget_seeds(ch, settings.budget_list, since_ms=since, prices=price_table())


def _worker_args(bootstrap: str, fresh: bool, extra: list[str] | None = None) -> list[str]:
    tansu = ["--tansu"] if fresh else []
    return ["worker", "--bootstrap", bootstrap, "--loglevel", "info", *tansu, *(extra or [])]


def _watch_args(
    settings: Settings, bootstrap: str, dirs: list[Path], window: Window | None
) -> list[str]:
    """The watcher's command line; with a ``window``, its checkpoint is ``_backfill_checkpoint``'s,
    to be written before the watcher is let go."""
    stats_file = settings.data_dir / WATCH_STATS
    args = ["watch", "--bootstrap", bootstrap, "--stats", str(stats_file)]
    return [*args, *_window_args(settings, window), *(str(d) for d in dirs)]


def _window_args(settings: Settings, window: Window | None) -> list[str]:
    """The watcher's arguments for a date-filtered backfill (none without one): its own
    checkpoint and the window."""
    if window is None:
        return []
    args = ["--checkpoint", str(settings.data_dir / BACKFILL_CHECKPOINT)]
    if window.since_ms is not None:
        args += ["--since-ms", str(window.since_ms)]
    if window.until_ms is not None:
        args += ["--until-ms", str(window.until_ms)]
    return args


def _logs(settings: Settings) -> Path:
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs


class _Child:
    """A worker or watcher process, restarted by ``_supervise`` under its ``RestartPolicy``.

    Without a policy the first process is held (``--hold``: loaded, waiting on stdin) until
    ``go``; restarts are not.
    """

    def __init__(
        self, name: str, args: list[str], log: Path, policy: RestartPolicy | None = None
    ) -> None:
        self.name, self.args, self.log = name, args, log
        self.policy = policy or RestartPolicy(limit=0, base_s=1.0, max_s=1.0, clock=time.monotonic)
        self.proc = self._spawn(hold=policy is None)
        self.restart_at: float | None = None

    def _spawn(self, *, hold: bool = False) -> subprocess.Popen[bytes]:
        self.policy.started()
        self.started_at = time.time()
        return spawn_ingestor(self.args, self.log, hold=hold)

    def go(self, policy: RestartPolicy) -> None:
        """Let a held process go on; from now on it is restarted under ``policy``."""
        self.policy = policy
        self.policy.started()
        release(self.proc)  # one that died is restarted by _tend

    def restart(self) -> None:
        self.proc, self.restart_at = self._spawn(), None


@dataclass
class _Broker:
    """The broker ``up`` runs on: the embedded Tansu it started (restarted when it dies or
    outgrows ``tansu_max_rss_mb``), or a configured one (``tansu`` None, never touched)."""

    tansu: TansuBroker | None
    bootstrap: str
    unpublish: Callable[[], None] = lambda: None

    def restart(self) -> None:
        """A new, empty broker on a new address, published only by ``publish``."""
        assert self.tansu is not None
        self.tansu.restart()
        self.bootstrap = self.tansu.bootstrap

    def publish(self, data_dir: Path) -> None:
        """Tell SDK clients the address (they look it up again when a send fails)."""
        self.unpublish = _publish_bootstrap(data_dir, self.bootstrap)


def _supervise(
    settings: Settings,
    broker: _Broker,
    dirs: list[Path],
    *,
    once: bool,
    run: RunRecord,
    display: Display,
    early: _Child | None = None,
    early_watcher: _Child | None = None,
    window: Window | None = None,
    extra_worker: list[str] | None = None,
) -> tuple[int, bool]:
    """Run the children until ``--once`` is done, a signal, or a final exit: (status, signalled).

    ``early`` and ``early_watcher`` are the worker and the watcher already started and held while
    the schema was prepared; ``window`` a date-filtered backfill's (``run_stack``)."""
    fresh = broker.tansu is not None
    logs = _logs(settings)
    say = display.say
    say(f"logs in {logs}/; dashboard on http://{settings.web_host}:{settings.web_port}/")
    say(
        "lines read: sent to Kafka; records stored: confirmed by ClickHouse; dead letters: "
        "lines kept out of the counts (`ingestor report skipped`). Ctrl-C stops."
    )
    stats_file = settings.data_dir / WATCH_STATS
    with contextlib.suppress(FileNotFoundError):
        stats_file.unlink()  # a previous run's
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

    policies = {"worker": policy(), "watcher": policy()}
    children: list[_Child] = []

    def start_children() -> None:
        nonlocal early, early_watcher
        bootstrap = broker.bootstrap
        children.clear()
        if early is not None:  # only the first start: later ones follow a broker restart
            worker, early = early, None
            worker.go(policies["worker"])
        else:
            args = _worker_args(bootstrap, fresh, extra_worker)
            worker = _Child("worker", args, logs / "worker.log", policies["worker"])
        children.append(worker)
        display.show(Snapshot(starting=True))
        # The watcher starts once the worker consumes: a Faust group that starts on data already
        # waiting can skip records (the worker guards against it, but only by restarting). It
        # loads its modules meanwhile, held before it reads anything.
        if early_watcher is not None:
            watcher, early_watcher = early_watcher, None
        else:
            watch_args = _watch_args(settings, bootstrap, dirs, window)
            watcher = _Child("watcher", watch_args, logs / "watch.log")
        children.append(watcher)  # stopped with the others if up stops while it is held
        if window is not None:
            # A windowed backfill stores no file position to resume from after a broker
            # restart: its watcher starts the window again (what was stored replaces itself).
            _backfill_checkpoint(settings)
        wait_ready(
            settings.web_host,
            settings.web_port,
            worker.proc,
            timeout_s=READY_TIMEOUT_S,
            poll_s=READY_POLL_S,
            stop=stop,
        )
        if not stop.is_set():
            watcher.go(policies["watcher"])

    # Not in a windowed backfill, which would start its window again after each planned restart;
    # a broker that dies is still recovered.
    bound = 0 if window is not None else int(settings.tansu_max_rss_mb * 2**20)
    recycle = BrokerRecycle(bound)
    status = 0
    meter = _Meter(settings, stats_file)
    try:
        start_children()
        last_look = 0.0
        was_done: int | None = None
        safe = [False, False]  # "only replayable records in the broker" on the last two looks
        last_ask = 0.0
        while not stop.wait(TICK_S):
            if broker.tansu is not None:
                tansu = broker.tansu
                rss = tansu.rss_bytes()
                only_replayable = all(safe)
                now = time.monotonic()
                if not only_replayable and recycle.over(rss) and now - last_ask >= 2.0:
                    # Over the bound in a busy backfill the 1 s looks time out more often than
                    # not: ask once, patiently (only while over the bound).
                    last_ask = now
                    only_replayable = meter.only_replayable_now(timeout_s=3.0)
                action = recycle.decide(
                    alive=tansu.running,
                    rss_bytes=rss,
                    only_replayable=only_replayable,
                    progressed=meter.progressed(),
                )
                if action is BrokerAction.RECYCLE and not meter.caught_up:
                    # A backlog of transcript lines: restarting now would drop it from the
                    # broker, and the watcher would read it all again (at 1M lines, 4.3 reads of
                    # every line). Stop the watcher, let the worker catch up, then restart.
                    if not meter.watcher_stopped:  # stopped until the worker caught up
                        meter.watcher_stopped = True
                        meter.watcher_read_all = meter.watcher_read_everything()
                        say(
                            f"the broker holds {(rss or 0) / 2**20:.0f} MB: the worker catches "
                            "up before it is restarted"
                        )
                        _stop_children([c.proc for c in children if c.name == "watcher"])
                        children[:] = [c for c in children if c.name != "watcher"]
                    action = BrokerAction.KEEP
                if action is BrokerAction.RECYCLE and not _drained(settings, broker.bootstrap):
                    action = BrokerAction.KEEP  # events arrived since the worker's last look
                if action is BrokerAction.RECYCLE and once and meter.watcher_read_all:
                    break  # all read and stored: a restart would only come before the exit
                if action is not BrokerAction.KEEP:
                    why = (
                        f"the broker died ({_describe(tansu.returncode or 0)})"
                        if action is BrokerAction.RECOVER
                        else f"the broker holds {(rss or 0) / 2**20:.0f} MB, none of it only there"
                    )
                    say(f"{why}: restarting it and resuming from ClickHouse")
                    _stop_children([c.proc for c in reversed(children)])
                    if action is BrokerAction.RECYCLE and not _drained(
                        settings, broker.bootstrap, stopped=True
                    ):
                        # The SDK sent on while the worker stopped: those records exist only
                        # in this broker. Keep it, and let a worker store them first.
                        say("events arrived while the worker stopped: keeping the broker")
                        start_children()
                        was_done, safe = None, [False, False]
                        meter.watcher_stopped = False
                        continue
                    broker.restart()
                    if not _prepare_retrying(
                        settings,
                        say,
                        stop,
                        lambda: _in_child(_prepare, broker.bootstrap, True, run) == 0,
                    ):
                        say("could not resume after the broker restart (see above)")
                        status = 1
                        break
                    broker.publish(settings.data_dir)
                    recycle.restarted()
                    meter.new_broker()
                    say(f"broker restarted ({recycle.restarts} so far) on {broker.bootstrap}")
                    start_children()
                    was_done, safe = None, [False, False]
                    meter.watcher_stopped = False
                    continue
            verdict = _tend(children, say)
            if verdict is not None:
                status = verdict
                break
            now = time.monotonic()
            due = LOOK_S
            if once and was_done is not None:
                due = CONFIRM_S
            elif once and meter.watcher_turned_idle():
                due = 0.0  # it found nothing more to read: the end may be now
            if now - last_look >= due:
                last_look = now
                snapshot, done = meter.look(now)
                run.progress.update(meter.progress(snapshot))
                display.show(snapshot)
                # Twice in a row, nothing new in between: a high-watermark seen by the worker
                # may be older than the watcher's last send.
                caught_up = done is not None and done == was_done
                safe = [safe[-1], caught_up or meter.only_replayable]
                if once and caught_up and not meter.watcher_stopped:  # it has more to read
                    break
                was_done = done
    finally:
        _stop_children([c.proc for c in reversed(children)])
    # The children flushed what they held as they stopped: the last numbers.
    with contextlib.suppress(Exception):
        snapshot, _ = meter.look(time.monotonic(), ask_worker=False)
        run.progress.update(meter.progress(snapshot))
        display.show(snapshot, force=True)
    return status, stop.is_set()


def _tend(children: list[_Child], say: Callable[[str], None]) -> int | None:
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
            say(f"{what}: the input needs a look (see {child.log}); stopping")
            return code
        delay = child.policy.next_delay()
        if delay is None:
            say(
                f"{what}, {child.policy.failures} restarts in a row did not help; giving up "
                f"(see {child.log})"
            )
            return code or 1
        say(f"{what}; restart {child.policy.failures}/{child.policy.limit} in {delay:.0f}s")
        child.restart_at = now + delay
    return None


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"status {code}"


def _stop_children(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, then SIGKILL after ``STOP_GRACE_S``; returns once every child is gone (the
    embedded ClickHouse is then free for ``_finish``)."""
    stop_processes(procs, STOP_GRACE_S)


def _drained(settings: Settings, bootstrap: str, *, stopped: bool = False) -> bool:
    """Asked of the broker itself before a planned restart: is every events and ledger record it
    holds handled by the worker (``stopped``: committed by the worker's group, once the worker
    has stopped)? The worker's own view comes from its last fetch (and Tansu's
    ListOffsets(latest) reads low after multi-record batches: the SDK's), so an event sent a
    moment ago can be missing from it; lost with the broker, nobody sends it again. What is left
    is the moment between the last check and the kill. False when unsure."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from ingestor.kafka.config import client_kwargs
    from ingestor.local.compat import end_offsets

    topics = [settings.topic("events"), settings.topic("ledger")]

    async def check() -> bool:
        group = {"group_id": settings.app_id} if stopped else {}
        consumer = AIOKafkaConsumer(
            **client_kwargs(settings, bootstrap), enable_auto_commit=False, **group
        )
        await consumer.start()
        try:
            await consumer._client.force_metadata_update()
            tps = [
                TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
            ]
            ends = await end_offsets(consumer, tps)
            if stopped:  # Kafka keeps the next offset to read
                committed = {tp: (await consumer.committed(tp)) or 0 for tp in ends}
                return all(committed[tp] >= end for tp, end in ends.items())
        finally:
            await consumer.stop()
        stats = worker_stats(settings.web_host, settings.web_port, timeout_s=3)
        if not stats:
            return False  # no answer: unsure
        handled = stats.get("handled_unreplayable", {})
        return all(
            int(handled.get(f"{tp.topic}[{tp.partition}]", -1)) >= end - 1
            for tp, end in ends.items()
        )

    try:
        return asyncio.run(asyncio.wait_for(check(), timeout=10))
    except Exception:  # noqa: BLE001 - unsure: keep the broker for now
        return False


class _Meter:
    """Reads the watcher's stats file and the worker's ``/stats/`` into a ``Snapshot``, with
    counters carried across child restarts (``Tally``) and rates over the last seconds."""

    def __init__(self, settings: Settings, stats_file: Path) -> None:
        self.settings, self.stats_file = settings, stats_file
        self.tally = Tally()
        self.rate = Rate()
        self.worker: dict[str, Any] = {}
        self.only_replayable = False
        self.caught_up = False
        self.watcher_idle = False  # at the last look
        self.watcher_stopped = False  # stopped on purpose: what it sent is all there will be
        # It had read every byte of the files it followed when it was stopped.
        self.watcher_read_all = False
        # (messages, envelopes, records and dead letters stored) when the broker started
        self.since: tuple[int, int, int] = (0, 0, 0)

    def new_broker(self) -> None:
        """Envelopes sent to a broker that was replaced may never be handled (the new watcher
        sends their lines again): count both from here on."""
        # The stopped watcher's last counts first: read later, they would count envelopes sent
        # to the old broker as awaited from the new one, and `--once` would wait forever.
        self._read_watcher()
        tally = self.tally
        stored = tally.total("records") + tally.total("dead")
        self.since = (tally.total("messages"), tally.total("envelopes"), stored)
        self.caught_up = False
        self.watcher_read_all = False

    def watcher_read_everything(self) -> bool:
        """The watcher's last report: idle, or every byte of the files it follows read."""
        watch = self._read_watcher()
        if "bytes_total" not in watch:
            return False
        done, total = int(watch.get("bytes_done", 0)), int(watch["bytes_total"])
        return bool(watch.get("idle")) or done >= total

    def watcher_turned_idle(self) -> bool:
        """Whether the watcher says it is idle now and did not at the last look: its stats file
        alone is read, cheap enough for every tick."""
        return not self.watcher_idle and (
            self.watcher_stopped or bool(self._read_watcher().get("idle"))
        )

    def progressed(self) -> bool:
        """Stored something since the broker started, or caught up (``local/recycle.py``)."""
        stored = self.tally.total("records") + self.tally.total("dead")
        return self.caught_up or stored > self.since[2]

    def only_replayable_now(self, timeout_s: float) -> bool:
        """Ask the worker now: is it behind on no events or ledger partition?"""
        s = self.settings
        stats = worker_stats(s.web_host, s.web_port, timeout_s=timeout_s)
        return bool(stats.get("behind_unreplayable") == 0)

    def look(self, now: float, *, ask_worker: bool = True) -> tuple[Snapshot, int | None]:
        """The snapshot, and when everything present is stored the worker's message count
        (else None)."""
        watch = self._read_watcher()
        if ask_worker:
            self.worker = worker_stats(self.settings.web_host, self.settings.web_port)
        stats = self.worker
        counts = stats.get("counts", {})
        tally = self.tally
        if "run_id" in stats:
            tally.update("records", stats["run_id"], int(counts.get("records_stored", 0)))
            tally.update("dead", stats["run_id"], int(counts.get("dead_letters_stored", 0)))
            tally.update("messages", stats["run_id"], int(counts.get("messages", 0)))
        read, read_bytes = tally.total("lines_read"), tally.total("bytes_read")
        stored, dead = tally.total("records"), tally.total("dead")
        done_b, total_b = int(watch.get("bytes_done", 0)), int(watch.get("bytes_total", 0))
        rates = self.rate.add(now, read, done_b)
        lines_per_s, bytes_per_s = rates if rates is not None else (None, None)
        # What is present is stored when the watcher is idle and the worker is behind nothing:
        # it handled at least every envelope the watcher sent (its view of the high-watermark
        # alone can be older than the watcher's last send) and stored what it handled.
        # Events and ledger entries exist only in the broker until stored (local/recycle.py);
        # those the worker holds it stores as it stops (worker/stop.py).
        self.only_replayable = stats.get("behind_unreplayable") == 0
        messages, envelopes, _ = self.since
        handled = tally.total("messages") - messages >= tally.total("envelopes") - envelopes
        watcher_idle = self.watcher_stopped or bool(watch.get("idle"))
        self.watcher_idle = watcher_idle
        idle = watcher_idle and stats.get("behind") == 0 and handled
        done = idle and not stats.get("pending_rows") and not stats.get("pending_messages")
        self.caught_up = done
        snapshot = Snapshot(
            files=int(watch.get("files", 0)),
            lines_read=read,
            records_stored=stored,
            dead_letters=dead,
            bytes_done=done_b,
            bytes_total=total_b,
            lines_per_s=lines_per_s,
            eta_s=eta(total_b - done_b, bytes_per_s) if read_bytes else None,
            caught_up=done,
        )
        return snapshot, (int(counts.get("messages", 0)) if done else None)

    def _read_watcher(self) -> dict[str, Any]:
        """The watcher's stats file, its counts carried into the tally."""
        watch: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            watch = json.loads(self.stats_file.read_text())
        if "pid" in watch:  # else no news: the totals stand
            tally = self.tally
            tally.update("lines_read", watch["pid"], int(watch.get("lines_read", 0)))
            tally.update("bytes_read", watch["pid"], int(watch.get("bytes_read", 0)))
            tally.update("envelopes", watch["pid"], int(watch.get("envelopes_sent", 0)))
        return watch

    @staticmethod
    def progress(snapshot: Snapshot) -> dict[str, int]:
        return {
            "files": snapshot.files,
            "lines_read": snapshot.lines_read,
            "records_stored": snapshot.records_stored,
            "dead_letters": snapshot.dead_letters,
        }
