"""A counted line's canonical timestamp: the line's own text when it is already canonical."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import orjson

from ingestor.producer.usage import usage_record


def _line(timestamp: str) -> tuple[bytes, dict[str, object]]:
    obj: dict[str, object] = {
        "type": "assistant",
        "timestamp": timestamp,
        "sessionId": "s",
        "requestId": "r",
        "message": {"id": "m", "model": "claude-sonnet-4-20250514", "usage": {
            "input_tokens": 1, "output_tokens": 2,
        }},
    }  # fmt: skip
    return orjson.dumps(obj), obj


def _stored(timestamp: str) -> object:
    line, obj = _line(timestamp)
    record, error = usage_record(line, obj, 0, len(line) + 1)
    assert error is None, error
    return record["line"]["timestamp"]


def test_every_spelling_is_stored_as_the_instant_it_was_read() -> None:
    rng = random.Random(7)
    low = int(datetime(1900, 1, 1, tzinfo=UTC).timestamp() * 1000)
    high = int(datetime(2300, 1, 1, tzinfo=UTC).timestamp() * 1000)
    for _ in range(2000):
        ms = rng.randrange(low, high)
        stamp = datetime.fromtimestamp(ms / 1000, UTC)
        canonical = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
        assert _stored(canonical) == canonical  # toISOString's form: kept as written
        # Other spellings of the same instant are stored in that form.
        assert _stored(canonical[:-1] + "+00:00") == canonical
        shifted = stamp.astimezone(datetime.now().astimezone().tzinfo)
        assert _stored(shifted.isoformat(timespec="milliseconds")) == canonical


def test_other_accepted_spellings_are_stored_in_the_canonical_one() -> None:
    assert _stored("2025-03-01T10:00:00Z") == "2025-03-01T10:00:00.000Z"
    assert _stored("2025-03-01T12:30:00.500+02:30") == "2025-03-01T10:00:00.500Z"
