"""Helpers for the watcher's unit tests: an in-memory twin of our ``Sender`` protocol, JSONL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ingestor.errors import BrokerError
from ingestor.wire import Envelope, decode_message


@dataclass
class FakeSender:
    """Acknowledges every message at once, unless told to fail from the ``fail_at``-th send."""

    fail_at: int | None = None
    on_send: Callable[[int], Awaitable[None] | None] | None = None
    sent: list[tuple[str, bytes, bytes]] = field(default_factory=list)

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        if self.fail_at is not None and len(self.sent) >= self.fail_at:
            raise BrokerError("broker down")
        self.sent.append((topic, key, value))
        if self.on_send is not None:
            result = self.on_send(len(self.sent))
            if result is not None:
                await result

    def envelopes(self) -> list[Envelope]:
        return [decode_message("transcript", value) for _, _, value in self.sent]

    def records(self) -> list[tuple[str, int, dict[str, Any]]]:
        """(file, generation, record) for every record sent, in send order."""
        return [
            (env.source.file, env.source.generation, rec)
            for env in self.envelopes()
            if env.source is not None
            for rec in env.records
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
