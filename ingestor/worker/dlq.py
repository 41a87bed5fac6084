"""Dead letters and the limit that stops the worker instead of dead-lettering everything. Pure.

A bad line or event is not an operational failure: it goes to the dead-letter topic (and the
``dead_letters`` table) with its location and the reason. But when most of the recent input is
invalid the cause is a bad deploy or a format change, not bad input, and dead-lettering would
silently divert the whole stream — so ``DeadLetterLimit`` raises ``DeadLetterLimitExceeded``.

A dead letter keeps no text of its input (``ingestor.redact``): the length and SHA-256 of the
input's bytes, and for a JSON object its structure (keys, value types, usage fields), re-derived
here from whatever the producer sent.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from ingestor.errors import DeadLetterLimitExceeded, InvalidInput, Location
from ingestor.redact import EVENT_STRINGS, TRANSCRIPT_STRINGS, sha256_hex, structure
from ingestor.wire import Kind

__all__ = ["DeadLetter", "DeadLetterLimit", "fingerprint", "shape_text"]

_BUDGETS = (256, 64, 16, 0)  # node budgets tried in turn until the structure fits


def fingerprint(data: Any) -> tuple[str, int]:
    """SHA-256 hex and length of ``data``'s bytes (JSON-encoded when it is not bytes or str)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    elif not isinstance(data, bytes | bytearray):
        data = orjson.dumps(data, default=str)
    return sha256_hex(bytes(data)), len(data)


def shape_text(kind: Kind, value: Any, max_bytes: int) -> str:
    """The structure of ``value`` as JSON text of at most ``max_bytes``; '' unless an object."""
    if not isinstance(value, dict):
        return ""
    strings = TRANSCRIPT_STRINGS if kind == "transcript" else EVENT_STRINGS
    for budget in _BUDGETS:
        text = orjson.dumps(structure(value, strings, max_nodes=budget)).decode()
        if len(text.encode()) <= max_bytes:
            return text
    return ""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    kind: Kind
    reason: str
    field: str | None
    location: Location
    raw: str  # the input's structure as JSON (``redact.structure``), '' when not an object
    source_generation: int = 0
    source_length: int = 0
    raw_sha256: str = ""  # of the input's bytes; '' when they never reached the worker
    raw_length: int = 0  # the input's bytes

    @classmethod
    def of(
        cls,
        kind: Kind,
        error: InvalidInput,
        shape: Any,
        *,
        max_bytes: int,
        raw_sha256: str = "",
        raw_length: int = 0,
        source_generation: int = 0,
        source_length: int = 0,
    ) -> DeadLetter:
        """``shape``: the input, or what a producer kept of it; only its structure is kept."""
        return cls(
            kind=kind,
            reason=error.reason,
            field=error.field,
            location=error.location,
            raw=shape_text(kind, shape, max_bytes),
            source_generation=source_generation,
            source_length=source_length,
            raw_sha256=raw_sha256,
            raw_length=raw_length,
        )

    @classmethod
    def of_input(cls, kind: Kind, error: InvalidInput, data: Any, *, max_bytes: int) -> DeadLetter:
        """The dead letter of a whole input (a record, or a message's bytes): hashed, measured,
        and structured when it is (or decodes to) a JSON object."""
        digest, length = fingerprint(data)
        shape = data
        if isinstance(data, bytes | str):
            try:
                shape = orjson.loads(data)
            except orjson.JSONDecodeError:
                shape = None
        return cls.of(kind, error, shape, max_bytes=max_bytes, raw_sha256=digest, raw_length=length)

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
                "raw_sha256": self.raw_sha256,
                "raw_length": self.raw_length,
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

    @property
    def max_ratio(self) -> float:
        return self._max_ratio

    def ratio(self) -> float | None:
        """The invalid share of the records seen in the window (None before any)."""
        return self._invalid / len(self._recent) if self._recent else None

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
