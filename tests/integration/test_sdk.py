"""``ingestor.sdk`` against the real local broker (and, for the first test, the whole pipeline).

Events arrive exactly once in ClickHouse; with the broker away the host is never disturbed, the
counters say what was kept and dropped, and what was kept is sent when the broker comes back;
a forked child sends only its own events; an interpreter that exits flushes first.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from pipeline import Pipeline, free_port, wait_for

from ingestor.kafka.topics import create_topics
from ingestor.local import tansu
from ingestor.local.tansu import TansuBroker
from ingestor.sdk import Tracker
from ingestor.settings import Settings
from ingestor.wire import decode_message

pytestmark = [pytest.mark.integration]


def events_topic(bootstrap: str) -> str:
    settings = Settings(topic_prefix=f"sdk{uuid.uuid4().hex[:8]}.")
    asyncio.run(create_topics(settings, bootstrap))
    return settings.topic("events")


def read_events(bootstrap: str, topic: str, *, expected: int, timeout_s: float = 30) -> list[Any]:
    """Every record on ``topic``, envelopes unpacked; reads on a little past ``expected`` so that
    duplicates would show."""

    async def read() -> list[Any]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            out: list[Any] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            settle: float | None = None
            while loop.time() < deadline and (settle is None or loop.time() < settle):
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for r in records:
                        out.extend(decode_message("event", r.value).records)
                if len(out) >= expected and settle is None:
                    settle = loop.time() + 0.5
            return out
        finally:
            await consumer.stop()

    return asyncio.run(read())


def test_tracked_events_are_stored_exactly_once(pipeline: Pipeline) -> None:
    pipeline.start_worker()
    # A long linger: only the flush sends, so everything goes in one batch (two keys: two messages).
    tracker = Tracker(
        pipeline.bootstrap, project_id="app", user_id="u1", linger_s=60,
        topic=pipeline.settings.topic("events"),
    )  # fmt: skip
    with tracker.run("run-1", session_id="s1"):
        for i in range(3):
            with tracker.step(f"step {i}"), tracker.prompt("m", prompt="q") as call:
                call.response("a", tokens_input=10, tokens_output=5, cost_usd=0.001)
        with tracker.tool("search"):
            pass
    for _ in range(2):  # a retried call with the app's idempotency key: one event
        tracker.track({"event_type": "error", "error_type": "X"}, idempotency_key="once")
    assert tracker.flush(30)
    stats = tracker.stats()
    assert (stats.queued, stats.sent, stats.dropped, stats.failed) == (9, 9, 0, 0)
    tracker.close(5)

    def stored() -> bool:
        s = pipeline.stats() or {}
        return s.get("counts", {}).get("messages", 0) >= 2 and s.get("pending_rows") == 0

    wait_for(stored, timeout_s=60, what="the SDK's two messages stored")
    pipeline.stop_worker()
    with pipeline.clickhouse() as ch:
        [(rows, ids)] = ch.query("SELECT count(), uniqExact(event_id) FROM events")
        assert (rows, ids) == (8, 8)
        steps = ch.query("SELECT step_number, run_id FROM agent_steps ORDER BY step_number")
        assert steps == [(0, "run-1"), (1, "run-1"), (2, "run-1")]
        [(tools,)] = ch.query("SELECT count() FROM tool_calls")
        assert tools == 1
        [(calls, tokens)] = ch.query(
            "SELECT sum(events), sum(tokens_input) FROM hourly_metrics "
            "WHERE event_type = 'prompt_call'"
        )
        assert (calls, tokens) == (3, 30)


def test_broker_away_then_back_nothing_raises_drops_are_counted_and_the_rest_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()  # nothing listens here yet
    tracker = Tracker(
        f"127.0.0.1:{port}", project_id="app", max_queue=20, linger_s=0.05,
        backoff_min_s=0.1, backoff_max_s=0.5, request_timeout_s=3, topic="sdk-away.events",
    )  # fmt: skip
    ids = []
    started = time.monotonic()
    for _ in range(30):
        with tracker.tool("search") as call:
            ids.append(call.event_id)
    assert time.monotonic() - started < 0.5  # the host was never held up
    t0 = time.monotonic()
    assert tracker.flush(0.5) is False
    assert time.monotonic() - t0 < 1.5
    stats = tracker.stats()
    assert (stats.queued, stats.dropped, stats.sent, stats.pending) == (20, 10, 0, 20)
    assert stats.retried > 0

    monkeypatch.setattr(tansu, "_free_port", lambda host: port)
    with TansuBroker() as broker:
        assert broker.bootstrap == f"127.0.0.1:{port}"
        settings = Settings(topic_prefix="sdk-away.")
        asyncio.run(create_topics(settings, broker.bootstrap))
        assert tracker.flush(60)
        stats = tracker.stats()
        assert (stats.queued, stats.sent, stats.dropped, stats.failed) == (20, 20, 10, 0)
        records = read_events(broker.bootstrap, "sdk-away.events", expected=20)
        assert sorted(r["event_id"] for r in records) == sorted(ids[:20])
    tracker.close(1)


def test_a_forked_child_sends_its_events_once_and_not_the_parents(kafka_bootstrap: str) -> None:
    topic = events_topic(kafka_bootstrap)
    tracker = Tracker(kafka_bootstrap, project_id="app", topic=topic, linger_s=0.05)
    tracker.track({"event_type": "error", "error_type": "parent before fork"})
    assert tracker.flush(30)
    tracker.track({"event_type": "error", "error_type": "parent queued at fork"})
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            tracker.track({"event_type": "error", "error_type": "child"})
            code = 0 if tracker.close(20) and tracker.stats().sent == 1 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert tracker.flush(30)
    records = read_events(kafka_bootstrap, topic, expected=3)
    assert sorted(r["error_type"] for r in records) == [
        "child", "parent before fork", "parent queued at fork"
    ]  # fmt: skip
    tracker.close(1)


def test_an_exiting_interpreter_flushes_first(kafka_bootstrap: str) -> None:
    topic = events_topic(kafka_bootstrap)
    code = f"""
        from ingestor.sdk import Tracker
        tracker = Tracker({kafka_bootstrap!r}, project_id="app", topic={topic!r}, linger_s=60)
        for i in range(50):
            with tracker.prompt("m", prompt="secret prompt text") as call:
                call.response("secret answer", tokens_input=i)
        """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
        timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = read_events(kafka_bootstrap, topic, expected=50)
    assert sorted(r["tokens_input"] for r in records) == list(range(50))
    assert not any("secret" in str(r) for r in records)
