"""``up``'s supervise loop: the children run until ``--once`` is done, a signal, or a final exit.

Each tick it restarts the children that died and are due (``up_children.tend``) and watches the
embedded broker: one that died, or that outgrew ``tansu_max_rss_mb`` with nothing in it that
exists only there (``local/recycle.py`` decides, ``local/broker.py`` asks the broker), is
restarted and the run resumes from ClickHouse (a backlog of transcript lines is stored first,
the watcher stopped meanwhile). Each look shows progress (``up_meter.py``) and judges
``--once``'s end.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from pathlib import Path
from typing import Any

from ingestor.cli.display import Display
from ingestor.cli.progress import Snapshot
from ingestor.cli.up_children import (
    WATCH_STATS,
    Child,
    Window,
    describe,
    log_dir,
    stop_children,
    tend,
    watch_args,
    worker_args,
    write_backfill_checkpoint,
)
from ingestor.cli.up_keeper import RunRecord, in_child, prepare, prepare_retrying
from ingestor.cli.up_meter import Meter
from ingestor.local.broker import Broker, drained
from ingestor.local.recycle import BrokerAction, BrokerRecycle
from ingestor.local.restarts import RestartPolicy
from ingestor.local.stack import wait_ready
from ingestor.settings import Settings

__all__ = ["supervise"]

TICK_S = 0.1  # the supervisor's loop: children's exits, signals
LOOK_S = 0.25  # progress shown and `--once`'s end judged (twice in a row: two looks)
# `--once`'s second look: a tick later, the time the worker's idle fetch waits on the embedded
# broker (compat.TANSU_FETCH_MAX_WAIT_MS), so its view of the end offsets is renewed.
CONFIRM_S = TICK_S
READY_POLL_S = 0.05  # the worker's /stats/ asked whether it is ready (the watcher waits on it)
READY_TIMEOUT_S = 180.0  # then the watcher starts anyway


def supervise(
    settings: Settings,
    broker: Broker,
    dirs: list[Path],
    *,
    once: bool,
    run: RunRecord,
    display: Display,
    early: Child | None = None,
    early_watcher: Child | None = None,
    window: Window | None = None,
    extra_worker: list[str] | None = None,
) -> tuple[int, bool]:
    """Run the children until ``--once`` is done, a signal, or a final exit: (status, signalled).

    ``early`` and ``early_watcher`` are the worker and the watcher already started and held while
    the schema was prepared; ``window`` a date-filtered backfill's (``up.run_stack``)."""
    fresh = broker.tansu is not None
    logs = log_dir(settings)
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
    children: list[Child] = []

    def start_children() -> None:
        nonlocal early, early_watcher
        bootstrap = broker.bootstrap
        children.clear()
        if early is not None:  # only the first start: later ones follow a broker restart
            worker, early = early, None
            worker.go(policies["worker"])
        else:
            args = worker_args(bootstrap, fresh, extra_worker)
            worker = Child("worker", args, logs / "worker.log", policies["worker"])
        children.append(worker)
        display.show(Snapshot(starting=True))
        # The watcher starts once the worker consumes: a Faust group that starts on data already
        # waiting can skip records (the worker guards against it, but only by restarting). It
        # loads its modules meanwhile, held before it reads anything.
        if early_watcher is not None:
            watcher, early_watcher = early_watcher, None
        else:
            watcher_args = watch_args(settings, bootstrap, dirs, window)
            watcher = Child("watcher", watcher_args, logs / "watch.log")
        children.append(watcher)  # stopped with the others if up stops while it is held
        if window is not None:
            # A windowed backfill stores no file position to resume from after a broker
            # restart: its watcher starts the window again (what was stored replaces itself).
            write_backfill_checkpoint(settings)
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
    meter = Meter(settings, stats_file)
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
                        stop_children([c.proc for c in children if c.name == "watcher"])
                        children[:] = [c for c in children if c.name != "watcher"]
                    action = BrokerAction.KEEP
                if action is BrokerAction.RECYCLE and not drained(settings, broker.bootstrap):
                    action = BrokerAction.KEEP  # events arrived since the worker's last look
                if action is BrokerAction.RECYCLE and once and meter.watcher_read_all:
                    break  # all read and stored: a restart would only come before the exit
                if action is not BrokerAction.KEEP:
                    why = (
                        f"the broker died ({describe(tansu.returncode or 0)})"
                        if action is BrokerAction.RECOVER
                        else f"the broker holds {(rss or 0) / 2**20:.0f} MB, none of it only there"
                    )
                    say(f"{why}: restarting it and resuming from ClickHouse")
                    stop_children([c.proc for c in reversed(children)])
                    if action is BrokerAction.RECYCLE and not drained(
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
                    if not prepare_retrying(
                        settings,
                        say,
                        stop,
                        lambda: in_child(prepare, broker.bootstrap, True, run) == 0,
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
            verdict = tend(children, say)
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
        stop_children([c.proc for c in reversed(children)])
    # The children flushed what they held as they stopped: the last numbers.
    with contextlib.suppress(Exception):
        snapshot, _ = meter.look(time.monotonic(), ask_worker=False)
        run.progress.update(meter.progress(snapshot))
        display.show(snapshot, force=True)
    return status, stop.is_set()
