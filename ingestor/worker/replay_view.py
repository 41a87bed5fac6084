"""``POST /replay/``: the running worker replays one offset range into its ClickHouse (and
``POST /verify/topic``, same body: checks the range's rows against it, ``report/verify_topics``).

The embedded ClickHouse (chdb) admits one process per data dir, and while ``ingestor up`` runs
its worker holds it; so ``ingestor replay`` plans the ranges and asks the worker to read and
store them, a chunk a request. The worker is also the right writer on a server: it stores a
replayed chunk under the lock its own flushes take, after the insert in flight, so a replayed
event and a live copy of it cannot both pass the "id not stored yet" check
(``clickhouse/write.py``) and reach the rollups twice.

Body (JSON): ``{"topic": str, "partition": int, "start": int, "end": int}``, a topic among the
worker's input topics. Reply: ``{"messages", "records", "dead_letters", "rows", "next"}``, where
``next`` is the offset to ask from (``end`` when the range is done). Only
``Content-Type: application/json`` is taken: a web page cannot send that to loopback without a
CORS preflight, which this view does not answer.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer
from faust.web import View

from ingestor.errors import IngestorError
from ingestor.kafka.config import client_kwargs
from ingestor.kafka.ranges import Range, read_range
from ingestor.kafka.topics import load_topic_defs
from ingestor.report.verify_topics import check_rows
from ingestor.usage.winners import CountedChange
from ingestor.worker.follow import apply_changes
from ingestor.worker.hosts import HostCheck
from ingestor.worker.replay import Replayed, replay_rows, write_replayed

if TYPE_CHECKING:
    from ingestor.worker.state import WorkerState

__all__ = ["register_replay"]


def register_replay(app: Any, state: WorkerState, hosts: HostCheck) -> None:
    settings = state.settings
    kinds = {t.name: t.kind for t in load_topic_defs(settings) if t.kind is not None}
    run = uuid.uuid4().hex
    chunks = 0

    def reply(view: View, body: Any, status: int = 200) -> Any:
        return view.bytes(json.dumps(body).encode(), content_type="application/json", status=status)

    async def read(view: View, request: Any) -> tuple[Replayed, int] | Any:
        """The asked range's rows as the worker builds them, and where to go on; or a reply."""
        if not hosts.allows(request.headers.get("Host")):
            return reply(view, {"error": "unknown Host header"}, status=421)
        if request.content_type != "application/json":
            return reply(view, {"error": "Content-Type must be application/json"}, status=415)
        try:
            body = await request.json()
            wanted = Range(
                str(body["topic"]), int(body["partition"]), int(body["start"]), int(body["end"])
            )
        except (ValueError, KeyError, TypeError) as exc:
            return reply(view, {"error": f"bad request body: {exc}"}, status=400)
        if wanted.topic not in kinds:
            return reply(view, {"error": f"not an input topic: {wanted.topic!r}"}, status=400)
        consumer = AIOKafkaConsumer(
            **client_kwargs(settings, state.bootstrap), enable_auto_commit=False
        )
        try:
            await consumer.start()
            messages, following = await read_range(
                consumer, wanted, max_bytes=settings.batch_max_bytes
            )
        except IngestorError as exc:
            return reply(view, {"error": str(exc)}, status=502)
        finally:
            await consumer.stop()
        replayed = await asyncio.to_thread(
            replay_rows, messages, kinds, bad_line_max_bytes=settings.bad_line_max_bytes
        )
        return replayed, following

    class Replay(View):
        async def post(self, request: Any) -> Any:
            nonlocal chunks
            got = await read(self, request)
            if not isinstance(got, tuple):
                return got
            replayed, following = got
            chunks += 1
            token = f"replay:{run}:{chunks}"
            changes: list[CountedChange] = []
            async with state.lock:  # the live flushes wait, and we wait for theirs
                if state.inflight is not None:
                    await state.inflight
                try:
                    rows = await asyncio.to_thread(
                        write_replayed, state.ch, replayed, settings, token=token, changes=changes
                    )
                except IngestorError as exc:
                    return reply(self, {"error": str(exc)}, status=503)
                if changes:  # lines ClickHouse did not hold: the sessions follow (follow.py)
                    apply_changes(state, changes)
                    await app.producer.flush()
            return reply(
                self,
                {
                    "messages": replayed.messages,
                    "records": replayed.records,
                    "dead_letters": replayed.dead_letters,
                    "rows": rows,
                    "next": following,
                },
            )

    class VerifyTopic(View):
        """``ingestor verify --topics``: the range's rows checked against ClickHouse."""

        async def post(self, request: Any) -> Any:
            got = await read(self, request)
            if not isinstance(got, tuple):
                return got
            replayed, following = got
            await _settled(state)
            try:
                check = await asyncio.to_thread(check_rows, state.ch, replayed.rows)
            except IngestorError as exc:
                return reply(self, {"error": str(exc)}, status=503)
            check.messages = replayed.messages
            return reply(self, {"check": check.as_json(), "next": following})

    app.page("/replay/")(Replay)
    app.page("/verify/topic")(VerifyTopic)


async def _settled(state: WorkerState) -> None:
    """Wait until what the worker holds is stored (a batch flushes within its age limit), so a
    record read back from the topic is not reported missing while it waits for its insert."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2 * state.settings.batch_max_age_s + 5
    while (state.batch.size or state.inflight is not None) and loop.time() < deadline:
        await asyncio.sleep(0.05)
