"""``up``'s keeper: the child that prepares storage for a run and records the run once it ended.

``prepare`` applies the ClickHouse schema and records the run as running; on a fresh embedded
broker (its memory is gone after any restart) it recovers from what ClickHouse durably holds:
the watcher's resume points, the Faust session table and the budget windows are re-seeded. It
creates the topics, and on a fresh embedded broker forms the worker's group (``local/compat.py``).
``Keeper`` runs it in a fresh interpreter that stays to record the run in ``ingest_runs`` and
print its summary; ``prepare_retrying`` tries again with the children's backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ingestor.cli.common import exit_at_once
from ingestor.local.restarts import RestartPolicy
from ingestor.settings import Settings, load_settings

if TYPE_CHECKING:
    from ingestor.clickhouse.engine import ClickHouse
    from ingestor.report.request import ReportRequest

__all__ = ["Keeper", "RunRecord", "in_child", "prepare", "prepare_retrying"]

log = logging.getLogger(__name__)


def in_child(target: Any, *args: Any) -> int | None:
    """``target(*args)`` in a fresh interpreter: chdb and its memory go away with it."""
    child = multiprocessing.get_context("spawn").Process(target=target, args=args)
    child.start()
    child.join()
    return child.exitcode


class Keeper:
    """``prepare``, then ``_finish`` once the run ended, in one fresh interpreter: chdb and the
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
            return in_child(_finish, run, status, stopped)
        return code

    def __enter__(self) -> Keeper:
        return self

    def __exit__(self, *_: object) -> None:
        self._send.close()
        self._ready.close()
        self._child.join()


def _keep(bootstrap: str, fresh: bool, run: RunRecord, receive: Any, ready: Any) -> None:
    prepare(bootstrap, fresh, run)  # raises: the exit status says it failed
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
    answers: dict[ReportRequest, bytes] = {}
    # The worker has stopped, so this process may open the embedded engine again.
    with open_clickhouse(settings.clickhouse) as ch:
        error = "" if status == 0 else f"exit status {status}"
        ch.insert("ingest_runs", [run.row("ok" if status == 0 else "failed", True, error)])
        [(stored,)] = ch.query("SELECT count() FROM transcript_lines FINAL")
        rules = skipped(ch)["skipped"]
        # Only a run that ended by itself (`--once`): a stopped one exits at once instead (the
        # build is ~0.4 s at 1M lines, 2.7 s at 5M).
        finished = status == 0 and not stopped
        if finished and run.progress.get("records_stored", 0) and _plain(settings):
            answers = _usual_answers(ch)
    if answers:
        from ingestor.cli.report import keep_answers

        with contextlib.suppress(OSError):  # the next report builds it
            keep_answers(settings.data_dir, answers)
    lines = summary_lines(
        run=run.progress,
        stored=int(stored),
        skipped=rules,
        data_dir=settings.data_dir,
        stopped=stopped or status != 0,
    )
    print("\n".join(lines), flush=True)


def _plain(settings: Settings) -> bool:
    """Whether ``ingestor report`` keeps its answers for this data dir (``cli/report.py``)."""
    from ingestor.plain_settings import PlainLocal

    plain = PlainLocal.read()
    return plain is not None and plain.data_dir == settings.data_dir


def _usual_answers(ch: ClickHouse) -> dict[ReportRequest, bytes]:
    """The usual reports built, to be kept once ``ch`` is closed: the next ``ingestor report``
    need not open the engine. A failure costs that report a build, not the run its record."""
    from ingestor.cli.report import usual_answers

    try:
        return usual_answers(ch)
    except Exception:
        log.warning("could not build the usual reports to keep", exc_info=True)
        return {}


def prepare(bootstrap: str, fresh: bool, run: RunRecord) -> None:
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


def prepare_retrying(
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
