"""Helpers for the watcher's unit tests: an in-memory twin of our ``Sender`` protocol, JSONL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ingestor.errors import BrokerError
from ingestor.wire import Envelope, decode_messages


@dataclass
class FakeSender:
    """An in-memory broker behind our pipelining ``Sender`` protocol.

    Each message is stored and acknowledged at once, or ``latency`` seconds after it was sent
    (acknowledgements then come in send order, with many messages in flight). The ``n``-th send
    (0-based) fails, and its message is not stored, when ``n >= fail_at`` (the broker is down
    from there on) or ``n in fail`` (that one delivery fails; later ones are stored).
    """

    fail_at: int | None = None
    fail: frozenset[int] = frozenset()
    latency: float | None = None
    on_send: Callable[[int], Awaitable[None] | None] | None = None
    sent: list[tuple[str, bytes, bytes]] = field(default_factory=list)  # stored, in order
    attempts: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    async def send(self, topic: str, key: bytes, value: bytes) -> Awaitable[None]:
        n, self.attempts = self.attempts, self.attempts + 1
        failing = n in self.fail or (self.fail_at is not None and n >= self.fail_at)
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

        def deliver() -> None:
            self.in_flight -= 1
            if failing:
                delivery.set_exception(BrokerError("broker down"))
            else:
                self.sent.append((topic, key, value))
                delivery.set_result(None)

        if self.latency is None:
            deliver()
        else:
            asyncio.get_running_loop().call_later(self.latency, deliver)
        if self.on_send is not None:
            result = self.on_send(self.attempts)
            if result is not None:
                await result
        return delivery

    async def flush(self) -> None:
        while self.in_flight:
            await asyncio.sleep(0.001)

    def envelopes(self) -> list[Envelope]:
        """Every envelope sent, in order (a bundle's each)."""
        out: list[Envelope] = []
        for _, _, value in self.sent:
            for envelope in decode_messages("transcript", value):
                assert isinstance(envelope, Envelope)
                out.append(envelope)
        return out

    def records(self) -> list[tuple[str, int, dict[str, Any]]]:
        """(file, generation, record) for every record sent, in send order (a line sent in
        columns as a record of its offset, length and ``line_record``)."""
        return [
            (env.source.file, env.source.generation, rec)
            for env in self.envelopes()
            if env.source is not None
            for rec in env.in_file_order()
        ]


def jl(*objs: Any) -> bytes:
    """JSONL bytes of the given objects (bytes are taken as an already-encoded line)."""
    return b"".join((o if isinstance(o, bytes) else orjson.dumps(o)) + b"\n" for o in objs)


def usage_line(n: int, ts: str | None = "2025-01-01T00:00:00Z", **extra: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "type": "assistant",
        "uuid": f"u{n}",
        "sessionId": "s1",
        "requestId": f"req_{n}",
        "message": {
            "id": f"msg_{n}",
            "model": "claude-sonnet-4-20250514",
            "content": [
                {"type": "text", "text": "SECRET conversation text"},
                {"type": "tool_use", "name": "Bash", "input": {"command": "SECRET rm -rf"}},
            ],
            "usage": {"input_tokens": n, "output_tokens": 1},
        },
        **extra,
    }
    if ts is not None:
        line["timestamp"] = ts
    return line
