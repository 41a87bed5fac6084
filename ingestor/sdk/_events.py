"""Events as plain dicts: ids, and what the sender does to a queued event before it is encoded.

The caller's thread only builds a small dict (``timestamp`` as epoch seconds, text as a private
reference); ``finalize`` runs on the sender thread and does the slower parts: ISO timestamps,
SHA-256 of prompt and response, text dropped unless the app opted in, strings cut to the lengths
``ingestor.models`` accepts (a longer one would be dead-lettered by the worker). Pure.
"""

from __future__ import annotations

import hashlib
import os
import random
import uuid
from collections import deque
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

__all__ = [
    "PROMPT",
    "RESPONSE",
    "describe",
    "encode",
    "event_id",
    "finalize",
    "random_id",
    "refill_ids",
    "reseed",
    "take_id",
    "message_key",
    "text_of",
]

# Private keys under which the caller's thread parks prompt and response text for ``finalize``.
PROMPT = "_prompt"
RESPONSE = "_response"

_NAMESPACE = uuid.UUID("5b0c2f4e-8f1d-4d0e-9a57-6a3c1f0e7d21")
_TEXT_MAX = 1024  # models.Text
_LIMITS = {
    "event_id": _TEXT_MAX,
    "project_id": _TEXT_MAX,
    "tool_name": _TEXT_MAX,
    "step_name": _TEXT_MAX,
    "error_type": _TEXT_MAX,
    "assertion_name": _TEXT_MAX,
    "detection_method": _TEXT_MAX,
    "metric": _TEXT_MAX,
    "expected": 1024,
    "actual": 1024,
    "error_message": 4096,
}
CAPTURED_TEXT_MAX = 32_768  # characters of prompt/response kept when the app opts in


def event_id(project_id: str, event_type: str, idempotency_key: str | None) -> str:
    """A uuid5 of (project, type, key) when the app gives a key, so a retried or replayed call
    yields the same id and the worker stores it once; else a random uuid4."""
    if idempotency_key is None:
        return take_id()
    return str(uuid.uuid5(_NAMESPACE, f"{project_id}\x00{event_type}\x00{idempotency_key}"))


# ``uuid.uuid4()`` costs a getrandom(2) call each (4 µs, far more on a cold core); ids need to be
# unique, not secret, so they come from a generator of our own, seeded from the OS and reseeded in
# a forked child (``reseed``). Not the ``random`` module's: an app that calls ``random.seed(42)``
# would make every run repeat the same ids, and the worker would drop the repeats as duplicates.
_RANDOM = random.Random(os.urandom(32))
_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)
_VERSION_MASK = ~((0xF000 << 64) | (0xC000 << 48))


def random_id() -> str:
    """A random (version 4) UUID as text."""
    h = "%032x" % (_RANDOM.getrandbits(128) & _VERSION_MASK | _VERSION_4)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# Ids the caller's thread needs at once (``track``'s return value, a step's id for its children)
# are made ahead on the sender thread: taking one is a ``deque.popleft`` (atomic under the GIL),
# not the ~1 µs of formatting 128 random bits, on the host's path. An empty pool is no error: the
# caller then makes its own.
_IDS: deque[str] = deque()
_POOL_SIZE = 4096
_REFILL_MAX = 512  # per call: the sender holds the GIL for a fraction of a millisecond at most


def take_id() -> str:
    """A fresh random id for the caller's thread: from the pool, else made here."""
    try:
        return _IDS.popleft()
    except IndexError:
        return random_id()


def refill_ids() -> None:
    """Top the pool up a little (the sender thread, between batches)."""
    missing = min(_POOL_SIZE - len(_IDS), _REFILL_MAX)
    if missing > 0:
        _IDS.extend([random_id() for _ in range(missing)])


def reseed() -> None:
    """In a forked child: never repeat the parent's ids (nor use its pool, which it uses too)."""
    _RANDOM.seed(os.urandom(32))
    _IDS.clear()


def describe(exc: BaseException) -> str:
    """``str(exc)``, or empty when its ``__str__`` raises."""
    try:
        return str(exc)
    except Exception:
        return ""


def text_of(value: Any) -> str | bytes:
    """A snapshot of prompt or response content, taken on the caller's thread: a ``str`` as it is
    (immutable), anything else (a list of chat messages, say) as its JSON bytes, because the app
    may change it after the call."""
    if isinstance(value, str | bytes):
        return value
    return orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS)


def message_key(event: dict[str, Any]) -> bytes:
    """The Kafka key: the session, else the project (``topics/topics.toml``)."""
    key = event.get("session_id") or event.get("project_id") or ""
    return str(key).encode("utf-8", "replace")


def finalize(event: dict[str, Any], *, capture_text: bool) -> dict[str, Any]:
    """The event as it goes on the wire (mutates and returns ``event``)."""
    if "event_id" not in event:
        event["event_id"] = random_id()
    ts = event.get("timestamp")
    if isinstance(ts, float | int) and not isinstance(ts, bool):
        event["timestamp"] = _iso(float(ts))
    for private, name in ((PROMPT, "prompt"), (RESPONSE, "response")):
        if private in event:
            _text_fields(event, name, event.pop(private), capture_text)
    for field, limit in _LIMITS.items():
        value = event.get(field)
        if isinstance(value, str) and len(value) > limit:
            event[field] = value[:limit]
    return event


def encode(event: dict[str, Any]) -> bytes:
    """One record's JSON. Never raises for odd values: money as text, anything else as ``str``."""
    return orjson.dumps(event, default=_default, option=orjson.OPT_NON_STR_KEYS)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(map(str, value))
    return str(value)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _text_fields(event: dict[str, Any], name: str, text: Any, capture_text: bool) -> None:
    if text is None:
        return
    if isinstance(text, str):
        data = text.encode("utf-8", "surrogatepass")
        chars = len(text)
    else:
        data = bytes(text)
        chars = len(data.decode("utf-8", "replace"))
    event.setdefault(f"{name}_chars", chars)
    event[f"{name}_sha256"] = hashlib.sha256(data).hexdigest()
    if capture_text:
        event[name] = data.decode("utf-8", "replace")[:CAPTURED_TEXT_MAX]
