"""The supervise loop's decisions (``cli/up_decide.py``), without processes: what to do about
the embedded broker, when to ask the worker, when to look, and when ``--once`` is done. The I/O
a decision may need is a fake that counts its calls."""

from __future__ import annotations

from pathlib import Path
from typing import Generic, TypeVar

import pytest

from ingestor.cli.up_children import Window
from ingestor.cli.up_decide import (
    ASK_EVERY_S,
    CONFIRM_S,
    LOOK_S,
    BrokerTurn,
    Looks,
    broker_turn,
    look_due,
    once_finished,
    recycle_bound,
    restart_reason,
    should_ask,
)
from ingestor.local.recycle import BrokerAction
from ingestor.settings import Settings

MB = 2**20
T = TypeVar("T")


class Asked(Generic[T]):
    """A fake for the I/O a decision may call: its answer, and how often it was asked."""

    def __init__(self, answer: T) -> None:
        self.answer, self.calls = answer, 0

    def __call__(self) -> T:
        self.calls += 1
        return self.answer


def _turn(
    action: BrokerAction,
    *,
    caught_up: bool = True,
    once: bool = False,
    read_all: bool = False,
    drained: Asked[bool] | None = None,
) -> BrokerTurn:
    return broker_turn(
        action,
        caught_up=caught_up,
        once=once,
        read_all=read_all,
        drained=drained or Asked(True),
    )


# ---------------------------------------------------------------------- the broker


@pytest.mark.parametrize("caught_up", [True, False])
@pytest.mark.parametrize("once", [True, False])
def test_a_dead_broker_is_recovered_whatever_the_run_and_the_broker_is_not_asked(
    caught_up: bool, once: bool
) -> None:
    drained = Asked(False)
    turn = _turn(
        BrokerAction.RECOVER, caught_up=caught_up, once=once, read_all=True, drained=drained
    )
    assert turn is BrokerTurn.RECOVER
    assert drained.calls == 0


def test_a_kept_broker_is_kept_and_not_asked() -> None:
    drained = Asked(True)
    assert _turn(BrokerAction.KEEP, once=True, read_all=True, drained=drained) is BrokerTurn.KEEP
    assert drained.calls == 0


def test_a_planned_restart_behind_a_backlog_waits_for_the_worker_to_catch_up() -> None:
    drained = Asked(True)
    turn = _turn(BrokerAction.RECYCLE, caught_up=False, once=True, read_all=True, drained=drained)
    assert turn is BrokerTurn.CATCH_UP
    assert drained.calls == 0  # a backlog decides it: the broker is not asked


def test_a_planned_restart_waits_for_events_the_worker_has_not_handled() -> None:
    drained = Asked(False)
    assert _turn(BrokerAction.RECYCLE, drained=drained) is BrokerTurn.KEEP
    assert drained.calls == 1


def test_once_with_everything_read_and_stored_finishes_instead_of_restarting() -> None:
    assert _turn(BrokerAction.RECYCLE, once=True, read_all=True) is BrokerTurn.FINISH


def test_once_finishes_only_once_the_broker_is_drained() -> None:
    # Events only in this broker: they must be stored before up exits, so it keeps running.
    turn = _turn(BrokerAction.RECYCLE, once=True, read_all=True, drained=Asked(False))
    assert turn is BrokerTurn.KEEP


@pytest.mark.parametrize(("once", "read_all"), [(True, False), (False, True), (False, False)])
def test_a_drained_caught_up_broker_over_its_bound_is_restarted(once: bool, read_all: bool) -> None:
    drained = Asked(True)
    turn = _turn(BrokerAction.RECYCLE, once=once, read_all=read_all, drained=drained)
    assert turn is BrokerTurn.RECYCLE
    assert drained.calls == 1


def test_the_worker_is_asked_only_over_the_bound_unsure_and_not_too_often() -> None:
    assert should_ask(only_replayable=False, over=True, since_ask_s=ASK_EVERY_S)
    assert should_ask(only_replayable=False, over=True, since_ask_s=ASK_EVERY_S + 5)
    assert not should_ask(only_replayable=False, over=True, since_ask_s=ASK_EVERY_S - 0.01)
    assert not should_ask(
        only_replayable=True, over=True, since_ask_s=ASK_EVERY_S
    )  # the looks said
    assert not should_ask(only_replayable=False, over=False, since_ask_s=ASK_EVERY_S)


def test_the_restart_says_why() -> None:
    alive: Asked[int | None] = Asked(None)  # a running broker's process is not polled
    recycle = restart_reason(BrokerTurn.RECYCLE, returncode=alive, rss_bytes=300 * MB)
    assert recycle == "the broker holds 300 MB, none of it only there"
    assert alive.calls == 0
    killed: Asked[int | None] = Asked(-9)
    died = restart_reason(BrokerTurn.RECOVER, returncode=killed, rss_bytes=None)
    assert died == "the broker died (signal SIGKILL)"
    assert restart_reason(BrokerTurn.RECOVER, returncode=Asked(None), rss_bytes=None) == (
        "the broker died (status 0)"
    )


def test_a_windowed_backfill_plans_no_broker_restart(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, tansu_max_rss_mb=1.5)
    assert recycle_bound(settings, None) == int(1.5 * MB)
    assert recycle_bound(settings, Window(since_ms=0, until_ms=None)) == 0


# ---------------------------------------------------------------------- the looks and --once


def test_a_look_confirming_the_end_comes_a_tick_later_and_reads_no_file() -> None:
    idle = Asked(True)
    assert look_due(True, confirming=True, turned_idle=idle) == CONFIRM_S
    assert idle.calls == 0


def test_once_looks_at_once_when_the_watcher_turned_idle() -> None:
    assert look_due(True, confirming=False, turned_idle=Asked(True)) == 0.0
    assert look_due(True, confirming=False, turned_idle=Asked(False)) == LOOK_S


def test_following_looks_at_the_usual_pace_and_reads_no_file() -> None:
    idle = Asked(True)
    assert look_due(False, confirming=True, turned_idle=idle) == LOOK_S
    assert look_due(False, confirming=False, turned_idle=idle) == LOOK_S
    assert idle.calls == 0


def test_everything_is_stored_when_two_looks_in_a_row_say_the_same_count() -> None:
    looks = Looks()
    assert not looks.confirming
    assert not looks.saw(None, only_replayable=False)
    assert not looks.saw(10, only_replayable=False)  # first sight: not yet
    assert looks.confirming
    assert not looks.saw(12, only_replayable=False)  # something new in between
    assert looks.saw(12, only_replayable=False)
    assert looks.saw(12, only_replayable=False)
    assert not looks.saw(None, only_replayable=False)
    assert not looks.confirming


def test_only_replayable_takes_the_last_two_looks() -> None:
    looks = Looks()
    looks.saw(None, only_replayable=True)
    assert not looks.only_replayable  # one look is not enough
    looks.saw(None, only_replayable=True)
    assert looks.only_replayable
    looks.saw(None, only_replayable=False)
    assert not looks.only_replayable
    looks.saw(5, only_replayable=False)
    looks.saw(5, only_replayable=False)  # caught up counts as only replayable
    assert not looks.only_replayable  # the look before did not say so
    looks.saw(5, only_replayable=False)
    assert looks.only_replayable


def test_once_finishes_caught_up_unless_the_watcher_was_stopped() -> None:
    assert once_finished(True, caught_up=True, watcher_stopped=False)
    assert not once_finished(True, caught_up=True, watcher_stopped=True)  # more to read
    assert not once_finished(True, caught_up=False, watcher_stopped=False)
    assert not once_finished(False, caught_up=True, watcher_stopped=False)  # it follows
