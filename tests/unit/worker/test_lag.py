"""How far behind the worker says it is: an input partition never fetched is not 'caught up'."""

from __future__ import annotations

from typing import Any, NamedTuple

from ingestor.worker.lag import behind, partition_lag


class TP(NamedTuple):
    topic: str
    partition: int


class _Consumer:
    def __init__(self, highwaters: dict[TP, int | None], committed: dict[TP, int]) -> None:
        self._highwaters = highwaters
        self._committed_offset = committed

    def assignment(self) -> set[TP]:
        return set(self._highwaters)

    def highwater(self, tp: TP) -> int | None:
        return self._highwaters[tp]


class _Conf:
    id = "ingestor"


class _App:
    def __init__(self, consumer: _Consumer) -> None:
        self.consumer = consumer
        self.conf = _Conf()


def app(highwaters: dict[TP, int | None], committed: dict[TP, int] | None = None) -> Any:
    return _App(_Consumer(highwaters, committed or {}))


def test_a_partition_read_to_its_end_is_not_behind() -> None:
    a, b = TP("transcripts", 0), TP("transcripts", 1)
    worker = app({a: 10, b: 0})
    assert partition_lag(worker, {("transcripts", 0): 9}) == {
        ("transcripts", 0): 0,
        ("transcripts", 1): 0,
    }
    assert behind(worker, {("transcripts", 0): 9}) == 0


def test_records_below_the_highwater_count() -> None:
    a = TP("transcripts", 0)
    assert behind(app({a: 10}), {("transcripts", 0): 4}) == 5
    # Committed as Kafka keeps it, the next to read: 7, 8 and 9 are behind.
    assert behind(app({a: 10}, {a: 7}), {}) == 3
    # A worker restarted with one record left is one behind, not caught up (the `up --once`
    # that ended without the last message of a bundle); with all committed, none.
    assert behind(app({a: 10}, {a: 9}), {}) == 1
    assert behind(app({a: 10}, {a: 10}), {}) == 0
    assert behind(app({a: 10}, {a: 10}), {("transcripts", 0): 9}) == 0


def test_a_partition_never_fetched_makes_behind_unknown() -> None:
    # Seen on a failover survivor: an assigned partition never fetched has no high-watermark.
    # Counted as 0, the others' lag alone said "caught up" with that partition unread.
    a, b = TP("transcripts", 0), TP("transcripts", 1)
    worker = app({a: 10, b: None})
    assert partition_lag(worker, {("transcripts", 0): 9}) == {("transcripts", 0): 0}
    assert behind(worker, {("transcripts", 0): 9}) is None


def test_changelogs_do_not_count_and_nothing_assigned_is_unknown() -> None:
    changelog = TP("ingestor-sessions-changelog", 0)
    assert behind(app({changelog: None}), {}) is None
    assert behind(app({}), {}) is None
    assert behind(app({changelog: None, TP("events", 0): 3}), {("events", 0): 2}) == 0


def test_an_end_offset_from_the_broker_counts_past_a_stale_fetch() -> None:
    # A partition Faust stopped fetching keeps its last fetch's high-watermark: counted from it
    # alone the worker said 0 with 531 events unread (CI, fault seed 110411).
    a, b = TP("events", 0), TP("events", 1)
    worker = app({a: 603, b: None})
    done = {("events", 0): 602}
    assert behind(worker, done) is None
    assert behind(worker, done, {("events", 0): 1134, ("events", 1): 0}) == 531
    # A listed end behind the fetch's (Tansu's ListOffsets after multi-record batches) is not
    # taken over it.
    assert partition_lag(worker, done, {("events", 0): 500, ("events", 1): 0}) == {
        ("events", 0): 0,
        ("events", 1): 0,
    }
