"""The worker's agents driven by Faust's ``agent.test_context()``: no broker, no ClickHouse.

``write_batch`` (the flusher's only ClickHouse I/O) and ``session_seeds`` (meeting a scope's)
are replaced by recorders; the app is built but never started, so nothing connects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from faust.topics import Topic

from ingestor.kafka.topics import DEFINITIONS
from ingestor.plain_settings import ClickHouseTarget
from ingestor.settings import Settings
from ingestor.worker import flusher, restart, scopes
from ingestor.worker.app import build_app
from ingestor.worker.state import WorkerState

EXAMPLES = DEFINITIONS.parent / "examples"


@dataclass
class Recorder:
    """What the worker asked of ClickHouse, and what it had acked and batched at each ask."""

    state: WorkerState | None = None
    events: list[Any] = field(default_factory=list)  # every event put, in order
    # (token, rows, events acked then) of each write
    writes: list[tuple[str, dict[str, list[Any]], int]] = field(default_factory=list)
    seeds: list[tuple[str, int, int]] = field(default_factory=list)  # (scope, batch, held)
    sent: list[tuple[str, bytes]] = field(default_factory=list)  # (topic, key) of each send
    restarts: list[tuple[int, int, int]] = field(default_factory=list)  # (acked, batch, held)
    lines: list[Any] = field(default_factory=list)  # the prepared lines each write was given

    def write_batch(self, ch: Any, rows: Any, *, token: str, lines: Any = None, **_: Any) -> int:
        acked = sum(event.message.acked for event in self.events)
        self.writes.append((token, {t: list(r) for t, r in rows.items()}, acked))
        self.lines.append(lines)
        return sum(len(r) for r in rows.values())

    async def send(self, topic: Any, *, key: bytes, value: bytes, **_: Any) -> None:
        self.sent.append((topic.get_topic_name(), key))

    def restart_in_place(self) -> None:
        assert self.state is not None
        acked = sum(event.message.acked for event in self.events)
        self.restarts.append((acked, self.state.batch.size, len(self.state.held)))
        raise Restarted  # the real one never returns

    def session_seeds(self, ch: Any, scope: str, progress: Callable[[], None]) -> list[Any]:
        assert self.state is not None
        self.seeds.append((scope, self.state.batch.size, len(self.state.held)))
        return []


class Restarted(Exception):
    """Raised where the worker would replace its process (``restart.restart_in_place``)."""


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()
    monkeypatch.setattr(flusher, "write_batch", rec.write_batch)
    monkeypatch.setattr(scopes, "session_seeds", rec.session_seeds)
    monkeypatch.setattr(Topic, "send", lambda topic, **kw: rec.send(topic, **kw))
    monkeypatch.setattr(restart, "restart_in_place", rec.restart_in_place)
    return rec


def _drive(rec: Recorder, kind: str, steps: Callable[[Any, Any], Awaitable[None]]) -> None:
    """Run ``steps(agent, app)`` with the ``ingest-{kind}`` agent under test."""

    async def run() -> None:
        ch: Any = SimpleNamespace(target=ClickHouseTarget("server", "db"), lost_inserts=lambda: 0)
        # No batch is ready by age while a test looks (a loaded machine is slow).
        settings = Settings(_env_file=None, batch_min_age_s=60, batch_max_age_s=60)
        app = build_app(settings, "localhost:1", ch)
        rec.state = app.ingestor_state  # type: ignore[attr-defined]
        async with app.agents[f"ingest-{kind}"].test_context() as agent:
            await steps(agent, app)

    asyncio.run(run())


async def _put(rec: Recorder, agent: Any, name: str) -> None:
    """Put the example ``name`` and wait until the agent handled it (``put`` returns once the
    agent took it), or restarted."""
    assert rec.state is not None
    handled, restarts = rec.state.counts["messages"], len(rec.restarts)
    event = await agent.put((EXAMPLES / f"{name}.json").read_bytes(), key=b"k")
    rec.events.append(event)
    for _ in range(500):
        if rec.state.counts["messages"] > handled or len(rec.restarts) > restarts:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name} was not handled")


def test_an_event_envelope_is_acked_only_after_its_rows_are_stored(recorder: Recorder) -> None:
    async def steps(agent: Any, app: Any) -> None:
        await _put(recorder, agent, "event.envelope")
        state = recorder.state
        assert state is not None
        assert recorder.writes == [] and len(state.held) == 1 and state.batch.size == 3
        assert not recorder.events[0].message.acked

        await flusher.store_held(app)

        [(token, rows, acked_then)] = recorder.writes
        assert token == f"{state.run_id}:1" and acked_then == 0
        assert [row["event_id"] for row in rows["events"]] == ["evt_0001", "evt_0002"]
        assert len(rows["tool_calls"]) == 1
        assert recorder.events[0].message.acked and state.held == []
        assert state.counts["records_stored"] == 2 and state.counts["messages"] == 1
        assert state.last_offsets == {("ingestor.events", 0): 0}

    _drive(recorder, "event", steps)


def test_a_transcript_scope_is_met_once_and_before_its_rows_join_the_batch(
    recorder: Recorder,
) -> None:
    async def steps(agent: Any, app: Any) -> None:
        await _put(recorder, agent, "transcript.columns")
        await _put(recorder, agent, "transcript.envelope")
        state = recorder.state
        assert state is not None

        # Met before the first envelope's rows were batched (nor stored on the way: the scope's
        # flush found nothing to store).
        assert recorder.seeds == [("ada-laptop", 0, 0)] and recorder.writes == []
        source = state.scopes["ada-laptop"]
        assert (source.topic, source.partition) == ("ingestor.transcripts", 0)
        # Both envelopes' lines (the same two lines twice) and their bad lines' dead letters.
        assert state.batch.size == 2 * (2 + 1)
        assert state.counts["dead_letter"] == 2
        assert [topic for topic, _ in recorder.sent] == ["ingestor.dead-letters"] * 2

    _drive(recorder, "transcript", steps)


def test_a_hole_in_the_offsets_stores_what_came_before_then_restarts(recorder: Recorder) -> None:
    async def steps(agent: Any, app: Any) -> None:
        await _put(recorder, agent, "ledger.envelope")
        agent.sent_offset = 5  # offsets 1..4 never reach the agent

        await _put(recorder, agent, "ledger.record")

        state = recorder.state
        assert state is not None
        # The first envelope stored and acked, the second (past the hole) neither batched nor
        # held, before the restart.
        assert recorder.restarts == [(1, 0, 0)]
        [(_, rows, acked_then)] = recorder.writes
        assert [row["request_id"] for row in rows["token_usage_ledger"]] == ["req_9001", "req_9002"]
        assert acked_then == 0  # stored before any ack
        assert state.counts["messages"] == 1
        assert state.last_offsets == {("ingestor.ledger", 0): 0}

    _drive(recorder, "ledger", steps)


def _prepare_with(
    monkeypatch: pytest.MonkeyPatch, rec: Recorder, during: Callable[[], None] = lambda: None
) -> list[int]:
    """``flusher.batch_lines`` replaced: each call runs ``during`` (in the preparing thread) and
    returns ``("table", rows then)``; the list gets the rows of each call."""
    calls: list[int] = []

    def batch_lines(ch: Any, lines: Any) -> tuple[str, int]:
        calls.append(len(lines))
        during()
        return ("table", len(lines))

    monkeypatch.setattr(flusher, "batch_lines", batch_lines)
    return calls


async def _flush_behind_an_insert(rec: Recorder, app: Any, calls: list[int]) -> dict[str, Any]:
    """Flush while an insert is in flight, which ends once the lines were built (``calls``):
    the rows written."""
    state = rec.state
    assert state is not None
    done = asyncio.Event()
    state.inflight = asyncio.create_task(done.wait())
    flushing = asyncio.create_task(flusher.flush(state, app))
    while not calls:  # built while the insert runs, before the batch is taken
        await asyncio.sleep(0.01)
    assert rec.writes == [] and state.batch.size > 0
    done.set()
    await flushing
    await state.inflight
    [(_, rows, _)] = rec.writes
    return rows


@pytest.mark.parametrize("added", [False, True], ids=["as built", "a line added meanwhile"])
def test_the_lines_of_a_batch_are_built_while_the_insert_before_it_runs(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch, added: bool
) -> None:
    def more() -> None:
        assert recorder.state is not None
        lines = recorder.state.batch.rows["transcript_lines"]
        if added:
            lines.extend(list(lines)[:1])  # a line came while they were built

    calls = _prepare_with(monkeypatch, recorder, more)

    async def steps(agent: Any, app: Any) -> None:
        await _put(recorder, agent, "transcript.columns")
        rows = await _flush_behind_an_insert(recorder, app, calls)
        assert calls == [2] and len(rows["transcript_lines"]) == 2 + added
        # The store got the lines built; with one more, not those 2: it builds all 3 itself.
        assert recorder.lines == [None if added else ("table", 2)]

    _drive(recorder, "transcript", steps)


def test_with_no_insert_in_flight_the_store_builds_the_lines(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _prepare_with(monkeypatch, recorder)

    async def steps(agent: Any, app: Any) -> None:
        await _put(recorder, agent, "transcript.columns")
        await flusher.store_held(app)
        assert calls == [] and recorder.lines == [None] and len(recorder.writes) == 1

    _drive(recorder, "transcript", steps)
