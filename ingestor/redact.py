"""What a dead letter may keep of bad input: its structure and usage numbers, never text. Pure.

Transcripts hold conversations, events hold prompts and error text; none of it may come to rest
in the dead-letter topic or table. A dead letter keeps the input's length and SHA-256 (to find the
line again, or to tell two inputs apart) and, when the input is a JSON object, ``structure(obj)``:

* the object's keys, nested objects to ``MAX_DEPTH`` levels, at most ``MAX_NODES`` values in all;
* numbers, booleans and nulls as they are (a number is not conversation);
* strings only at the paths that name usage (``TRANSCRIPT_STRINGS``, ``EVENT_STRINGS``: ids,
  timestamps, model, version), cut to ``MAX_STRING_CHARS``; any other string is ``"<string>"``;
* arrays as ``"<array>"`` (content blocks and tool results live in arrays), objects beyond the
  limits as ``"<object>"``, and a key that is not identifier-like (it may be text) as ``"<key#N>"``.

``structure`` of its own output keeps nothing more, so the worker applies it again to whatever a
producer sent: what reaches ClickHouse obeys these rules even if a producer did not. Input that
is not a JSON object keeps no part at all, only its length, hash and the parse error.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from typing import Any

__all__ = [
    "EVENT_STRINGS",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_STRING_CHARS",
    "TRANSCRIPT_STRINGS",
    "sha256_hex",
    "structure",
]

MAX_DEPTH = 6
MAX_NODES = 256
MAX_STRING_CHARS = 128
Path = tuple[str, ...]

# The usage fields of a transcript line that may keep their string values.
TRANSCRIPT_STRINGS: frozenset[Path] = frozenset(
    {
        ("type",),
        ("timestamp",),
        ("sessionId",),
        ("uuid",),
        ("parentUuid",),
        ("requestId",),
        ("version",),
        ("message", "id"),
        ("message", "model"),
        ("message", "usage", "service_tier"),
        ("message", "usage", "speed"),
    }
)
# Ids, times and labels of events and ledger entries; never prompt, response or error text.
EVENT_STRINGS: frozenset[Path] = frozenset(
    (name,)
    for name in (
        "event_id",
        "event_type",
        "project_id",
        "timestamp",
        "session_id",
        "run_id",
        "user_id",
        "model",
        "status",
        "env",
        "request_id",
        "provider_id",
        "model_id",
        "created_at",
    )
)
_KEY = re.compile(r"[A-Za-z_$@][A-Za-z0-9_$@.:-]{0,63}")
_OURS = re.compile(r"<(key#[0-9]+|more)>")  # keys this module writes
_PLACEHOLDERS = frozenset({"<string>", "<array>", "<object>"})  # values it writes


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def structure(
    obj: dict[str, Any],
    strings: Collection[Path] = TRANSCRIPT_STRINGS,
    *,
    max_nodes: int = MAX_NODES,
) -> dict[str, Any]:
    """The structural part of ``obj`` (see the module docstring); ``strings``: paths whose string
    values are kept; at most ``max_nodes`` values."""
    budget = [max_nodes]
    return _object(obj, (), strings, budget)


def _object(
    obj: dict[str, Any], path: Path, strings: Collection[Path], budget: list[int]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    odd = 0
    for key, value in obj.items():
        if budget[0] <= 0:
            out["<more>"] = "<object>"
            break
        budget[0] -= 1
        if not isinstance(key, str) or _KEY.fullmatch(key) is None:
            if not (isinstance(key, str) and _OURS.fullmatch(key)):
                odd += 1
                key = f"<key#{odd}>"
            out[key] = _value(value, None, strings, budget)
            continue
        out[key] = _value(value, (*path, key), strings, budget)
    return out


def _value(value: Any, path: Path | None, strings: Collection[Path], budget: list[int]) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if path is not None and path in strings:
            return value[:MAX_STRING_CHARS]
        return value if value in _PLACEHOLDERS else "<string>"
    if isinstance(value, dict):
        if path is None or len(path) >= MAX_DEPTH:
            return "<object>"
        return _object(value, path, strings, budget)
    if isinstance(value, list | tuple):
        return "<array>"
    return f"<{type(value).__name__}>"
