"""The bounded hand-off between the app's threads and the sender thread.

``put`` is the whole cost the SDK adds to a tracked call besides building the event dict: a
length check and ``deque.append``, both atomic under the GIL, so no lock is taken. The bound is
approximate by the number of threads racing past the check at once. A full queue drops the new
event; drops are never silent: each is counted and a warning is logged at most once per
``warn_every_s`` with the number dropped since the last one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

__all__ = ["EventQueue", "RateLimitedWarning", "logger"]

logger = logging.getLogger("ingestor.sdk")


class RateLimitedWarning:
    """Logs a warning at most once per interval, saying how many occurrences it stands for."""

    def __init__(self, interval_s: float = 10.0) -> None:
        self._interval_s = interval_s
        self._next = 0.0
        self._suppressed = 0
        self._lock = threading.Lock()

    def __call__(self, message: str, *args: Any) -> None:
        with self._lock:
            now = time.monotonic()
            if now < self._next:
                self._suppressed += 1
                return
            count, self._suppressed = self._suppressed + 1, 0
            self._next = now + self._interval_s
        logger.warning(message + " (%d time(s) since the last warning)", *args, count)


class EventQueue:
    """A bounded FIFO of event dicts; ``put`` never blocks and never raises."""

    __slots__ = ("_lock", "_warn", "dropped", "items", "maxsize", "taken")

    def __init__(self, maxsize: int, *, warn_every_s: float = 10.0) -> None:
        self.maxsize = maxsize
        self.dropped = 0
        self.taken = 0  # written by the taker only: accepted = taken + len(self)
        # Appended to by ``put`` or directly by the tracker's hot path (the same two steps).
        self.items: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()  # only the drop path takes it
        self._warn = RateLimitedWarning(warn_every_s)

    def put(self, item: dict[str, Any]) -> bool:
        """Queue ``item``; False (counted and warned about) when the queue is full."""
        items = self.items
        if len(items) >= self.maxsize:
            self.drop(1, "queue full")
            return False
        items.append(item)
        return True

    def drop(self, n: int, why: str) -> None:
        with self._lock:
            self.dropped += n
        self._warn("ingestor.sdk dropped events: %s (max_queue=%d)", why, self.maxsize)

    def take(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` items, oldest first (the sender thread is the only taker)."""
        items = self.items
        out: list[dict[str, Any]] = []
        while items and len(out) < limit:
            out.append(items.popleft())
            self.taken += 1
        return out

    def __len__(self) -> int:
        return len(self.items)
