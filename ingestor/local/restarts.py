"""When ``ingestor up`` restarts a child that died, and when it gives up. Pure.

Any exit is restarted (a kill, a crash, ClickHouse unavailable, a read-only data dir), after a
backoff that doubles from ``base_s`` up to ``max_s``. A child that then ran ``healthy_s`` has
recovered: its count starts again. ``limit`` restarts in a row without such a recovery means the
fault is not going away by itself, and the supervisor stops with one line saying why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["RestartPolicy"]


@dataclass
class RestartPolicy:
    limit: int = 10
    base_s: float = 1.0
    max_s: float = 30.0
    healthy_s: float = 60.0
    clock: Callable[[], float] = field(default=lambda: 0.0)
    failures: int = 0
    _started: float | None = None

    def started(self) -> None:
        """The child was (re)started now."""
        self._started = self.clock()

    def next_delay(self) -> float | None:
        """The child exited: seconds to wait before restarting it, or None to give up."""
        if self._started is not None and self.clock() - self._started >= self.healthy_s:
            self.failures = 0
        if self.failures >= self.limit:
            return None
        delay = min(self.max_s, self.base_s * 2.0**self.failures)
        self.failures += 1
        return delay
