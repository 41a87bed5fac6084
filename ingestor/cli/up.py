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
chdb, no Faust). SIGTERM or Ctrl-C stops the tree within ``STOP_GRACE_S`` (``up_children.py``;
the worker bounds its own stop: ``worker/stop.py``).

The parts: ``up_keeper.py`` (the keeper), ``up_children.py`` (the children, their restarts and
stop), ``up_supervise.py`` (the loop: restarts of the children and the broker, ``--once``'s end;
its decisions, pure, in ``up_decide.py``), ``up_meter.py`` (progress), ``local/broker.py`` (the
broker's address, whether it is drained).
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingestor.cli.checks import check_data_dir, check_port, check_watch_dirs
from ingestor.cli.display import Display
from ingestor.cli.up_children import Child, Window, log_dir, stop_children, watch_args, worker_args
from ingestor.cli.up_keeper import Keeper, RunRecord, prepare_retrying
from ingestor.cli.up_supervise import Supervisor
from ingestor.local.broker import Broker
from ingestor.local.pidlock import PidLock
from ingestor.settings import default_watch_dirs, load_settings

if TYPE_CHECKING:
    from ingestor.local.tansu import TansuBroker

__all__ = ["register", "run_stack"]


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
        keeper: Keeper | None = stack.enter_context(Keeper(bootstrap, fresh, run))
        # The worker loads its modules while the schema is prepared, and waits to open ClickHouse
        # (one process at a time) until told: a second of the fixed cost.
        early = Child(
            "worker", worker_args(bootstrap, fresh, extra_worker), log_dir(settings) / "worker.log"
        )
        # The watcher too: held until the worker is ready, it reads nothing before then.
        early_watcher = Child(
            "watcher",
            watch_args(settings, bootstrap, dirs, window),
            log_dir(settings) / "watch.log",
        )
        # When up stops before supervising them.
        stack.callback(stop_children, [early_watcher.proc, early.proc])

        def prepare() -> bool:
            nonlocal keeper
            if keeper is None:  # the last one could not
                keeper = stack.enter_context(Keeper(bootstrap, fresh, run))
            if keeper.prepared():
                return True
            keeper = None
            return False

        if not prepare_retrying(settings, say, threading.Event(), prepare):
            say("could not prepare ClickHouse and the topics (see above)")
            return 1, run
        assert keeper is not None
        finisher = keeper
        # Published once the topics exist: Tansu would acknowledge, and lose, a record sent to a
        # topic it does not have yet (see TansuBroker.restart).
        published = Broker(broker, bootstrap)
        if (error := published.publish(settings.data_dir)) is not None:
            say(f"could not publish the broker's address ({error}); trying again")
        stack.callback(lambda: published.unpublish())
        status, stopped = Supervisor(
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
        ).run()
        display.close()
        if finisher.finish(run, status, stopped) != 0:
            print("could not record the run in ingest_runs (see above)", flush=True)
        return status, run
