"""Events to Kafka messages: envelopes (``ingestor/wire.py``) of one key, bounded by size. Pure.

Each record is encoded on its own, so an envelope's size is known exactly before it is closed and
one odd record cannot spoil the others; the envelope is then spelled by hand around the encoded
records, byte for byte what ``wire.encode_envelope("event", records)`` writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ingestor.sdk._events import encode, message_key

__all__ = ["Message", "build_messages"]

_HEAD = b'{"v":1,"kind":"event","records":['
_TAIL = b"]}"


@dataclass(frozen=True, slots=True)
class Message:
    """One Kafka message: ``records`` events under ``key``."""

    key: bytes
    value: bytes
    records: int


def build_messages(
    events: Iterable[dict[str, Any]], *, max_records: int, max_bytes: int
) -> tuple[list[Message], int]:
    """Envelopes of at most ``max_records`` records and ``max_bytes`` bytes, one key each, events
    of one key in the order given. Returns the messages and how many events were too large to
    send at all (counted as failed by the caller)."""
    groups: dict[bytes, list[bytes]] = {}
    too_large = 0
    budget = max_bytes - len(_HEAD) - len(_TAIL)
    for event in events:
        record = encode(event)
        if len(record) > budget:
            too_large += 1
            continue
        groups.setdefault(message_key(event), []).append(record)
    messages: list[Message] = []
    for key, records in groups.items():
        chunk: list[bytes] = []
        size = 0
        for record in records:
            if chunk and (len(chunk) >= max_records or size + 1 + len(record) > budget):
                messages.append(_envelope(key, chunk))
                chunk, size = [], 0
            size += len(record) + (1 if chunk else 0)
            chunk.append(record)
        if chunk:
            messages.append(_envelope(key, chunk))
    return messages, too_large


def _envelope(key: bytes, records: list[bytes]) -> Message:
    return Message(key, _HEAD + b",".join(records) + _TAIL, len(records))
