"""When ``ingestor up`` restarts the embedded broker (``local/recycle.py``)."""

from __future__ import annotations

from ingestor.local.recycle import BrokerAction, BrokerRecycle

MB = 2**20


def test_a_dead_broker_is_recovered_whatever_it_held() -> None:
    policy = BrokerRecycle(max_rss_bytes=0)
    assert policy.decide(alive=False, rss_bytes=None, only_replayable=False) is BrokerAction.RECOVER


def test_over_the_bound_it_is_restarted_only_when_nothing_unreplayable_waits() -> None:
    policy = BrokerRecycle(max_rss_bytes=100 * MB)
    over, under = 101 * MB, 99 * MB
    assert policy.decide(alive=True, rss_bytes=over, only_replayable=True) is BrokerAction.RECYCLE
    # SDK events or ledger entries not yet stored exist nowhere else: keep the broker.
    assert policy.decide(alive=True, rss_bytes=over, only_replayable=False) is BrokerAction.KEEP
    assert policy.decide(alive=True, rss_bytes=under, only_replayable=True) is BrokerAction.KEEP
    assert policy.decide(alive=True, rss_bytes=None, only_replayable=True) is BrokerAction.KEEP


def test_a_zero_bound_never_restarts_a_live_broker() -> None:
    policy = BrokerRecycle(max_rss_bytes=0)
    assert policy.decide(alive=True, rss_bytes=10**12, only_replayable=True) is BrokerAction.KEEP


def test_a_planned_restart_waits_for_the_worker_to_store_something() -> None:
    # A fresh broker over a tight bound before the worker's first batch: restarting it now would
    # start over with nothing stored, again and again (seen in `make soak`).
    policy = BrokerRecycle(max_rss_bytes=100 * MB)
    over = 101 * MB
    waiting = policy.decide(alive=True, rss_bytes=over, only_replayable=True, progressed=False)
    assert waiting is BrokerAction.KEEP
    assert (
        policy.decide(alive=False, rss_bytes=over, only_replayable=True, progressed=False)
        is BrokerAction.RECOVER
    )
