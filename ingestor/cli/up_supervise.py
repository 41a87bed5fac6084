"""``up``'s supervise loop: the children run until ``--once`` is done, a signal, or a final exit.

Each tick it restarts the children that died and are due (``up_children.tend``) and watches the
embedded broker: one that died, or that outgrew ``tansu_max_rss_mb`` with nothing in it that
exists only there (``local/recycle.py`` decides, ``local/broker.py`` asks the broker), is
restarted and the run resumes from ClickHouse (a backlog of transcript lines is stored first,
the watcher stopped meanwhile). Each look shows progress (``up_meter.py``) and judges
``--once``'s end.

The decisions are pure (``up_decide.py``); ``Supervisor`` holds the loop's state and does the
I/O they call for, one method a concern.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from ingestor.cli.display import Display
from ingestor.cli.progress import Snapshot
from ingestor.cli.up_children import (
    WATCH_STATS,
    Child,
    Window,
    log_dir,
    stop_children,
    tend,
    watch_args,
    worker_args,
    write_backfill_checkpoint,
)
from ingestor.cli.up_decide import (
    TICK_S,
    BrokerTurn,
    Looks,
    broker_turn,
    in_mb,
    look_due,
    once_finished,
    recycle_bound,
    restart_reason,
    should_ask,
)
from ingestor.cli.up_keeper import RunRecord, in_child, prepare, prepare_retrying
from ingestor.cli.up_meter import Meter
from ingestor.local.broker import Broker, drained
from ingestor.local.recycle import BrokerAction, BrokerRecycle
from ingestor.local.restarts import RestartPolicy
from ingestor.local.stack import wait_ready
from ingestor.settings import Settings

if TYPE_CHECKING:
    from ingestor.local.tansu import TansuBroker

__all__ = ["Supervisor"]

READY_POLL_S = 0.05  # the worker's /stats/ asked whether it is ready (the watcher waits on it)
READY_TIMEOUT_S = 180.0  # then the watcher starts anyway
ASK_TIMEOUT_S = 3.0  # the worker asked patiently (``should_ask``)


class _Flow(Enum):
    """Where the loop goes after a step."""

    ON = "on"  # on with this tick
    NEXT = "next"  # the next tick
    END = "end"  # out of the loop


class Supervisor:
    """The loop's state, one method a concern: signals, the children's start, the broker, the
    looks (progress and ``--once``'s end), the last numbers. ``run`` runs it.

    ``early`` and ``early_watcher`` are the worker and the watcher already started and held while
    the schema was prepared; ``window`` a date-filtered backfill's (``up.run_stack``)."""

    def __init__(
        self,
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
    ) -> None:
        self.settings, self.broker, self.dirs, self.once = settings, broker, dirs, once
        self.run_record, self.display, self.say = run, display, display.say
        self.early, self.early_watcher = early, early_watcher
        self.window, self.extra_worker = window, extra_worker
        self.fresh = broker.tansu is not None
        self.logs = log_dir(settings)
        self.stats_file = settings.data_dir / WATCH_STATS
        self.stop = threading.Event()
        self.policies = {"worker": _restart_policy(settings), "watcher": _restart_policy(settings)}
        self.children: list[Child] = []
        self.recycle = BrokerRecycle(recycle_bound(settings, window))
        self.meter = Meter(settings, self.stats_file)
        self.status = 0
        self.looks = Looks()
        self.last_look = 0.0
        self.last_ask = 0.0
        self.publish_failed = broker.pending is not None  # said by `up` as it started

    def run(self) -> tuple[int, bool]:
        """Run the children until ``--once`` is done, a signal, or a final exit: (status,
        signalled)."""
        settings = self.settings
        self.say(
            f"logs in {self.logs}/; dashboard on http://{settings.web_host}:{settings.web_port}/"
        )
        self.say(
            "lines read: sent to Kafka; records stored: confirmed by ClickHouse; dead letters: "
            "lines kept out of the counts (`ingestor report skipped`). Ctrl-C stops."
        )
        with contextlib.suppress(FileNotFoundError):
            self.stats_file.unlink()  # a previous run's
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        try:
            self._start_children()
            self._loop()
        finally:
            stop_children([c.proc for c in reversed(self.children)])
        self._last_numbers()
        return self.status, self.stop.is_set()

    def _on_signal(self, *_: object) -> None:
        self.stop.set()  # Ctrl-C reaches the children too: their exit is expected then

    def _publish(self, error: OSError | None) -> None:
        """Say once that the broker's address could not be written; the loop tries again."""
        if error is not None and not self.publish_failed:
            self.say(f"could not publish the broker's address ({error}); trying again")
        self.publish_failed = error is not None

    def _publish_pending(self) -> None:
        if self.broker.pending is not None:
            self._publish(self.broker.publish_pending())

    def _loop(self) -> None:
        while not self.stop.wait(TICK_S):
            self._publish_pending()
            if self.broker.tansu is not None:
                flow = self._tend_broker(self.broker.tansu)
                if flow is _Flow.END:
                    break
                if flow is _Flow.NEXT:
                    continue
            verdict = tend(self.children, self.say)
            if verdict is not None:
                self.status = verdict
                break
            if self._look():
                break

    def _start_children(self) -> None:
        bootstrap = self.broker.bootstrap
        self.children.clear()
        if self.early is not None:  # only the first start: later ones follow a broker restart
            worker, self.early = self.early, None
            worker.go(self.policies["worker"])
        else:
            args = worker_args(bootstrap, self.fresh, self.extra_worker)
            worker = Child("worker", args, self.logs / "worker.log", self.policies["worker"])
        self.children.append(worker)
        self.display.show(Snapshot(starting=True))
        # The watcher starts once the worker consumes: a Faust group that starts on data already
        # waiting can skip records (the worker guards against it, but only by restarting). It
        # loads its modules meanwhile, held before it reads anything.
        if self.early_watcher is not None:
            watcher, self.early_watcher = self.early_watcher, None
        else:
            watcher_args = watch_args(self.settings, bootstrap, self.dirs, self.window)
            watcher = Child("watcher", watcher_args, self.logs / "watch.log")
        self.children.append(watcher)  # stopped with the others if up stops while it is held
        if self.window is not None:
            # A windowed backfill stores no file position to resume from after a broker
            # restart: its watcher starts the window again (what was stored replaces itself).
            write_backfill_checkpoint(self.settings)
        settings = self.settings
        wait_ready(
            settings.web_host,
            settings.web_port,
            worker.proc,
            timeout_s=READY_TIMEOUT_S,
            poll_s=READY_POLL_S,
            stop=self.stop,
        )
        if not self.stop.is_set():
            watcher.go(self.policies["watcher"])

    def _tend_broker(self, tansu: TansuBroker) -> _Flow:
        rss = tansu.rss_bytes()
        meter = self.meter
        turn = broker_turn(
            self._broker_action(tansu, rss),
            caught_up=meter.caught_up,
            once=self.once,
            read_all=meter.watcher_read_all,
            drained=lambda: drained(self.settings, self.broker.bootstrap),
        )
        if turn is BrokerTurn.CATCH_UP:
            self._hold_watcher(rss)
            return _Flow.ON
        if turn is BrokerTurn.FINISH:
            return _Flow.END
        if turn is BrokerTurn.KEEP:
            return _Flow.ON
        return self._restart_broker(turn, tansu, rss)

    def _broker_action(self, tansu: TansuBroker, rss: int | None) -> BrokerAction:
        only_replayable = self.looks.only_replayable
        now = time.monotonic()
        over = self.recycle.over(rss)
        if should_ask(only_replayable=only_replayable, over=over, since_ask_s=now - self.last_ask):
            self.last_ask = now
            only_replayable = self.meter.only_replayable_now(timeout_s=ASK_TIMEOUT_S)
        return self.recycle.decide(
            alive=tansu.running,
            rss_bytes=rss,
            only_replayable=only_replayable,
            progressed=self.meter.progressed(),
        )

    def _hold_watcher(self, rss: int | None) -> None:
        """Stop the watcher until the worker caught up; the broker is restarted then."""
        meter = self.meter
        if meter.watcher_stopped:
            return
        meter.watcher_stopped = True
        meter.watcher_read_all = meter.watcher_read_everything()
        self.say(f"the broker holds {in_mb(rss)} MB: the worker catches up before it is restarted")
        stop_children([c.proc for c in self.children if c.name == "watcher"])
        self.children[:] = [c for c in self.children if c.name != "watcher"]

    def _restart_broker(self, turn: BrokerTurn, tansu: TansuBroker, rss: int | None) -> _Flow:
        settings, broker, say = self.settings, self.broker, self.say
        why = restart_reason(turn, returncode=lambda: tansu.returncode, rss_bytes=rss)
        say(f"{why}: restarting it and resuming from ClickHouse")
        stop_children([c.proc for c in reversed(self.children)])
        if turn is BrokerTurn.RECYCLE and not drained(settings, broker.bootstrap, stopped=True):
            # The SDK sent on while the worker stopped: those records exist only in this
            # broker. Keep it, and let a worker store them first.
            say("events arrived while the worker stopped: keeping the broker")
            self._resume()
            return _Flow.NEXT
        broker.restart()
        if not prepare_retrying(
            settings,
            say,
            self.stop,
            lambda: in_child(prepare, broker.bootstrap, True, self.run_record) == 0,
        ):
            say("could not resume after the broker restart (see above)")
            self.status = 1
            return _Flow.END
        self._publish(broker.publish(settings.data_dir))
        self.recycle.restarted()
        self.meter.new_broker()
        say(f"broker restarted ({self.recycle.restarts} so far) on {broker.bootstrap}")
        self._resume()
        return _Flow.NEXT

    def _resume(self) -> None:
        """The children again, after the broker's restart (or a restart called off)."""
        self._start_children()
        self.looks = Looks()
        self.meter.watcher_stopped = False

    def _look(self) -> bool:
        """Progress shown when a look is due; whether ``--once`` is finished."""
        now = time.monotonic()
        meter = self.meter
        due = look_due(
            self.once, confirming=self.looks.confirming, turned_idle=meter.watcher_turned_idle
        )
        if now - self.last_look < due:
            return False
        self.last_look = now
        snapshot, done = meter.look(now)
        self.run_record.progress.update(meter.progress(snapshot))
        self.display.show(snapshot)
        caught_up = self.looks.saw(done, only_replayable=meter.only_replayable)
        return once_finished(self.once, caught_up=caught_up, watcher_stopped=meter.watcher_stopped)

    def _last_numbers(self) -> None:
        """The children flushed what they held as they stopped: the last numbers."""
        with contextlib.suppress(Exception):
            snapshot, _ = self.meter.look(time.monotonic(), ask_worker=False)
            self.run_record.progress.update(self.meter.progress(snapshot))
            self.display.show(snapshot, force=True)


def _restart_policy(settings: Settings) -> RestartPolicy:
    return RestartPolicy(
        limit=settings.restart_limit,
        base_s=settings.restart_backoff_s,
        max_s=settings.restart_backoff_max_s,
        clock=time.monotonic,
    )
