from __future__ import annotations

from ingestor.sink.write import Batch


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
    from ingestor.sink.write import Batch

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
