"""A transport that replaces Kafka with memory: switchable up and down, or hung."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from ingestor.errors import BrokerError
from ingestor.sdk._envelopes import Message
from ingestor.wire import decode_message


class FakeBroker:
    """What the fake transports deliver to; ``up``/``hang`` switch its behaviour."""

    def __init__(self, *, up: bool = True) -> None:
        self.up = up
        self.hang = False
        self.refuse: type[BaseException] | None = None  # a non-retriable outcome per message
        self.messages: list[Message] = []
        self.attempts = 0
        self.lock = threading.Lock()

    def transport(self) -> FakeTransport:
        return FakeTransport(self)

    @property
    def records(self) -> list[dict[str, Any]]:
        with self.lock:
            messages = list(self.messages)
        return [r for m in messages for r in decode_message("event", m.value).records]

    @property
    def keys(self) -> list[bytes]:
        return [m.key for m in self.messages]


class FakeTransport:
    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker
        self.closed = False

    async def send(self, messages: Sequence[Message]) -> list[BaseException | None]:
        broker = self.broker
        broker.attempts += 1
        while broker.hang:
            await asyncio.sleep(0.01)
        if not broker.up:
            raise BrokerError("broker down")
        if broker.refuse is not None:
            return [broker.refuse("too large") for _ in messages]
        with broker.lock:
            broker.messages.extend(messages)
        return [None] * len(messages)

    async def close(self) -> None:
        self.closed = True


class FileTransport:
    """Appends each delivered record, with the sending pid, to a JSON-lines file: what a child
    process or an exiting interpreter sent can be read back. Down while ``down_file`` names the
    sending process's pid."""

    def __init__(self, path: str, down_file: str | None = None) -> None:
        self.path = path
        self.down_file = down_file

    async def send(self, messages: Sequence[Message]) -> list[BaseException | None]:
        import json
        import os

        if self.down_file and os.path.exists(self.down_file):
            with open(self.down_file) as f:
                if f.read().strip() == str(os.getpid()):
                    raise BrokerError("down for this process")
        with open(self.path, "a") as out:
            for message in messages:
                for record in decode_message("event", message.value).records:
                    out.write(json.dumps({"pid": os.getpid(), **record}) + "\n")
        return [None] * len(messages)

    async def close(self) -> None:
        return None
