from __future__ import annotations

import pytest

from ingestor.errors import DeadLetterLimitExceeded, InvalidRecord, Location
from ingestor.worker.dlq import DeadLetter, DeadLetterLimit


def test_limit_waits_for_a_full_window() -> None:
    limit = DeadLetterLimit(max_ratio=0.5, window=10)
    limit.record(valid=0, invalid=9)  # nine bad lines at start-up are not a verdict


def test_limit_raises_past_the_ratio() -> None:
    limit = DeadLetterLimit(max_ratio=0.5, window=10)
    limit.record(valid=5, invalid=5)
    with pytest.raises(DeadLetterLimitExceeded):
        limit.record(valid=0, invalid=1)


def test_old_failures_slide_out_of_the_window() -> None:
    limit = DeadLetterLimit(max_ratio=0.5, window=10)
    limit.record(valid=0, invalid=5)
    limit.record(valid=5, invalid=0)
    limit.record(valid=100, invalid=0)
    limit.record(valid=5, invalid=5)  # 5 of the last 10: at the limit, not past it


def test_dead_letter_carries_location_reason_and_a_structure_that_fits() -> None:
    loc = Location("t", 1, 42, 3, "/x/a.jsonl", 128)
    big = {f"k{i}": {"a": 1, "b": "text"} for i in range(100)}
    dead = DeadLetter.of(
        "transcript", InvalidRecord("bad", "message.usage").at(loc), big, max_bytes=200
    )
    assert 0 < len(dead.raw.encode()) <= 200 and "text" not in dead.raw
    assert dead.key() == b"/x/a.jsonl"
    body = dead.message()
    assert b'"file_offset":128' in body and b'"field":"message.usage"' in body
