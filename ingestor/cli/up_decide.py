"""The decisions of ``up``'s supervise loop (``up_supervise.py``). Pure: what they need from
processes, files or the broker comes in as values, or as callables asked only when the decision
needs them (each is I/O).

* ``broker_turn``: what to do about the embedded broker this tick, from ``BrokerRecycle``'s
  action (``local/recycle.py``) and the run's state: keep it, stop the watcher until the worker
  catches up, restart it, or (``--once``) finish instead of a restart that would only come
  before the exit. ``should_ask``: when to ask the worker itself whether the broker holds only
  replayable records. ``recycle_bound``: the memory bound, none in a windowed backfill.
* ``look_due``, ``Looks``, ``once_finished``: when to look at the progress, what the last looks
  saw, and when ``--once`` is done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from ingestor.cli.up_children import Window, describe
from ingestor.local.recycle import BrokerAction
from ingestor.settings import Settings

__all__ = [
    "ASK_EVERY_S",
    "CONFIRM_S",
    "LOOK_S",
    "TICK_S",
    "BrokerTurn",
    "Looks",
    "broker_turn",
    "in_mb",
    "look_due",
    "once_finished",
    "recycle_bound",
    "restart_reason",
    "should_ask",
]

TICK_S = 0.1  # the supervisor's loop: children's exits, signals
LOOK_S = 0.25  # progress shown and `--once`'s end judged (twice in a row: two looks)
# `--once`'s second look: a tick later, the time the worker's idle fetch waits on the embedded
# broker (compat.TANSU_FETCH_MAX_WAIT_MS), so its view of the end offsets is renewed.
CONFIRM_S = TICK_S
# Over the bound in a busy backfill the 1 s looks time out more often than not: ask the worker
# now and then, patiently (only while over the bound).
ASK_EVERY_S = 2.0


class BrokerTurn(Enum):
    """What the loop does about the embedded broker this tick."""

    KEEP = "keep"
    CATCH_UP = "catch up"  # due a planned restart, but a backlog: the watcher stops meanwhile
    FINISH = "finish"  # `--once`: all read and stored, a restart would only come before the exit
    RECYCLE = "recycle"  # a planned restart
    RECOVER = "recover"  # the broker died


def broker_turn(
    action: BrokerAction,
    *,
    caught_up: bool,
    once: bool,
    read_all: bool,
    drained: Callable[[], bool],
) -> BrokerTurn:
    """``action`` (``BrokerRecycle.decide``) weighed against the run: ``caught_up``, the worker's
    at the last look; ``read_all``, the watcher had read everything when stopped; ``drained``
    asks the broker (I/O), only for a planned restart of a caught-up worker."""
    if action is BrokerAction.RECOVER:
        return BrokerTurn.RECOVER
    if action is BrokerAction.KEEP:
        return BrokerTurn.KEEP
    # A backlog of transcript lines: restarting now would drop it from the broker, and the
    # watcher would read it all again (at 1M lines, 4.3 reads of every line).
    if not caught_up:
        return BrokerTurn.CATCH_UP
    if not drained():
        return BrokerTurn.KEEP  # events arrived since the worker's last look
    if once and read_all:
        return BrokerTurn.FINISH
    return BrokerTurn.RECYCLE


def should_ask(*, only_replayable: bool, over: bool, since_ask_s: float) -> bool:
    """Whether to ask the worker now if the broker holds only replayable records: the looks did
    not say so, the broker is over its bound, and the last ask is ``ASK_EVERY_S`` old."""
    return not only_replayable and over and since_ask_s >= ASK_EVERY_S


def restart_reason(
    turn: BrokerTurn, *, returncode: Callable[[], int | None], rss_bytes: int | None
) -> str:
    """Why the broker is restarted, for the log (``turn`` RECOVER or RECYCLE). ``returncode``
    polls the broker's process: asked only of one that died."""
    if turn is BrokerTurn.RECOVER:
        return f"the broker died ({describe(returncode() or 0)})"
    return f"the broker holds {in_mb(rss_bytes)} MB, none of it only there"


def recycle_bound(settings: Settings, window: Window | None) -> int:
    """The broker's memory bound in bytes; 0, no planned restarts, in a windowed backfill, which
    would start its window again after each one (a broker that dies is still recovered)."""
    return 0 if window is not None else int(settings.tansu_max_rss_mb * 2**20)


def look_due(once: bool, *, confirming: bool, turned_idle: Callable[[], bool]) -> float:
    """Seconds between looks. ``turned_idle`` reads the watcher's stats file: asked only when
    ``--once`` waits for its first sight of the end."""
    if once and confirming:
        return CONFIRM_S
    if once and turned_idle():
        return 0.0  # it found nothing more to read: the end may be now
    return LOOK_S


@dataclass
class Looks:
    """What the last looks saw. Everything is stored when the worker's count is the same twice
    in a row, nothing new in between: a high-watermark seen by the worker may be older than the
    watcher's last send. ``safe``: "only replayable records in the broker" on the last two."""

    was_done: int | None = None
    safe: tuple[bool, bool] = (False, False)

    @property
    def confirming(self) -> bool:
        """The last look saw everything stored: the next one confirms it."""
        return self.was_done is not None

    @property
    def only_replayable(self) -> bool:
        return all(self.safe)

    def saw(self, done: int | None, *, only_replayable: bool) -> bool:
        """A look's ``done`` (``Meter.look``); whether everything is stored, confirmed."""
        caught_up = done is not None and done == self.was_done
        self.safe = (self.safe[-1], caught_up or only_replayable)
        self.was_done = done
        return caught_up


def once_finished(once: bool, *, caught_up: bool, watcher_stopped: bool) -> bool:
    """``--once`` ends when everything is stored, unless the watcher was stopped: it has more
    to read after the broker's restart."""
    return once and caught_up and not watcher_stopped


def in_mb(rss_bytes: int | None) -> str:
    return f"{(rss_bytes or 0) / 2**20:.0f}"
