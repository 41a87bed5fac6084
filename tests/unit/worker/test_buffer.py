"""The stream buffer bounded in bytes (``worker/buffer.py``), through mode's own calls: the
``put_nowait_enhanced`` Faust's conductor makes for every fetched message, and the gets."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from mode.utils.queues import FlowControlEvent, ThrowableQueue

from ingestor.plain_settings import ClickHouseTarget
from ingestor.settings import Settings
from ingestor.worker.app import build_app
from ingestor.worker.buffer import BytesBoundedQueue, value_bytes


def _event(size: int) -> Any:
    return SimpleNamespace(message=SimpleNamespace(value=b"x" * size))


class Fetch:
    """A partition's fetch as Faust's consumer sees it: taken out under pressure, put back."""

    def __init__(self) -> None:
        self.fetching = True
        self.pauses = 0

    def high(self) -> None:
        self.fetching = False
        self.pauses += 1

    def drop(self) -> None:
        self.fetching = True


def _queue(maxsize: int = 100, max_bytes: int = 1000) -> BytesBoundedQueue:
    return BytesBoundedQueue(maxsize=maxsize, max_bytes=max_bytes, flow_control=FlowControlEvent())


def _put(queue: BytesBoundedQueue, fetch: Fetch, size: int) -> bool:
    return queue.put_nowait_enhanced(
        _event(size), on_pressure_high=fetch.high, on_pressure_drop=fetch.drop
    )


def test_a_value_counts_its_bytes_and_anything_else_none() -> None:
    assert value_bytes(_event(7)) == 7
    assert value_bytes(SimpleNamespace(message=SimpleNamespace(value=None))) == 0
    assert value_bytes(object()) == 0


def test_bytes_put_the_partition_under_pressure_long_before_the_count_does() -> None:
    queue, fetch = _queue(maxsize=100, max_bytes=1000), Fetch()
    for _ in range(4):  # 0..900 bytes held when each is put: below the bound
        assert not _put(queue, fetch, 300)
    assert queue.bytes == 1200 and fetch.fetching
    assert _put(queue, fetch, 300)  # 1200 >= 1000 held: out of the fetch, the message kept
    assert not fetch.fetching and queue.qsize() == 5 and queue.bytes == 1500
    assert not _put(queue, fetch, 300)  # already pending: not paused twice
    assert fetch.pauses == 1


def test_the_partition_fetches_again_once_the_bytes_are_down_to_40_percent() -> None:
    queue, fetch = _queue(maxsize=100, max_bytes=1000), Fetch()
    for _ in range(6):
        _put(queue, fetch, 300)
    assert not fetch.fetching
    before = []  # mode decides on what the queue holds when a get begins
    while not fetch.fetching:
        before.append(queue.bytes)
        queue.get_nowait()
    assert before == [1800, 1500, 1200, 900, 600, 300]  # back in at the get that found <= 400


def test_an_emptied_queue_puts_every_waiting_partition_back() -> None:
    queue = _queue(maxsize=100, max_bytes=100)
    fetches = [Fetch(), Fetch()]
    for fetch in (fetches[0], fetches[0], fetches[0], fetches[1]):
        _put(queue, fetch, 60)  # from 120 bytes held on, each put is under pressure
    assert [f.fetching for f in fetches] == [False, False]

    async def drain() -> None:
        while queue.qsize():
            queue.get_nowait()
        # Faust's stream awaits the next message on an empty queue: that get lets them go.
        getter = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        getter.cancel()

    asyncio.run(drain())
    assert [f.fetching for f in fetches] == [True, True]
    assert queue.bytes == 0


def test_a_message_larger_than_the_bound_passes() -> None:
    queue, fetch = _queue(maxsize=100, max_bytes=100), Fetch()
    assert not _put(queue, fetch, 5000)
    assert queue.qsize() == 1 and queue.bytes == 5000
    assert queue.get_nowait().message.value == b"x" * 5000
    assert queue.bytes == 0


def test_the_count_still_bounds_small_messages() -> None:
    queue, fetch = _queue(maxsize=10, max_bytes=1 << 30), Fetch()
    for _ in range(8):  # pressure at 80% of 10
        _put(queue, fetch, 1)
    assert fetch.fetching
    assert _put(queue, fetch, 1)
    assert not fetch.fetching


def test_a_cleared_queue_holds_no_bytes() -> None:
    queue, fetch = _queue(), Fetch()
    _put(queue, fetch, 500)
    queue.clear()  # Faust clears the buffers on a rebalance
    assert queue.bytes == 0 and queue.qsize() == 0


def test_the_workers_stream_buffers_are_bounded_in_the_settings_bytes() -> None:
    ch: Any = SimpleNamespace(target=ClickHouseTarget("server", "db"), lost_inserts=lambda: 0)

    def queue_of(**settings: Any) -> Any:
        app = build_app(Settings(_env_file=None, **settings), "localhost:1", ch)
        return app.FlowControlQueue(maxsize=64, clear_on_resume=True)

    bounded = queue_of(worker_stream_buffer_bytes=12345)
    assert isinstance(bounded, BytesBoundedQueue)
    assert bounded.max_bytes == 12345 and bounded.maxsize == 64
    plain = queue_of(worker_stream_buffer_bytes=0)
    assert isinstance(plain, ThrowableQueue) and not isinstance(plain, BytesBoundedQueue)
