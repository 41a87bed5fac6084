"""The tracker over a fake transport: events, scopes, counters, and the never-raise contract."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sdk_fakes import FakeBroker

from ingestor.models import validate_event
from ingestor.sdk import Tracker


@pytest.fixture
def broker() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
def tracker(broker: FakeBroker) -> Iterator[Tracker]:
    t = make(broker)
    yield t
    t.close(1)


def make(broker: FakeBroker, **kwargs: Any) -> Tracker:
    options: dict[str, Any] = {
        "project_id": "p", "user_id": "u", "env": "test", "linger_s": 0.01,
        "backoff_min_s": 0.01, "backoff_max_s": 0.05, "transport": broker.transport,
    }  # fmt: skip
    return Tracker(**{**options, **kwargs})


def delivered(tracker: Tracker, broker: FakeBroker) -> list[dict[str, Any]]:
    assert tracker.flush(5)
    return broker.records


def test_every_kind_of_event_is_valid_for_the_worker(tracker: Tracker, broker: FakeBroker) -> None:
    with tracker.run("r1", session_id="s1"):
        with (
            tracker.step("plan", step_type="plan", agent_name="a"),
            tracker.prompt("m", prompt="question") as call,
        ):
            call.response("answer", tokens_input=3, tokens_output=4, cost_usd=0.25)
        with tracker.tool("search", tool_call_id="c1"):
            pass
    tracker.check(False, "cites a source", expected="a url", actual="none")
    tracker.hallucination("judge", confidence=0.9, severity="high")
    tracker.error(ValueError("bad"))
    tracker.track({"event_type": "performance_alert", "metric": "p99", "threshold": 1.0,
                   "actual_value": 2.5})  # fmt: skip
    records = delivered(tracker, broker)
    kinds = sorted(validate_event(r).event_type for r in records)
    assert kinds == sorted([
        "agent_step", "prompt_call", "tool_call", "assertion_failed", "hallucination_detected",
        "error", "performance_alert",
    ])  # fmt: skip
    for record in records:
        event = validate_event(record)
        assert (event.project_id, event.user_id, event.env) == ("p", "u", "test")
    prompt = next(r for r in records if r["event_type"] == "prompt_call")
    assert (prompt["run_id"], prompt["session_id"]) == ("r1", "s1")
    assert prompt["prompt_chars"] == 8 and "prompt" not in prompt and "response" not in prompt
    assert (
        validate_event(prompt).cost_usd == validate_event({**prompt, "cost_usd": "0.25"}).cost_usd
    )
    assert tracker.stats().sent == 7 and tracker.stats().queued == 7


def test_steps_are_numbered_within_a_run_and_name_their_parent(
    tracker: Tracker, broker: FakeBroker
) -> None:
    with tracker.run() as run:
        with tracker.step("one") as one, tracker.tool("inside"):
            pass
        with tracker.step("two"):
            pass
    records = delivered(tracker, broker)
    steps = [r for r in records if r["event_type"] == "agent_step"]
    assert [(s["step_name"], s["step_number"], s["run_id"]) for s in steps] == [
        ("one", 0, run.run_id), ("two", 1, run.run_id)
    ]  # fmt: skip
    tool = next(r for r in records if r["event_type"] == "tool_call")
    assert tool["parent_id"] == one.event_id == steps[0]["event_id"]
    assert "parent_id" not in steps[1]


def test_decorators_time_sync_and_async_calls_each_as_a_new_event(
    tracker: Tracker, broker: FakeBroker
) -> None:
    @tracker.tool("sync")
    def sync(x: int) -> int:
        time.sleep(0.02)
        return x * 2

    @tracker.step("async step")
    async def step(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    @tracker.run()
    async def agent() -> list[int]:
        return [await step(1), await step(2)]

    assert sync(2) == 4 and sync(3) == 6
    assert asyncio.run(agent()) == [2, 3]
    records = delivered(tracker, broker)
    tools = [r for r in records if r["event_type"] == "tool_call"]
    assert len({t["event_id"] for t in tools}) == 2 and all(t["latency_ms"] >= 20 for t in tools)
    steps = [r for r in records if r["event_type"] == "agent_step"]
    assert [s["step_number"] for s in steps] == [0, 1] and len({s["run_id"] for s in steps}) == 1


def test_an_exception_leaving_a_scope_is_recorded_and_still_propagates(
    tracker: Tracker, broker: FakeBroker
) -> None:
    with pytest.raises(KeyError), tracker.tool("lookup"):
        raise KeyError("order 7")
    with pytest.raises(TimeoutError), tracker.prompt("m"):
        raise TimeoutError

    async def cancelled() -> None:
        async with tracker.prompt("m"):
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancelled())
    records = delivered(tracker, broker)
    tool = next(r for r in records if r["event_type"] == "tool_call")
    assert tool["status"] == "error" and tool["error_message"] == "'order 7'"
    statuses = sorted(r["status"] for r in records if r["event_type"] == "prompt_call")
    assert statuses == ["cancelled", "timeout"]
    errors = [r for r in records if r["event_type"] == "error"]
    assert sorted(e["error_type"] for e in errors) == ["KeyError", "TimeoutError"]
    assert {e["source_event_id"] for e in errors} <= {r["event_id"] for r in records}


def test_text_is_sent_only_with_capture_text(broker: FakeBroker) -> None:
    tracker = make(broker, capture_text=True)
    with tracker.prompt("m", prompt=[{"role": "user", "content": "hi"}]) as call:
        call.response("hello")
    [record] = delivered(tracker, broker)
    assert record["response"] == "hello" and '"hi"' in record["prompt"]
    tracker.close(1)


def test_an_idempotency_key_makes_a_repeated_event_the_same_event(
    tracker: Tracker, broker: FakeBroker
) -> None:
    for _ in range(2):
        with tracker.prompt("m", idempotency_key="request-42"):
            pass
        tracker.track({"event_type": "error", "error_type": "X"}, idempotency_key="e-1")
    records = delivered(tracker, broker)
    assert len(records) == 4 and len({r["event_id"] for r in records}) == 2


def test_broker_down_nothing_raises_the_queue_bounds_memory_and_all_queued_is_sent_later(
    broker: FakeBroker,
) -> None:
    broker.up = False
    tracker = make(broker, max_queue=50, batch_records=10)
    for _ in range(80):
        with tracker.tool("t"):
            pass
    started = time.monotonic()
    assert tracker.flush(0.3) is False
    # Not a timing figure: only a flush that waited for the broker would take this long (it
    # failed at a 1.5 s bound on a machine with a load of 14).
    assert time.monotonic() - started < 10
    stats = tracker.stats()
    assert stats.queued + stats.dropped == 80 and stats.dropped >= 20 and stats.sent == 0
    assert stats.retried > 0 and stats.pending == stats.queued
    broker.up = True
    assert tracker.flush(5)
    stats = tracker.stats()
    assert stats.sent == stats.queued and stats.pending == 0 and stats.failed == 0
    assert len(broker.records) == stats.sent
    tracker.close(1)


def test_close_returns_within_its_timeout_when_the_broker_hangs(broker: FakeBroker) -> None:
    broker.hang = True
    tracker = make(broker)
    tracker.track({"event_type": "error", "error_type": "X"})
    time.sleep(0.05)  # the sender is now stuck in send
    started = time.monotonic()
    assert tracker.close(0.4) is False
    # Not a timing figure: only a flush that waited for the broker would take this long (it
    # failed at a 1.5 s bound on a machine with a load of 14).
    assert time.monotonic() - started < 10
    # The cancelled sender counts what it held as failed as it ends, which under load can be
    # just after close() returned (seen at a load of 22).
    settled = time.monotonic() + 10
    while tracker.stats().pending and time.monotonic() < settled:
        time.sleep(0.01)
    stats = tracker.stats()
    assert (stats.failed, stats.pending, stats.sent) == (1, 0, 0)
    tracker.track({"event_type": "error", "error_type": "after close"})
    assert tracker.stats().dropped == 1


def test_a_message_refused_for_good_counts_as_failed(broker: FakeBroker) -> None:
    broker.refuse = ValueError
    tracker = make(broker)
    tracker.track({"event_type": "error", "error_type": "X"})
    assert tracker.flush(2) is False  # nothing pending, but not delivered either
    assert tracker.stats().failed == 1 and tracker.stats().sent == 0
    tracker.close(1)


def test_nothing_the_sdk_does_raises_into_the_host(broker: FakeBroker) -> None:
    def broken() -> Any:
        raise RuntimeError("transport factory bug")

    tracker = make(broker, transport=broken)
    tracker.track({"event_type": "error"})
    tracker.track(None)  # type: ignore[arg-type]
    tracker.error(object())  # type: ignore[arg-type]
    with tracker.prompt("m", prompt=object()) as call:
        call.response(object())

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError

    with pytest.raises(Unprintable), tracker.tool("t"):
        raise Unprintable
    assert tracker.flush(0.2) is False
    assert tracker.close(0.2) is False
    assert tracker.stats().dropped >= 1


def test_asyncio_code_flushes_without_blocking_its_loop(
    tracker: Tracker, broker: FakeBroker
) -> None:
    async def app() -> bool:
        async with tracker.tool("t"):
            await asyncio.sleep(0)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        ticker = asyncio.create_task(tick())
        ok = await tracker.aflush(2)
        ticker.cancel()
        return ok and ticks > 0

    assert asyncio.run(app())
    assert len(broker.records) == 1
