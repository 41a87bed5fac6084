"""When the watchdog restarts the worker: a partition with records the agent never had."""

from __future__ import annotations

from ingestor.worker.lag import stalled


def test_a_hole_after_the_last_record_handled_is_stalled() -> None:
    assert stalled(highwater=10, last=5, committed=3)
    assert not stalled(highwater=6, last=5, committed=3)  # handled up to the end


def test_a_partition_taken_over_that_delivered_nothing() -> None:
    # Failover: records above the committed offset never reached the agent.
    assert stalled(highwater=40, last=None, committed=25)
    assert stalled(highwater=40, last=None, committed=None)  # nothing committed (or offset 0)
    # Nothing new since the committed offset (Kafka's: the next record to read): not stalled.
    assert not stalled(highwater=25, last=None, committed=25)
    assert not stalled(highwater=0, last=None, committed=None)
