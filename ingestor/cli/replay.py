"""``ingestor replay --from earliest|TIME [--until TIME] [--topics ...]``: topics, stored again.

Reads the input topics again with a consumer of its own (no group, nothing committed: the live
worker's offsets are untouched) and stores every message through the worker's own path
(``worker/replay.py``): the same rows, the same dead letters, the same idempotent inserts. So a
replay of what ClickHouse already holds changes no total, and a replay after ClickHouse lost
data restores it.

Who writes: when a worker answers on ``INGESTOR_WEB_HOST:INGESTOR_WEB_PORT`` (``ingestor up``
runs), it does (``POST /replay/``, a chunk a request): the embedded chdb admits one process, and
on a server the worker's lock keeps a replayed event and its live copy from both passing the
"id not stored yet" check. Otherwise this process opens ClickHouse itself.

On the embedded stack Tansu keeps topics in memory only: a replay reaches back to when
``ingestor up`` started, and only while it runs. History that is only on disk is
``ingestor backfill``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ingestor.cli.display import Display
from ingestor.cli.progress import Rate, ReplaySnapshot, replay_lines
from ingestor.errors import ConfigError, StorageError
from ingestor.settings import Settings, load_settings
from ingestor.wire import Kind

if TYPE_CHECKING:
    from ingestor.kafka.ranges import Range

__all__ = [
    "broker_address",
    "input_topics",
    "parse_time",
    "post_json",
    "register",
    "run",
    "worker_url",
]

CHUNK_MESSAGES = 2000  # messages a request (or a local insert): progress moves at least this often


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "replay",
        help="read the input topics again into ClickHouse (idempotent)",
        description="Read the input topics again, with a consumer of its own that commits "
        "nothing, and store every message as the worker does: replaying twice, or replaying "
        "what the worker already stored, changes no total. While `ingestor up` runs, its worker "
        "stores the replayed messages (the embedded ClickHouse admits one process); otherwise "
        "this command opens ClickHouse itself. The embedded broker keeps topics in memory "
        "only, from when `ingestor up` started: for older history use `ingestor backfill`.",
    )
    p.add_argument(
        "--from",
        dest="since",
        required=True,
        metavar="earliest|TIME",
        help="earliest (everything the broker keeps), or an ISO 8601 time (UTC unless it says "
        "otherwise): records whose Kafka timestamp (when they were sent) is at or after it",
    )
    p.add_argument("--until", metavar="TIME", help="last record time, inclusive (default: now)")
    p.add_argument(
        "--topics",
        nargs="+",
        metavar="TOPIC",
        help="input topics by name as in topics/topics.toml (transcripts, events, ledger; "
        "default: all three)",
    )
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: as `ingestor report`)")
    p.set_defaults(run=run)


def parse_time(text: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 time or date (naive: UTC)."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"not a time: {text!r} (use earliest, or ISO 8601 such as 2026-12-01T08:00:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def input_topics(settings: Settings, wanted: Sequence[str] | None) -> dict[str, Kind]:
    """Topic name -> wire kind of the input topics named as in topics.toml (None: all)."""
    from ingestor.kafka.topics import load_topic_defs

    defs = {t.base: t for t in load_topic_defs(settings) if t.kind is not None}
    wanted = wanted or list(defs)
    unknown = [t for t in wanted if t not in defs]
    if unknown:
        raise ConfigError(f"not an input topic: {', '.join(unknown)} (use {', '.join(defs)})")
    return {defs[t].name: defs[t].kind for t in wanted}  # type: ignore[misc]


def broker_address(settings: Settings, given: str | None) -> str:
    """``--bootstrap``, the configured brokers, or the running ``ingestor up``'s broker."""
    from ingestor.sdk import resolve_bootstrap

    bootstrap = given or settings.kafka_bootstrap or resolve_bootstrap(None)
    if not bootstrap:
        raise ConfigError(
            "no broker: run `ingestor up` (its broker is found through the data dir), or set "
            "INGESTOR_KAFKA_BOOTSTRAP / --bootstrap"
        )
    return bootstrap


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    since_ms = None if args.since.strip().lower() == "earliest" else parse_time(args.since)
    until_ms = parse_time(args.until) if args.until else None
    if since_ms is not None and until_ms is not None and until_ms < since_ms:
        raise ConfigError("--until is before --from")
    kinds = input_topics(settings, args.topics)
    bootstrap = broker_address(settings, args.bootstrap)
    worker = worker_url(settings)
    with Display() as display:
        where = f"through the running worker ({worker})" if worker else str(settings.clickhouse)
        display.say(f"replaying {', '.join(kinds)} from {bootstrap} into ClickHouse {where}")
        done = asyncio.run(_replay(settings, bootstrap, kinds, since_ms, until_ms, worker, display))
    print(
        f"replayed {done.messages_done:,} messages: {done.records:,} records, "
        f"{done.dead_letters:,} dead letters (rows already stored replaced themselves)",
        flush=True,
    )
    return 0


def worker_url(settings: Settings) -> str | None:
    """The running worker's web address, when one answers."""
    url = f"http://{settings.web_host}:{settings.web_port}"
    with (
        contextlib.suppress(OSError, ValueError),
        urllib.request.urlopen(f"{url}/stats/", timeout=2) as reply,
    ):
        if "run_id" in json.loads(reply.read()):
            return url
    return None


async def _replay(
    settings: Settings,
    bootstrap: str,
    kinds: dict[str, Kind],
    since_ms: int | None,
    until_ms: int | None,
    worker: str | None,
    display: Display,
) -> ReplaySnapshot:
    from aiokafka import AIOKafkaConsumer

    from ingestor.kafka.config import client_kwargs
    from ingestor.kafka.ranges import plan

    consumer = AIOKafkaConsumer(**client_kwargs(settings, bootstrap), enable_auto_commit=False)
    await consumer.start()
    try:
        ranges = await plan(consumer, list(kinds), since_ms=since_ms, until_ms=until_ms)
        store = (
            _WorkerStore(worker) if worker else _LocalStore(settings, kinds, consumer)
        )  # fmt: skip
        try:
            return await _run_ranges(ranges, store, display)
        finally:
            store.close()
    finally:
        await consumer.stop()


async def _run_ranges(ranges: Sequence[Range], store: Any, display: Display) -> ReplaySnapshot:
    from ingestor.kafka.ranges import Range  # Faust and aiokafka: not for every CLI start

    total = sum(r.size for r in ranges)
    counts = {"messages": 0, "records": 0, "dead_letters": 0}
    rate = Rate()
    snapshot = ReplaySnapshot(messages_total=total)

    def draw(force: bool = False) -> None:
        nonlocal snapshot
        rates = rate.add(time.monotonic(), counts["records"], counts["messages"])
        snapshot = ReplaySnapshot(
            messages_done=counts["messages"],
            messages_total=total,
            records=counts["records"],
            dead_letters=counts["dead_letters"],
            records_per_s=rates[0] if rates else None,
            messages_per_s=rates[1] if rates else None,
        )
        plain = " | ".join(replay_lines(snapshot, width=1000))
        display.show_lines(lambda w: replay_lines(snapshot, width=w), plain, force=force)

    draw()
    for whole in ranges:
        start = whole.start
        while start < whole.end:
            reply = await store.store(Range(whole.topic, whole.partition, start, whole.end))
            for key in counts:
                counts[key] += int(reply[key])
            following = int(reply["next"])
            if following <= start:
                raise StorageError(f"replay made no progress at {whole.topic}[{whole.partition}]")
            start = following
            draw()
    draw(force=True)
    return snapshot


class _LocalStore:
    """This process reads the range and writes ClickHouse itself (no worker holds it)."""

    def __init__(self, settings: Settings, kinds: dict[str, Kind], consumer: Any) -> None:
        from ingestor.clickhouse.engine import open_clickhouse
        from ingestor.clickhouse.migrations import apply_schema

        self.settings, self.kinds, self.consumer = settings, kinds, consumer
        target = settings.clickhouse
        if target.kind == "chdb" and target.path is not None and not target.path.is_dir():
            raise ConfigError(f"no ClickHouse data in {target.path}: nothing was ingested here")
        self.ch = open_clickhouse(target)
        apply_schema(self.ch)  # a replay into an empty ClickHouse (a new server) is legitimate
        self.run, self.chunks = uuid.uuid4().hex, 0

    async def store(self, wanted: Range) -> dict[str, int]:
        from ingestor.kafka.ranges import read_range
        from ingestor.worker.replay import replay_rows, write_replayed

        messages, following = await read_range(
            self.consumer,
            wanted,
            max_bytes=self.settings.batch_max_bytes,
            max_messages=CHUNK_MESSAGES,
        )
        replayed = replay_rows(
            messages, self.kinds, bad_line_max_bytes=self.settings.bad_line_max_bytes
        )
        self.chunks += 1
        token = f"replay:{self.run}:{self.chunks}"
        await asyncio.to_thread(write_replayed, self.ch, replayed, self.settings, token=token)
        return {
            "messages": replayed.messages,
            "records": replayed.records,
            "dead_letters": replayed.dead_letters,
            "next": following,
        }

    def close(self) -> None:
        self.ch.close()


class _WorkerStore:
    """The running worker reads the range and stores it (``POST /replay/``)."""

    def __init__(self, url: str) -> None:
        self.url = f"{url}/replay/"

    async def store(self, wanted: Range) -> dict[str, int]:
        body = {
            "topic": wanted.topic,
            "partition": wanted.partition,
            "start": wanted.start,
            "end": min(wanted.end, wanted.start + CHUNK_MESSAGES),
        }
        answer: dict[str, int] = await asyncio.to_thread(post_json, self.url, body, "replay")
        return answer

    def close(self) -> None:
        pass


def post_json(url: str, body: dict[str, Any], what: str) -> Any:
    """POST ``body`` to the worker; its JSON answer. An error reply raises ``StorageError``."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        try:
            why = json.loads(exc.read())["error"]
        except (ValueError, KeyError, TypeError):
            why = f"{exc.code} {exc.reason}"
        raise StorageError(f"the worker could not {what} {body}: {why}") from None
