from __future__ import annotations

from ingestor.clickhouse.write import Batch


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_batch_is_due_by_size_or_age() -> None:
    clock = FakeClock()
    batch = Batch(max_rows=3, max_age_s=1.0, clock=clock)
    assert not batch.due()
    batch.add({"t": [{"a": 1}]})
    assert not batch.due()
    clock.now = 1.0
    assert batch.due()
    rows = batch.take()
    assert rows == {"t": [{"a": 1}]} and batch.size == 0 and not batch.due()
    batch.add({"t": [{}, {}], "u": [{}]})
    assert batch.due()


def test_a_batch_is_due_by_bytes_as_well() -> None:
    from ingestor.clickhouse.write import Batch

    batch = Batch(max_rows=1_000, max_age_s=3600, clock=lambda: 0.0, max_bytes=1_000)
    batch.add({"transcript_lines": [{"a": 1}]}, nbytes=600)
    assert not batch.due()
    batch.add({"transcript_lines": [{"a": 2}]}, nbytes=600)
    assert batch.due()
    batch.take()
    assert batch.nbytes == 0 and not batch.due()


def test_with_no_insert_in_flight_a_batch_goes_after_the_short_age() -> None:
    clock = FakeClock()
    batch = Batch(max_rows=1_000, max_age_s=1.0, clock=clock, min_age_s=0.05)
    assert not batch.due(idle=True)  # empty
    batch.add({"t": [{"a": 1}]})
    clock.now = 0.04
    assert not batch.due(idle=True)
    clock.now = 0.05
    assert batch.due(idle=True)
    assert not batch.due()  # an insert in flight: rows gather until the age bound
    clock.now = 1.0
    assert batch.due()


def test_the_short_age_is_at_most_the_age_bound() -> None:
    clock = FakeClock()
    batch = Batch(max_rows=1_000, max_age_s=0.3, clock=clock, min_age_s=5.0)
    batch.add({"t": [{"a": 1}]})
    clock.now = 0.3
    assert batch.due(idle=True) and batch.due()


def test_behind_a_backlog_a_batch_waits_for_its_rows_or_the_backlog_age() -> None:
    clock = FakeClock()
    batch = Batch(
        max_rows=1_000, max_age_s=1.0, clock=clock, min_age_s=0.5, backlog_rows=3, backlog_age_s=5
    )
    batch.add({"t": [{"a": 1}]})
    clock.now = 1.0
    assert batch.due() and batch.due(idle=True)  # caught up: the ages, as before
    assert not batch.due(behind=True) and not batch.due(idle=True, behind=True)
    batch.add({"t": [{"a": 2}, {"a": 3}]})
    assert batch.due(behind=True)  # the backlog's rows
    batch.take()
    batch.add({"t": [{"a": 4}]})
    clock.now = 5.9
    assert not batch.due(behind=True)
    clock.now = 6.0
    assert batch.due(behind=True)  # the backlog's age bound


def test_the_backlog_rows_are_at_most_the_rows_bound() -> None:
    batch = Batch(max_rows=2, max_age_s=1.0, clock=lambda: 0.0, backlog_rows=10)
    batch.add({"t": [{}, {}]})
    assert batch.due(behind=True)


def test_only_a_full_batch_is_full_whatever_its_age() -> None:
    # With an insert in flight the agent waits only for a full batch; an old one goes next.
    clock = FakeClock()
    batch = Batch(max_rows=2, max_age_s=1.0, clock=clock, max_bytes=1_000)
    assert not batch.full()
    batch.add({"t": [{"a": 1}]}, nbytes=10)
    clock.now = 5.0
    assert batch.due() and not batch.full()
    batch.add({"t": [{"a": 2}]}, nbytes=10)
    assert batch.full()
    batch.take()
    batch.add({"t": [{"a": 3}]}, nbytes=1_000)
    assert batch.full()


def test_behind_a_backlog_a_batch_is_full_at_the_backlog_rows() -> None:
    batch = Batch(max_rows=10, max_age_s=1.0, clock=lambda: 0.0, backlog_rows=3)
    batch.add({"t": [{}, {}, {}]})
    assert batch.full(behind=True) and not batch.full()


def test_with_an_insert_in_flight_only_a_full_batch_is_ready() -> None:
    clock = FakeClock()
    batch = Batch(
        max_rows=4, max_age_s=1.0, clock=clock, min_age_s=0.2, backlog_rows=2, backlog_age_s=10
    )
    batch.add({"t": [{"a": 1}]})
    clock.now = 30.0  # past every age bound
    assert not batch.ready(inflight=True) and not batch.ready(inflight=True, behind=True)
    assert batch.ready(inflight=False) and batch.ready(inflight=False, behind=True)
    batch.add({"t": [{"a": 2}]})
    assert batch.ready(inflight=True, behind=True)  # a backlog's rows: wait for the insert
    assert not batch.ready(inflight=True)
    batch.add({"t": [{"a": 3}, {"a": 4}]})
    assert batch.ready(inflight=True)  # the rows bound


def test_caught_up_the_short_age_waits_for_the_insert_thread_to_rest() -> None:
    clock = FakeClock()
    batch = Batch(
        max_rows=1_000, max_age_s=1.0, clock=clock, min_age_s=0.2, backlog_rows=500,
        backlog_age_s=10,
    )  # fmt: skip
    batch.add({"t": [{"a": 1}]})
    clock.now = 0.2
    assert batch.ready(inflight=False, rested=True)  # a live line goes at the short age
    assert not batch.ready(inflight=False, rested=False)  # not yet rested: the age bound
    assert not batch.ready(inflight=False, rested=True, behind=True)  # a backlog: big batches
    clock.now = 1.0
    assert batch.ready(inflight=False, rested=False)
    assert not batch.ready(inflight=False, behind=True)
    clock.now = 10.0
    assert batch.ready(inflight=False, behind=True)
