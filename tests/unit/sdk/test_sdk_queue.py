from __future__ import annotations

import logging

import pytest

from ingestor.sdk._queue import EventQueue


def test_a_full_queue_drops_new_events_counts_them_and_warns_at_a_limited_rate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = EventQueue(3, warn_every_s=3600)
    with caplog.at_level(logging.WARNING, logger="ingestor.sdk"):
        accepted = [queue.put({"n": i}) for i in range(10)]
    assert accepted == [True] * 3 + [False] * 7
    assert queue.dropped == 7 and len(queue) == 3
    assert len(caplog.records) == 1 and "queue full" in caplog.records[0].getMessage()
    assert [e["n"] for e in queue.take(2)] == [0, 1] and len(queue) == 1
