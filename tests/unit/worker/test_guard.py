"""When the worker restarts for re-delivery: records of a partition the agent never had."""

from __future__ import annotations

from ingestor.worker.guard import missing, remedy, stalled


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


def test_a_record_after_a_hole_names_the_hole() -> None:
    assert missing(offset=9, last=5, committed=None) == (6, 8)
    assert missing(offset=6, last=5, committed=3) is None  # the next one
    assert missing(offset=4, last=5, committed=None) is None  # delivered again: no hole


def test_the_first_record_since_the_assignment_must_be_the_committed_one() -> None:
    # Seen on Apache Kafka: committed 44, the agent's first record 63.
    assert missing(offset=63, last=None, committed=44) == (44, 62)
    assert missing(offset=44, last=None, committed=44) is None
    # No committed offset (or 0, which Faust reads as None): the partition may start past 0.
    assert missing(offset=63, last=None, committed=None) is None


def test_records_fetched_and_dropped_are_fetched_again_before_any_restart() -> None:
    # Seen on Apache Kafka: handled 26, the fetch position at the high-watermark 63.
    assert remedy(26, 20, 63, idle_s=10, handling=False, seeks=0) == ("seek", 27)
    assert remedy(None, 44, 63, idle_s=10, handling=False, seeks=0) == ("seek", 44)
    assert remedy(26, 20, 63, idle_s=9, handling=False, seeks=0) is None  # not yet
    # A record being handled: those behind it wait in Faust's queue.
    assert remedy(26, 20, 63, idle_s=10, handling=True, seeks=0) is None
    # Seeking did not help (three times): restart, once STALL_S has passed.
    assert remedy(26, 20, 63, idle_s=10, handling=False, seeks=3) is None
    assert remedy(26, 20, 63, idle_s=30, handling=False, seeks=3) == ("restart", None)


def test_records_never_fetched_restart_after_the_stall_time() -> None:
    assert remedy(26, 20, 27, idle_s=10, handling=False, seeks=0) is None
    assert remedy(26, 20, 27, idle_s=30, handling=False, seeks=0) == ("restart", None)
    # No committed offset and nothing handled: nothing to seek to.
    assert remedy(None, None, 40, idle_s=30, handling=False, seeks=0) == ("restart", None)
    assert remedy(26, 20, None, idle_s=30, handling=True, seeks=0) == ("restart", None)


def test_a_partition_faust_stopped_fetching_is_fetched_again_before_any_restart() -> None:
    # Faust takes a partition out of its fetch while the stream's buffer is full and puts it
    # back as the buffer drains; when that moment is missed, nothing is fetched and no record
    # reveals the hole (the fetch's high-watermark stops moving too).
    assert remedy(26, 20, 27, idle_s=10, handling=False, seeks=0, fetching=False) == (
        "resume",
        None,
    )
    assert remedy(None, 44, 44, idle_s=10, handling=False, seeks=0, fetching=False) == (
        "resume",
        None,
    )
    assert remedy(26, 20, 27, idle_s=9, handling=False, seeks=0, fetching=False) is None
    assert remedy(26, 20, 27, idle_s=10, handling=True, seeks=0, fetching=False) is None
    # Fetched and dropped: seeking back comes first, wherever the fetch stands.
    assert remedy(26, 20, 63, idle_s=10, handling=False, seeks=0, fetching=False) == ("seek", 27)
    # Did not help three times: restart once STALL_S has passed.
    assert remedy(26, 20, 27, idle_s=10, handling=False, seeks=3, fetching=False) is None
    assert remedy(26, 20, 27, idle_s=30, handling=False, seeks=3, fetching=False) == (
        "restart",
        None,
    )
