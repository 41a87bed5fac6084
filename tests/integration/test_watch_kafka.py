"""The watcher through real aiokafka to a broker and back: key, order, envelopes intact."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from ingestor.kafka.topics import create_topics
from ingestor.producer import Checkpoint, KafkaSender, Watcher
from ingestor.redact import sha256_hex
from ingestor.settings import Settings
from ingestor.wire import Envelope, decode_messages

pytestmark = pytest.mark.integration


def transcript(path: Path, n: int, day: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        {
            "type": "assistant",
            "timestamp": f"2025-02-{day:02d}T00:00:{i:02d}Z",
            "uuid": f"{path.stem}-{i}",
            "message": {
                "id": f"m{i}",
                "content": "SECRET",
                "usage": {"input_tokens": i, "output_tokens": 1},
            },
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


def test_watched_files_arrive_keyed_by_scope_in_order(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"watch-{uuid.uuid4().hex[:8]}.",
        topic_partitions=2,
        envelope_max_records=7,
        dedup_scope="host-a",
    )
    root = tmp_path / "projects"
    files = {
        root / "-a" / "s1.jsonl": (30, 2),
        root / "-a" / "s1" / "subagents" / "agent-x.jsonl": (10, 1),
        root / "-b" / "s2.jsonl": (20, 3),
    }
    for path, (n, day) in files.items():
        transcript(path, n, day)

    async def produce() -> tuple[int, int, int]:
        await create_topics(settings, kafka_bootstrap)
        async with KafkaSender.from_settings(settings) as sender:
            # A small window, so that both the window and aiokafka's batching are exercised.
            watcher = Watcher(
                settings, [root], sender, Checkpoint(tmp_path / "cp.json"), max_in_flight=4
            )
            stats = watcher.stats
            return await watcher.run_once(), stats.envelopes_sent, stats.messages_sent

    lines, envelopes, sent = asyncio.run(produce())
    assert lines == sum(n + 1 for n, _ in files.values())
    messages = asyncio.run(consume_all(settings, kafka_bootstrap, sent))
    assert len(messages) == sent < envelopes  # small files' envelopes go in bundles

    by_file: dict[str, list[dict[str, Any]]] = {}
    files_in_order: list[str] = []
    assert {m.key for m in messages} == {b"host-a"}
    assert len({m.partition for m in messages}) == 1  # one scope, one partition
    decoded = 0
    for message in sorted(messages, key=lambda m: m.offset):
        assert b"SECRET" not in message.value
        for envelope in decode_messages("transcript", message.value):
            assert isinstance(envelope, Envelope)
            decoded += 1
            assert envelope.source is not None and envelope.source.scope == "host-a"
            by_file.setdefault(envelope.source.file, []).extend(envelope.in_file_order())
            if not files_in_order or files_in_order[-1] != envelope.source.file:
                files_in_order.append(envelope.source.file)
    assert decoded == envelopes

    for path, (n, _) in files.items():
        records = by_file[str(path)]
        assert [r["line"]["uuid"] for r in records[:n]] == [f"{path.stem}-{i}" for i in range(n)]
        assert records[-1]["sha256"] == sha256_hex(b"[broken") and "error" in records[-1]
        assert "raw" not in records[-1]
        offsets = [r["offset"] for r in records]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    # ccusage order (by path), each file whole: "s1.jsonl" sorts before "s1/subagents/…".
    assert [Path(f).stem for f in files_in_order] == ["s1", "agent-x", "s2"]


async def _batch_codecs(bootstrap: str, topic: str, partitions: int) -> set[int]:
    """The compression codec (Kafka's attribute bits) of every batch the broker keeps."""
    from aiokafka.protocol.fetch import FetchRequest
    from aiokafka.record.memory_records import MemoryRecords

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        client = consumer._client
        await client.force_metadata_update()
        node = client.cluster.leader_for_partition(TopicPartition(topic, 0))
        fetch = [(topic, [(p, 0, 1 << 20) for p in range(partitions)])]
        response = await client.send(node, FetchRequest(100, 1, 1 << 20, 0, fetch))
        codecs: set[int] = set()
        for _, answers in response.topics:
            for *_, data in answers:
                records = MemoryRecords(data)
                while (batch := records.next_batch()) is not None:
                    codecs.add(batch.compression_type)
        return codecs
    finally:
        await consumer.stop()


@pytest.mark.parametrize(("compression", "codec"), [("zstd", 4), ("none", 0)])
def test_envelopes_travel_compressed_as_configured(
    kafka_bootstrap: str, tmp_path: Path, compression: str, codec: int
) -> None:
    """zstd by default: Tansu keeps batches in memory as they were sent (``local/recycle.py``)."""
    settings = Settings(
        data_dir=tmp_path / "data",
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"zstd-{uuid.uuid4().hex[:8]}.",
        topic_partitions=1,
        kafka_compression=compression,  # type: ignore[arg-type]
    )
    root = tmp_path / "projects"
    transcript(root / "-a" / "s1.jsonl", 50, 2)

    async def produce() -> int:
        await create_topics(settings, kafka_bootstrap)
        async with KafkaSender.from_settings(settings) as sender:
            watcher = Watcher(settings, [root], sender, Checkpoint(tmp_path / "cp.json"))
            await watcher.run_once()
            return watcher.stats.messages_sent

    sent = asyncio.run(produce())
    topic = settings.topic("transcripts")
    assert asyncio.run(_batch_codecs(kafka_bootstrap, topic, 1)) == {codec}
    messages = asyncio.run(consume_all(settings, kafka_bootstrap, sent))
    records = [
        r
        for m in messages
        for envelope in decode_messages("transcript", m.value)
        if isinstance(envelope, Envelope)
        for r in envelope.in_file_order()
    ]
    assert len(records) == 51  # 50 lines and the broken one, decoded whatever the codec
