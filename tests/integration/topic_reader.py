"""Read a topic from the beginning with a plain aiokafka consumer (no group)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition


def read_topic(bootstrap: str, topic: str, *, expected: int, timeout_s: float = 30) -> list[Any]:
    async def read() -> list[Any]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            out: list[Any] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while len(out) < expected and loop.time() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    out.extend(orjson.loads(r.value) for r in records if r.value)
            return out
        finally:
            await consumer.stop()

    return asyncio.run(read())
