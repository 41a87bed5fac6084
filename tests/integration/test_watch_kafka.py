"""The watcher through real aiokafka to a broker and back: keys, order, envelopes intact."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from ingestor.kafka.topics import create_topics
from ingestor.producer import Checkpoint, KafkaSender, Watcher
from ingestor.settings import Settings
from ingestor.wire import decode_message

pytestmark = pytest.mark.integration


def transcript(path: Path, n: int, day: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        {
            "type": "assistant",
            "timestamp": f"2025-02-{day:02d}T00:00:{i:02d}Z",
            "uuid": f"{path.stem}-{i}",
            "message": {"id": f"m{i}", "content": "SECRET", "usage": {"input_tokens": i}},
        }
        for i in range(n)
    ]
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines) + b"[broken\n")


async def consume_all(settings: Settings, bootstrap: str, n: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        settings.topic("transcripts"), bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        records: list[Any] = []
        deadline = time.monotonic() + 30
        while len(records) < n and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for part in batch.values():
                records.extend(part)
        return records
    finally:
        await consumer.stop()


def test_watched_files_arrive_keyed_by_project_in_order(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"watch-{uuid.uuid4().hex[:8]}.",
        topic_partitions=2,
        envelope_max_records=7,
    )
    root = tmp_path / "projects"
    files = {
        root / "-a" / "s1.jsonl": (30, 2),
        root / "-a" / "s1" / "subagents" / "agent-x.jsonl": (10, 1),
        root / "-b" / "s2.jsonl": (20, 3),
    }
    for path, (n, day) in files.items():
        transcript(path, n, day)

    async def produce() -> tuple[int, int]:
        await create_topics(settings, kafka_bootstrap)
        async with KafkaSender.from_settings(settings) as sender:
            watcher = Watcher(settings, [root], sender, Checkpoint(tmp_path / "cp.json"))
            return await watcher.run_once(), watcher.stats.envelopes_sent

    lines, envelopes = asyncio.run(produce())
    assert lines == sum(n + 1 for n, _ in files.values())
    messages = asyncio.run(consume_all(settings, kafka_bootstrap, envelopes))
    assert len(messages) == envelopes

    by_file: dict[str, list[dict[str, Any]]] = {}
    partitions: dict[bytes, set[int]] = {}
    for message in sorted(messages, key=lambda m: (m.partition, m.offset)):
        assert b"SECRET" not in message.value
        envelope = decode_message("transcript", message.value)
        assert envelope.source is not None
        assert message.key == envelope.source.project.encode()
        partitions.setdefault(message.key, set()).add(message.partition)
        by_file.setdefault(envelope.source.file, []).extend(envelope.records)

    assert all(len(p) == 1 for p in partitions.values())  # a project is one partition
    assert set(partitions) == {b"-a", b"-b"}
    for path, (n, _) in files.items():
        records = by_file[str(path)]
        assert [r["line"]["uuid"] for r in records[:n]] == [f"{path.stem}-{i}" for i in range(n)]
        assert records[-1]["raw"] == "[broken" and "error" in records[-1]
        offsets = [r["offset"] for r in records]
        assert offsets == sorted(offsets)
    # Within project -a, the earlier file (agent-x, day 1) went first.
    a_files = [
        decode_message("transcript", m.value).source.file  # type: ignore[union-attr]
        for m in sorted(messages, key=lambda m: (m.partition, m.offset))
        if m.key == b"-a"
    ]
    assert a_files == sorted(a_files, key=lambda f: "agent-x" not in f)
