"""Dead letters and the limit that stops the worker instead of dead-lettering everything. Pure.

A bad line or event is not an operational failure: it goes to the dead-letter topic (and the
``dead_letters`` table) with its location and the reason. But when most of the recent input is
invalid the cause is a bad deploy or a format change, not bad input, and dead-lettering would
silently divert the whole stream — so ``DeadLetterLimit`` raises ``DeadLetterLimitExceeded``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from ingestor.errors import DeadLetterLimitExceeded, InvalidInput, Location
from ingestor.wire import Kind

__all__ = ["DeadLetter", "DeadLetterLimit"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    kind: Kind
    reason: str
    field: str | None
    location: Location
    raw: str  # the offending input, truncated
    source_generation: int = 0
    source_length: int = 0

    @classmethod
    def of(
        cls,
        kind: Kind,
        error: InvalidInput,
        raw: Any,
        *,
        max_bytes: int,
        source_generation: int = 0,
        source_length: int = 0,
    ) -> DeadLetter:
        text = raw if isinstance(raw, str) else orjson.dumps(raw, default=str).decode()
        encoded = text.encode()
        if len(encoded) > max_bytes:
            text = encoded[:max_bytes].decode(errors="ignore")
        return cls(
            kind=kind,
            reason=error.reason,
            field=error.field,
            location=error.location,
            raw=text,
            source_generation=source_generation,
            source_length=source_length,
        )

    def key(self) -> bytes:
        loc = self.location
        if loc.file is not None:
            return loc.file.encode()
        return f"{loc.topic}:{loc.partition}".encode()

    def message(self) -> bytes:
        """The dead-letter topic's value: what failed, where, why."""
        return orjson.dumps(
            {
                "kind": self.kind,
                "reason": self.reason,
                "field": self.field,
                "location": self.location.as_dict(),
                "source_generation": self.source_generation,
                "raw": self.raw,
                "dead_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            }
        )


class DeadLetterLimit:
    """Raise once more than ``max_ratio`` of the last ``window`` records were invalid.

    Judged only once ``window`` records were seen, so one bad file at start-up is not a verdict.
    """

    def __init__(self, max_ratio: float, window: int) -> None:
        self._max_ratio = max_ratio
        self._window = window
        self._recent: deque[bool] = deque(maxlen=window)
        self._invalid = 0

    def record(self, valid: int, invalid: int) -> None:
        for ok in (True,) * valid + (False,) * invalid:
            if len(self._recent) == self._window and not self._recent[0]:
                self._invalid -= 1
            self._recent.append(ok)
            if not ok:
                self._invalid += 1
        if len(self._recent) == self._window and self._invalid > self._max_ratio * self._window:
            raise DeadLetterLimitExceeded(
                f"{self._invalid} of the last {self._window} records were invalid "
                f"(limit {self._max_ratio:.0%}): stopping instead of dead-lettering the stream"
            )
